//! One task per connection: reads frames, writes queued frames, keeps the heartbeat, and
//! cleans up every trace of the connection when it ends, however it ends.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use switchyard_protocol::{frame, CloseCode};
use switchyard_telemetry::metrics;
use tokio::time::{sleep, sleep_until, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::events;
use crate::peer::{self, Mailbox, Outgoing, QueueLimit};
use crate::session::Session;
use crate::Edge;

pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Frames written per flush when several are queued: one syscall for a burst.
const WRITE_BATCH: usize = 64;
/// How long to wait for the client's reply to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A client that accepts no bytes for this long is stalled: its task must not wait forever,
/// or it would never see its own slow-consumer close.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a connection ended.
enum End {
    /// The socket failed: nothing left to send.
    Gone,
    /// The client sent a close frame; the WebSocket layer has queued the answer (the same
    /// code, or 1002 for an invalid one), which only needs flushing.
    ClientClosed,
    /// We close with this code and reason.
    Close(u16, String),
}

impl End {
    fn code(code: CloseCode) -> End {
        End::Close(code.code(), code.reason().to_owned())
    }
}

/// Sends `pusher:error` and closes: for a connection that never became a session. `app_id` is
/// the app it is counted under, empty when not known to exist.
pub(crate) async fn refuse(mut ws: Socket, code: CloseCode, app_id: &str) {
    metrics::app(app_id).reject(events::reason(code));
    let _ = ws
        .send(Message::text(frame::error(code.code(), code.reason())))
        .await;
    close(ws, code.code(), code.reason()).await;
}

async fn close(mut ws: Socket, code: u16, reason: &str) {
    let close = CloseFrame {
        code: WsCloseCode::from(code),
        reason: reason.into(),
    };
    // Bounded: a stalled client must not keep the task (and its memory) alive.
    match tokio::time::timeout(CLOSE_WAIT, ws.close(Some(close))).await {
        Ok(Ok(())) => {}
        _ => return,
    }
    // Read until the client answers so our FIN does not race unread bytes into a TCP reset,
    // which could destroy the close frame before the client reads it.
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
    let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
}

/// Admits a connection for `app_key` and serves it until it ends.
pub(crate) async fn start(edge: Arc<Edge>, ws: Socket, app_key: &str, origin: Option<&str>) {
    let app = match edge.deps.apps.by_key(app_key).await {
        Ok(Some(app)) => app,
        Ok(None) => return refuse(ws, CloseCode::AppNotFound, "").await,
        Err(e) => {
            tracing::warn!(error = %e, "app lookup failed");
            return refuse(ws, CloseCode::OverCapacity, "").await;
        }
    };
    if !app.enabled {
        return refuse(ws, CloseCode::AppDisabled, &app.id).await;
    }
    if !app.allows_origin(origin) {
        return refuse(ws, CloseCode::Unauthorized, &app.id).await;
    }
    let admission = match edge.admit(&app).await {
        Ok(admission) => admission,
        Err(code) => return refuse(ws, code, &app.id).await,
    };
    let (peer, mailbox) = peer::pair(QueueLimit {
        frames: edge.config.outbound_queue,
        bytes: edge.config.outbound_queue_bytes,
    });
    let mut session = Session::new(edge.next_socket_id(), app, peer);
    let metrics = session.metrics.clone();
    metrics.connections.inc();
    let (ws, end) = serve(&edge, &mut session, ws, mailbox, &admission.stop).await;
    let span = session.span.clone();
    async {
        let channels: Vec<String> = session.channels.keys().cloned().collect();
        for channel in channels {
            events::leave(&edge, &mut session, &channel).await;
        }
        events::sign_out(&edge, &mut session).await;
        edge.release(&session.app_id, admission).await;
    }
    .instrument(span)
    .await;
    metrics.connections.dec();
    match end {
        End::Close(code, reason) => close(ws, code, &reason).await,
        End::ClientClosed => {
            let mut ws = ws;
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.flush()).await;
        }
        End::Gone => {}
    }
}

