//! WebSocket upgrades over real sockets: a first-request upgrade is answered by the listener
//! and handed over with the bytes the client sent early; an upgrade after another request on a
//! kept-alive connection goes through hyper to the same hook; a refusal is an HTTP answer;
//! other requests still reach the handler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use switchyard_listener::{Handler, Service, Stream, Upgrade, UpgradeHook};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const UPGRADE: &str = "GET /app/key?protocol=7 HTTP/1.1\r\nHost: x\r\n\
    Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// The accept value for that key (RFC 6455 §1.3).
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A hook that refuses `/refuse`, and otherwise writes what it was handed (the path and the
/// early bytes), then echoes one read.
fn service() -> Service {
    let handler: Handler = Arc::new(|req, _| {
        let body = format!(r#"{{"path":"{}"}}"#, req.uri().path());
        Box::pin(async move { switchyard_listener::json(StatusCode::OK, body) })
    });
    let hook: UpgradeHook = Arc::new(|req, _peer| {
        if req.path == "/refuse" {
            return Upgrade::Refuse(switchyard_listener::error(
                StatusCode::TOO_MANY_REQUESTS,
                "no",
            ));
        }
        let said = format!("path={} query={}", req.path, req.query);
        Upgrade::Accept(Box::new(move |mut stream: Stream, early: Vec<u8>| {
            tokio::spawn(async move {
                let hello = format!("{said} early={}\n", String::from_utf8_lossy(&early));
                stream.write_all(hello.as_bytes()).await.expect("write");
                let mut buf = [0u8; 64];
                let n = stream.read(&mut buf).await.expect("read");
                stream.write_all(&buf[..n]).await.expect("echo");
            });
        }))
    });
    Service {
        handler,
        upgrades: Some(hook),
    }
}

async fn start() -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    tokio::spawn(switchyard_listener::serve(
        tcp,
        service(),
        CancellationToken::new(),
        TaskTracker::new(),
    ));
    addr
}

/// Reads until what was read contains `needle`; panics with what came after 5 s.
async fn read_until(stream: &mut (impl AsyncRead + Unpin), needle: &str) -> String {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&got).contains(needle) {
        let mut buf = [0u8; 1024];
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => panic!(
                "no {needle:?} in {:?}",
                String::from_utf8_lossy(&got).into_owned()
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_first_request_upgrade_is_handed_over_with_its_early_bytes() {
    let addr = start().await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    // One write: the frame-like bytes arrive with the head, before any answer.
    c.write_all(format!("{UPGRADE}early!").as_bytes())
        .await
        .expect("write");
    let text = read_until(&mut c, "early=early!\n").await;
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(text.contains(&format!("sec-websocket-accept: {ACCEPT}\r\n")));
    assert!(text.ends_with("\r\n\r\npath=/app/key query=protocol=7 early=early!\n"));
    c.write_all(b"ping").await.expect("write");
    assert_eq!(read_until(&mut c, "ping").await, "ping");
}

#[tokio::test]
async fn an_upgrade_after_another_request_goes_through_hyper_to_the_same_hook() {
    let addr = start().await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let first = read_until(&mut c, r#"{"path":"/up"}"#).await;
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    c.write_all(UPGRADE.as_bytes()).await.expect("write");
    let text = read_until(&mut c, "early=\n").await;
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(text.contains(ACCEPT));
    assert!(text.contains("path=/app/key query=protocol=7 early=\n"));
    c.write_all(b"pong").await.expect("write");
    assert_eq!(read_until(&mut c, "pong").await, "pong");
}

#[tokio::test]
async fn a_refused_upgrade_is_answered_and_closed() {
    let addr = start().await;
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(UPGRADE.replace("/app/key", "/refuse").as_bytes())
        .await
        .expect("write");
    let mut all = String::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut all))
        .await
        .expect("closed in time")
        .expect("read");
    assert!(
        all.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{all}"
    );
    assert!(all.ends_with(r#"{"error":"no"}"#), "{all}");
}

#[tokio::test]
async fn other_first_requests_reach_the_handler() {
    let addr = start().await;
    for request in [
        "POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        // Upgrade to something else: not ours to take.
        "GET /h2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nConnection: close\r\n\r\n",
    ] {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(request.as_bytes()).await.expect("write");
        let path = request.split(' ').nth(1).expect("path");
        let text = read_until(&mut c, &format!(r#"{{"path":"{path}"}}"#)).await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    }
}
