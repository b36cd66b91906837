//! One task per connection: reads frames, writes queued frames, keeps the heartbeat, and
//! cleans up every trace of the connection when it ends, however it ends.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchyard_listener::Stream;
use switchyard_protocol::{frame, CloseCode};
use switchyard_telemetry::metrics;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use crate::admission::{Admission, ConnectionRefusal};
use crate::events;
use crate::peer::{self, Mailbox, Outgoing, QueueLimit};
use crate::session::Session;
use crate::Edge;

/// Boxed: the socket's state (a few hundred bytes) is moved through several async fns, and each
/// would otherwise keep its own slot for it in the connection task, which lives as long as the
/// connection does.
pub(crate) type Socket = Box<WebSocketStream<Stream>>;

/// Bytes read from the socket at a time. Small because it is allocated per connection for
/// its whole life (it is most of an idle connection's memory): client messages are mostly
/// under it, and a larger frame grows the buffer for as long as it takes to read.
const READ_BUFFER: usize = 256;
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
async fn refused(mut ws: Socket, why: ConnectionRefusal, app_id: &str) -> Option<Box<Admitted>> {
    let code = why.code();
    metrics::app(app_id).reject(code.label());
    let _ = ws
        .send(Message::text(frame::error(code.code(), code.reason())))
        .await;
    close(ws, code.code(), code.reason()).await;
    None
}

async fn close(mut ws: Socket, code: u16, reason: &str) {
    let close = CloseFrame {
        code: WsCloseCode::from(code),
        reason: reason.into(),
    };
    // Bounded: a stalled client must not keep the task (and its memory) alive.
    match tokio::time::timeout(CLOSE_WAIT, WebSocketStream::close(&mut ws, Some(close))).await {
        Ok(Ok(())) => {}
        _ => return,
    }
    // Read until the client answers so our FIN does not race unread bytes into a TCP reset,
    // which could destroy the close frame before the client reads it.
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
    let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
}

/// A connection from its 101 answer to its first frame: what the upgrade took from the
/// request.
pub(crate) struct Opening {
    pub stream: Stream,
    /// Bytes the client sent after its request, before our answer.
    pub early: Vec<u8>,
    pub max_message: usize,
    pub app_key: Result<Box<str>, CloseCode>,
    pub origin: Option<Box<str>>,
}

/// What a connection that was let in holds while it is served. Boxed, and the task keeps the
/// box: moved into the task's future by value, it would take room there twice.
struct Admitted {
    ws: Socket,
    session: Session,
    admission: Admission,
    mailbox: Mailbox,
}

/// Serves a connection until it ends, and cleans up after it: the connection's task.
///
/// Only the steady state (the session and [`serve`]) lives in the task; opening and closing
/// run boxed. The task is allocated for the connection's whole life, and its size is most of
/// the memory of an idle connection.
pub(crate) async fn run(edge: Arc<Edge>, opening: Box<Opening>) {
    let Some(mut conn) = Box::pin(open(&edge, *opening)).await else {
        return;
    };
    conn.session.metrics.connections.inc();
    let end = serve(&edge, &mut conn).await;
    Box::pin(finish(&edge, conn, end)).await;
}

/// Makes the WebSocket and admits it for its app; a refused connection is told why and closed.
async fn open(edge: &Arc<Edge>, opening: Opening) -> Option<Box<Admitted>> {
    let Opening {
        stream,
        early,
        max_message,
        app_key,
        origin,
    } = opening;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let ws: Socket = Box::new(if early.is_empty() {
        WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await
    } else {
        WebSocketStream::from_partially_read(stream, early, Role::Server, Some(config)).await
    });
    let app_key = match app_key {
        Ok(key) => key,
        Err(code) => return refused(ws, ConnectionRefusal::Handshake(code), "").await,
    };
    let app = match edge.deps.apps.by_key(&app_key).await {
        Ok(Some(app)) => app,
        Ok(None) => return refused(ws, ConnectionRefusal::AppNotFound, "").await,
        Err(e) => {
            tracing::warn!(error = %e, "app lookup failed");
            return refused(ws, ConnectionRefusal::AppLookupFailed, "").await;
        }
    };
    if !app.enabled {
        return refused(ws, ConnectionRefusal::AppDisabled, &app.id).await;
    }
    if !app.allows_origin(origin.as_deref()) {
        return refused(ws, ConnectionRefusal::OriginNotAllowed, &app.id).await;
    }
    let (peer, mailbox) = peer::pair(QueueLimit {
        frames: edge.config.outbound_queue,
        bytes: edge.config.outbound_queue_bytes,
    });
    let admission = match edge.admit(&app, &peer).await {
        Ok(admission) => admission,
        Err(why) => return refused(ws, why, &app.id).await,
    };
    Some(Box::new(Admitted {
        ws,
        session: Session::new(edge.next_socket_id(), app, peer),
        admission,
        mailbox,
    }))
}

