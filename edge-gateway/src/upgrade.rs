//! The HTTP → WebSocket upgrade. The handshake always completes, even for a bad app or path,
//! because Pusher clients only act on a WebSocket close code: a refused HTTP request would
//! make them retry forever.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use hyper::header::{self, HeaderValue};
use hyper::StatusCode;
use switchyard_listener::{error, Stream, Upgrade, UpgradeRequest};
use switchyard_protocol::handshake;
use switchyard_telemetry::metrics;

use crate::connection::{self, Opening};
use crate::Edge;

/// Decides a WebSocket upgrade request (the listener has checked it is one).
pub(crate) fn accept(edge: &Arc<Edge>, req: &UpgradeRequest<'_>, peer: SocketAddr) -> Upgrade {
    // Refused before the upgrade, so a flood from one address costs no WebSocket state.
    if !edge.ip_rate.allow(client_ip(req, peer), Instant::now()) {
        metrics::app("").reject("ip_rate");
        let mut res = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many new connections from this address; retry in a second",
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Upgrade::Refuse(res);
    }
    // Everything the connection needs is copied out of the request now: the request is
    // borrowed from the listener's read buffer, which is gone once the hook returns.
    let app_key: Result<Box<str>, _> = handshake::app_key(req.path, req.query).map(Box::from);
    let origin: Option<Box<str>> = req.header("origin").map(Box::from);
    let max_message = edge.config.max_message_bytes;
    let edge = edge.clone();
    Upgrade::Accept(Box::new(move |stream: Stream, early: Vec<u8>| {
        let opening = Box::new(Opening {
            stream,
            early,
            max_message,
            app_key,
            origin,
        });
        let tracker = edge.connections.clone();
        tracker.spawn(connection::run(edge, opening));
    }))
}

/// The client's address: the TCP peer, or, when the peer is a load balancer on a private or
/// loopback address, the last `X-Forwarded-For` entry (the one that balancer added; entries
/// before it come from the client and could be forged).
fn client_ip(req: &UpgradeRequest<'_>, peer: SocketAddr) -> IpAddr {
    let ip = peer.ip();
    let behind_proxy = match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local(),
    };
    if !behind_proxy {
        return ip;
    }
    req.headers("x-forwarded-for")
        .next_back()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(ip)
}
