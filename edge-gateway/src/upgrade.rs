//! The HTTP → WebSocket upgrade. The handshake always completes, even for a bad app or path,
//! because Pusher clients only act on a WebSocket close code: a refused HTTP request would
//! make them retry forever.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use switchyard_listener::{error, Body};
use switchyard_protocol::handshake;
use switchyard_telemetry::metrics;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::connection::{self, Socket};
use crate::Edge;

/// Bytes read from the socket at a time. Small because it is allocated per connection for
/// its whole life (it is most of an idle connection's memory): client messages are mostly
/// under it, and a larger frame grows the buffer for as long as it takes to read.
const READ_BUFFER: usize = 256;

pub(crate) fn handle(
    edge: Arc<Edge>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    // Refused before the upgrade, so a flood from one address costs no WebSocket state.
    if !edge.ip_rate.allow(client_ip(&req, peer), Instant::now()) {
        metrics::app("").reject("ip_rate");
        let mut res = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many new connections from this address; retry in a second",
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return res;
    }
    let is_upgrade = header_has(&req, header::CONNECTION, "upgrade")
        && header_has(&req, header::UPGRADE, "websocket");
    let Some(key) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| is_upgrade)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    // Everything the task needs is taken out of the request now: what an async block captures
    // stays in the connection task for the connection's whole life.
    let app_key: Result<Box<str>, _> =
        handshake::app_key(req.uri().path(), req.uri().query().unwrap_or("")).map(Box::from);
    let origin: Option<Box<str>> = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(Box::from);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(edge.config.max_message_bytes))
        .max_frame_size(Some(edge.config.max_message_bytes));
    let on_upgrade = hyper::upgrade::on(&mut req);
    let tracker = edge.connections.clone();
    tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, %peer, "upgrade failed");
                return;
            }
        };
        let ws: Socket = Box::new(
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await,
        );
        match app_key {
            Ok(app_key) => connection::start(edge, ws, &app_key, origin.as_deref()).await,
            Err(code) => Box::pin(connection::refuse(ws, code, "")).await,
        }
    });
    let mut res = Response::new(Body::default());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

/// The client's address: the TCP peer, or, when the peer is a load balancer on a private or
/// loopback address, the last `X-Forwarded-For` entry (the one that balancer added; entries
/// before it come from the client and could be forged).
fn client_ip(req: &Request<Incoming>, peer: SocketAddr) -> IpAddr {
    let ip = peer.ip();
    let behind_proxy = match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local(),
    };
    if !behind_proxy {
        return ip;
    }
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(ip)
}

fn header_has(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}