/// Leaves the connection's channels, gives back its admission and closes the socket.
async fn finish(edge: &Arc<Edge>, conn: Box<Admitted>, end: End) {
    let Admitted {
        ws,
        mut session,
        admission,
        mailbox: _,
    } = *conn;
    let span = session.span();
    async {
        let channels: Vec<String> = session.channels.names().map(str::to_owned).collect();
        for channel in channels {
            events::leave(edge, &mut session, &channel).await;
        }
        events::sign_out(edge, &mut session).await;
        edge.release(&session.app_id, admission).await;
    }
    .instrument(span)
    .await;
    session.metrics.connections.dec();
    match end {
        End::Close(code, reason) => close(ws, code, &reason).await,
        End::ClientClosed => {
            let mut ws = ws;
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.flush()).await;
        }
        End::Gone => {}
    }
}

/// The connection's steady state: writes what is queued for it, reads and answers what the
/// client sends, and keeps the heartbeat. Everything rare runs boxed, so that this future,
/// which every idle connection keeps, stays small.
async fn serve(edge: &Arc<Edge>, conn: &mut Admitted) -> End {
    let Admitted {
        ws,
        session,
        mailbox,
        ..
    } = conn;
    let activity = edge.config.activity_timeout;
    // In a block, so the frame takes no room in the future past its own write.
    {
        let hello = frame::connection_established(&session.socket_id, activity.as_secs());
        sent(session, std::slice::from_ref(&hello));
        if !bounded(ws.send(Message::text(hello))).await {
            return End::Gone;
        }
    }
    // One timer for both deadlines (idle/pong and authorization): each timer is memory held
    // by every connection for its whole life.
    let mut timers = Timers {
        idle_at: Instant::now() + activity,
        awaiting_pong: false,
        auth_at: session
            .app
            .require_authorized_connections
            .then(|| Instant::now() + Duration::from_secs(session.app.authorization_timeout_secs)),
    };
    let timer = sleep_until(timers.next(session.authorized));
    tokio::pin!(timer);
    loop {
        // Polled by hand rather than with `select!`: the task keeps only references across
        // this wait. The queue goes first (closing comes that way too: shutdown, a disabled
        // app, a slow consumer).
        let woken = std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = mailbox.poll_next(cx) {
                return Poll::Ready(Woken::Queue(out));
            }
            if let Poll::Ready(msg) = ws.poll_next_unpin(cx) {
                return Poll::Ready(Woken::Client(msg));
            }
            timer.as_mut().poll(cx).map(|()| Woken::Timer)
        })
        .await;
        match woken {
            Woken::Queue(Outgoing::Close(code)) => return End::code(code),
            Woken::Queue(Outgoing::Frame(frame)) => {
                // One small allocation per batch of frames, whatever their size.
                let written = Box::pin(tokio::time::timeout(
                    WRITE_TIMEOUT,
                    write_batch(ws, mailbox, frame),
                ))
                .await;
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return End::Gone,
                    Err(_) => return End::code(CloseCode::OverCapacity),
                }
            }
            Woken::Client(msg) => {
                timers.active(Instant::now() + edge.config.activity_timeout);
                timer.as_mut().reset(timers.next(session.authorized));
                let Some(msg) = msg else { return End::Gone };
                if let Some(end) = Box::pin(on_message(edge, session, ws, msg)).await {
                    return end;
                }
            }
            Woken::Timer => {
                match timers.due(Instant::now(), session.authorized) {
                    Due::Nothing => {}
                    Due::Unauthorized => {
                        return End::Close(
                            CloseCode::Unauthorized.code(),
                            "Connection not authorized within timeout".into(),
                        )
                    }
                    Due::PongMissing => return End::code(CloseCode::PongNotReceived),
                    Due::Ping => {
                        if !bounded(ws.send(Message::text(frame::ping()))).await {
                            return End::Gone;
                        }
                        timers.pinged(Instant::now() + edge.config.pong_timeout);
                    }
                }
                timer.as_mut().reset(timers.next(session.authorized));
            }
        }
    }
}

/// What woke a connection's task.
enum Woken {
    Queue(Outgoing),
    Client(Option<Result<Message, WsError>>),
    Timer,
}