async fn serve(
    edge: &Arc<Edge>,
    session: &mut Session,
    mut ws: Socket,
    mailbox: Mailbox,
    stop: &CancellationToken,
) -> (Socket, End) {
    let activity = edge.config.activity_timeout;
    let hello = frame::connection_established(&session.socket_id, activity.as_secs());
    sent(session, std::slice::from_ref(&hello));
    if ws.send(Message::text(hello)).await.is_err() {
        return (ws, End::Gone);
    }
    let idle = sleep(activity);
    tokio::pin!(idle);
    let mut awaiting_pong = false;
    let auth_deadline = session
        .app
        .require_authorized_connections
        .then(|| Instant::now() + Duration::from_secs(session.app.authorization_timeout_secs));
    let auth_timer = sleep_until(
        auth_deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365)),
    );
    tokio::pin!(auth_timer);
    let end = loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break End::code(if edge.shutdown.is_cancelled() {
                CloseCode::ReconnectImmediately
            } else {
                CloseCode::AppDisabled
            }),
            () = &mut auth_timer, if auth_deadline.is_some() && !session.authorized => {
                break End::Close(CloseCode::Unauthorized.code(), "Connection not authorized within timeout".into());
            }
            out = mailbox.next() => {
                let frame = match out {
                    Outgoing::Close(code) => break End::code(code),
                    Outgoing::Frame(frame) => frame,
                };
                let written = tokio::time::timeout(WRITE_TIMEOUT, write_batch(&mut ws, &mailbox, frame)).await;
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break End::Gone,
                    Err(_) => break End::code(CloseCode::OverCapacity),
                }
            }
            msg = ws.next() => {
                idle.as_mut().reset(Instant::now() + activity);
                awaiting_pong = false;
                let text = match msg {
                    None => break End::Gone,
                    Some(Err(e)) => break read_error(e),
                    Some(Ok(Message::Text(text))) => {
                        session.metrics.client_messages.inc();
                        session.metrics.client_bytes.add(text.len() as u64);
                        text
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let err = frame::error(CloseCode::GenericError.code(), "binary frames are not supported; send JSON text frames");
                        if !bounded(ws.send(Message::text(err))).await { break End::Gone }
                        continue;
                    }
                    Some(Ok(Message::Close(_))) => break End::ClientClosed,
                    // Pings are answered by the WebSocket layer; pongs only count as activity.
                    Some(Ok(_)) => continue,
                };
                // In the connection's span, for the log lines; the write path runs outside it,
                // so a fan-out costs no span enter per socket.
                let span = session.span.clone();
                let reply = events::dispatch(edge, session, &text).instrument(span).await;
                if let Some(reason) = reply.rejected {
                    session.metrics.reject(reason);
                }
                sent(session, &reply.frames);
                if !bounded(write_all(&mut ws, reply.frames)).await {
                    break End::Gone;
                }
                if let Some(code) = reply.close {
                    break End::code(code);
                }
            }
            () = &mut idle => {
                if awaiting_pong {
                    break End::code(CloseCode::PongNotReceived);
                }
                if !bounded(ws.send(Message::text(frame::ping()))).await {
                    break End::Gone;
                }
                awaiting_pong = true;
                idle.as_mut().reset(Instant::now() + edge.config.pong_timeout);
            }
        }
    };
    (ws, end)
}

fn read_error(e: WsError) -> End {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => End::Close(
            1009,
            format!("message of {size} bytes exceeds the limit of {max_size}"),
        ),
        WsError::Capacity(e) => End::Close(1009, e.to_string()),
        WsError::Utf8(_) => End::Close(1007, "invalid UTF-8 in text frame".into()),
        WsError::Protocol(e) => End::Close(1002, e.to_string()),
        _ => End::Gone,
    }
}

/// Counts frames this connection writes itself (fan-out is counted by the hub).
fn sent(session: &Session, frames: &[String]) {
    if frames.is_empty() {
        return;
    }
    let bytes: usize = frames.iter().map(String::len).sum();
    session.metrics.messages_sent.add(frames.len() as u64);
    session.metrics.bytes_sent.add(bytes as u64);
}

/// Runs a write with [`WRITE_TIMEOUT`]; false if it failed or timed out.
async fn bounded(write: impl std::future::Future<Output = Result<(), WsError>>) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, write).await, Ok(Ok(())))
}

async fn write_all(ws: &mut Socket, frames: Vec<String>) -> Result<(), WsError> {
    if frames.is_empty() {
        return Ok(());
    }
    for frame in frames {
        ws.feed(Message::text(frame)).await?;
    }
    ws.flush().await
}

/// Writes `first` and whatever else is already queued, then flushes once.
async fn write_batch(ws: &mut Socket, mailbox: &Mailbox, first: Utf8Bytes) -> Result<(), WsError> {
    ws.feed(Message::Text(first)).await?;
    for _ in 1..WRITE_BATCH {
        match mailbox.try_next() {
            Some(Outgoing::Frame(frame)) => ws.feed(Message::Text(frame)).await?,
            // A close request is seen by the next `mailbox.next()` in the loop.
            Some(Outgoing::Close(_)) | None => break,
        }
    }
    ws.flush().await
}
