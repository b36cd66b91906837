//! The baseline server as the load tests use it: the real binary on a free port, real
//! WebSocket clients, triggers over HTTP. Its figures are only a yardstick if it really delivers
//! each event to exactly its channel's subscribers.

use std::process::{Child, Command};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start() -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_baseline"))
        .args(["--port", &port.to_string()])
        .spawn()
        .expect("start baseline");
    let server = Server { child, port };
    for _ in 0..100 {
        if let Ok((status, _)) = http(port, "GET", "/ready", "").await {
            assert_eq!(status, 200);
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("baseline did not start on port {port}");
}

/// One HTTP/1.1 request on a fresh connection; returns the status and body.
async fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if rest.len() >= length || n == 0 {
                let status = head[9..12].parse().unwrap_or(0);
                return Ok((status, rest.to_owned()));
            }
        }
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = msg {
            return serde_json::from_str(text.as_str()).expect("JSON frame");
        }
    }
}

async fn subscriber(port: u16, channel: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/app/key?protocol=7");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["event"], "pusher:connection_established");
    let data: Value =
        serde_json::from_str(hello["data"].as_str().expect("data string")).expect("data JSON");
    assert!(data["socket_id"].as_str().is_some_and(|s| s.contains('.')));
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
    ws.send(Message::text(sub.to_string())).await.expect("send");
    let ok = next_json(&mut ws).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(ok["channel"], channel);
    ws
}

async fn trigger(port: u16, channel: &str, data: &str) -> u16 {
    let body = json!({"name": "ev", "channel": channel, "data": data}).to_string();
    http(port, "POST", "/apps/1/events", &body)
        .await
        .expect("trigger")
        .0
}

#[tokio::test]
async fn an_event_reaches_exactly_its_channels_subscribers() {
    let server = start().await;
    let mut a1 = subscriber(server.port, "a").await;
    let mut a2 = subscriber(server.port, "a").await;
    let mut b = subscriber(server.port, "b").await;
    assert_eq!(trigger(server.port, "a", r#"{"n":1}"#).await, 200);
    assert_eq!(trigger(server.port, "b", r#"{"n":2}"#).await, 200);
    for ws in [&mut a1, &mut a2] {
        let ev = next_json(ws).await;
        assert_eq!(
            (ev["event"].as_str(), ev["channel"].as_str()),
            (Some("ev"), Some("a"))
        );
        assert_eq!(
            ev["data"], r#"{"n":1}"#,
            "data is passed through as a string"
        );
    }
    // b's first event is its own: it never saw a's.
    let ev = next_json(&mut b).await;
    assert_eq!(
        (ev["channel"].as_str(), ev["data"].as_str()),
        (Some("b"), Some(r#"{"n":2}"#))
    );
}

#[tokio::test]
async fn ping_unsubscribe_and_bad_requests() {
    let server = start().await;
    let mut ws = subscriber(server.port, "c").await;
    ws.send(Message::text(r#"{"event":"pusher:ping","data":{}}"#))
        .await
        .expect("send");
    assert_eq!(next_json(&mut ws).await["event"], "pusher:pong");
    let unsub = json!({"event": "pusher:unsubscribe", "data": {"channel": "c"}});
    ws.send(Message::text(unsub.to_string()))
        .await
        .expect("send");
    let resub = json!({"event": "pusher:subscribe", "data": {"channel": "d"}});
    ws.send(Message::text(resub.to_string()))
        .await
        .expect("send");
    assert_eq!(next_json(&mut ws).await["channel"], "d");
    assert_eq!(trigger(server.port, "c", "gone").await, 200);
    assert_eq!(trigger(server.port, "d", "here").await, 200);
    assert_eq!(
        next_json(&mut ws).await["data"],
        "here",
        "nothing from the channel it left"
    );
    let (status, _) = http(server.port, "POST", "/apps/1/events", "not json")
        .await
        .expect("post");
    assert_eq!(status, 400);
    let (status, _) = http(server.port, "GET", "/nowhere", "").await.expect("get");
    assert_eq!(status, 404);
}