/// Handles one message from the client; `Some` ends the connection.
async fn on_message(
    edge: &Arc<Edge>,
    session: &mut Session,
    ws: &mut Socket,
    msg: Result<Message, WsError>,
) -> Option<End> {
    let text = match msg {
        Err(e) => return Some(read_error(e)),
        Ok(Message::Text(text)) => {
            session.metrics.client_messages.inc();
            session.metrics.client_bytes.add(text.len() as u64);
            text
        }
        Ok(Message::Binary(_)) => {
            let err = frame::error(
                CloseCode::GenericError.code(),
                "binary frames are not supported; send JSON text frames",
            );
            return (!bounded(ws.send(Message::text(err))).await).then_some(End::Gone);
        }
        Ok(Message::Close(_)) => return Some(End::ClientClosed),
        // Pings are answered by the WebSocket layer; pongs only count as activity.
        Ok(_) => return None,
    };
    // In the connection's span, for the log lines; the write path runs outside it, so a
    // fan-out costs no span enter per socket.
    let span = session.span();
    let reply = events::dispatch(edge, session, &text)
        .instrument(span)
        .await;
    if let Some(reason) = reply.rejected {
        session.metrics.reject(reason);
    }
    sent(session, &reply.frames);
    if !bounded(write_all(ws, reply.frames)).await {
        return Some(End::Gone);
    }
    reply.close.map(End::code)
}

/// A connection's deadlines: the idle ping, the pong after it, and authorization.
struct Timers {
    /// When to ping (or, while `awaiting_pong`, when to give up on the pong).
    idle_at: Instant,
    awaiting_pong: bool,
    /// For apps that require authorized connections: the deadline to sign in or subscribe to
    /// an authorized channel.
    auth_at: Option<Instant>,
}

/// What a timer firing means.
#[derive(Debug, PartialEq)]
enum Due {
    Nothing,
    Unauthorized,
    Ping,
    PongMissing,
}

impl Timers {
    /// The client sent something: it is alive.
    fn active(&mut self, idle_at: Instant) {
        self.idle_at = idle_at;
        self.awaiting_pong = false;
    }

    fn pinged(&mut self, pong_by: Instant) {
        self.idle_at = pong_by;
        self.awaiting_pong = true;
    }

    /// When the timer should fire next.
    fn next(&self, authorized: bool) -> Instant {
        match self.auth_at {
            Some(auth_at) if !authorized => auth_at.min(self.idle_at),
            _ => self.idle_at,
        }
    }

    fn due(&self, now: Instant, authorized: bool) -> Due {
        if self.auth_at.is_some_and(|at| !authorized && now >= at) {
            Due::Unauthorized
        } else if now < self.idle_at {
            Due::Nothing
        } else if self.awaiting_pong {
            Due::PongMissing
        } else {
            Due::Ping
        }
    }
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
    matches!(
        Box::pin(tokio::time::timeout(WRITE_TIMEOUT, write)).await,
        Ok(Ok(()))
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn timers(auth_in: Option<u64>) -> (Instant, Timers) {
        let t0 = Instant::now();
        let timers = Timers {
            idle_at: t0 + Duration::from_secs(120),
            awaiting_pong: false,
            auth_at: auth_in.map(|s| t0 + Duration::from_secs(s)),
        };
        (t0, timers)
    }

    #[test]
    fn idle_then_ping_then_missing_pong() {
        let (t0, mut t) = timers(None);
        assert_eq!(t.next(false), t0 + Duration::from_secs(120));
        assert_eq!(t.due(t0 + Duration::from_secs(119), false), Due::Nothing);
        assert_eq!(t.due(t0 + Duration::from_secs(120), false), Due::Ping);
        t.pinged(t0 + Duration::from_secs(150));
        assert_eq!(t.next(false), t0 + Duration::from_secs(150));
        assert_eq!(t.due(t0 + Duration::from_secs(149), false), Due::Nothing);
        assert_eq!(
            t.due(t0 + Duration::from_secs(150), false),
            Due::PongMissing
        );
        t.active(t0 + Duration::from_secs(300));
        assert_eq!(t.due(t0 + Duration::from_secs(151), false), Due::Nothing);
    }

    #[test]
    fn the_authorization_deadline_applies_only_until_authorized() {
        let (t0, t) = timers(Some(30));
        assert_eq!(t.next(false), t0 + Duration::from_secs(30));
        assert_eq!(
            t.due(t0 + Duration::from_secs(30), false),
            Due::Unauthorized
        );
        assert_eq!(t.next(true), t0 + Duration::from_secs(120));
        assert_eq!(t.due(t0 + Duration::from_secs(30), true), Due::Nothing);
    }
}
