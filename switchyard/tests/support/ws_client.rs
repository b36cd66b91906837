//! [`Client`]: a raw Pusher WebSocket client with bounded waits, and frame accessors.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{presence_auth, private_auth, signin_auth, WAIT};

/// A frame's `data` as JSON: parsed if it is a string (server→client data is double-encoded),
/// as is otherwise.
pub fn data_of(frame: &Value) -> Value {
    match &frame["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        other => other.clone(),
    }
}

/// A frame's `data`, which must be a JSON-encoded string (as every server→client event but
/// `pusher:error` and `pusher:subscription_error` carries it), parsed.
pub fn string_data(frame: &Value) -> Value {
    let text = frame["data"]
        .as_str()
        .unwrap_or_else(|| panic!("data must be a JSON string: {frame}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("data is not JSON ({e}): {frame}"))
}

pub fn event_of(frame: &Value) -> &str {
    frame["event"].as_str().unwrap_or("")
}

/// A raw WebSocket client.
/// Opens a WebSocket to app `key` on `addr` and reads nothing (for connections that may be
/// refused).
pub async fn open_ws(addr: SocketAddr, key: &str) -> Client {
    let url = format!("ws://{addr}/app/{key}?protocol=7&client=js&version=8.6.0&flash=false");
    let req = url.into_client_request().expect("client request");
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .unwrap_or_else(|_| panic!("WebSocket connect to {addr} timed out"))
        .unwrap_or_else(|e| panic!("WebSocket handshake with {addr} failed: {e}"));
    Client {
        ws,
        socket_id: String::new(),
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub socket_id: String,
}

/// What arrived next on a client.
#[derive(Debug)]
pub enum Incoming {
    Json(Value),
    Close(u16, String),
    /// The stream ended or failed without a close frame.
    Dropped(String),
}

impl Client {
    /// Reads `pusher:connection_established` and remembers the socket id.
    pub async fn established(&mut self) -> Value {
        let frame = self.recv_json().await;
        assert_eq!(
            event_of(&frame),
            "pusher:connection_established",
            "first frame: {frame}"
        );
        let data = data_of(&frame);
        self.socket_id = data["socket_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no socket_id in {frame}"))
            .to_owned();
        frame
    }

    pub fn socket_id(&self) -> &str {
        &self.socket_id
    }

    /// The next text frame, JSON, close or end of stream, within `bound` (None on timeout).
    pub async fn next_within(&mut self, bound: Duration) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(msg) => msg,
            };
            return Some(match msg {
                None => Incoming::Dropped("stream ended".into()),
                Some(Err(e)) => Incoming::Dropped(e.to_string()),
                Some(Ok(Message::Text(t))) => Incoming::Json(
                    serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("server sent non-JSON text {t:?}: {e}")),
                ),
                Some(Ok(Message::Close(frame))) => match frame {
                    Some(f) => Incoming::Close(u16::from(f.code), f.reason.to_string()),
                    None => Incoming::Close(1005, String::new()),
                },
                Some(Ok(Message::Binary(b))) => panic!("server sent a binary frame: {b:?}"),
                Some(Ok(_)) => continue, // ping / pong / raw frames
            });
        }
    }

    /// The next JSON frame within 5 s, or what came instead (a close, a drop, nothing).
    pub async fn recv_json_or_close(&mut self) -> Result<Value, String> {
        match self.next_within(WAIT).await {
            Some(Incoming::Json(v)) => Ok(v),
            other => Err(format!("{other:?}")),
        }
    }

    /// The next JSON frame within 5 s; panics on timeout, close or drop.
    pub async fn recv_json(&mut self) -> Value {
        match self.next_within(WAIT).await {
            Some(Incoming::Json(v)) => v,
            Some(other) => panic!("expected a JSON frame, got {other:?}"),
            None => panic!("no frame within {WAIT:?}"),
        }
    }

    /// A refused subscription: a `pusher:error` (with a numeric code and a message), then the
    /// `pusher:subscription_error`, which is returned.
    pub async fn recv_subscription_error(&mut self) -> Value {
        let error = self.recv_json().await;
        assert_eq!(error["event"], "pusher:error", "{error}");
        assert!(error["data"]["code"].is_u64(), "{error}");
        assert!(error["data"]["message"].is_string(), "{error}");
        self.recv_json().await
    }

    /// The next JSON frame within `bound`, or None if nothing arrived.
    pub async fn try_recv(&mut self, bound: Duration) -> Option<Value> {
        match self.next_within(bound).await {
            Some(Incoming::Json(v)) => Some(v),
            Some(other) => panic!("expected a JSON frame or nothing, got {other:?}"),
            None => None,
        }
    }

    /// Skips frames until one with `event` arrives (5 s bound overall).
    pub async fn recv_event(&mut self, event: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left).await {
                Some(Incoming::Json(v)) if event_of(&v) == event => return v,
                Some(Incoming::Json(v)) => skipped.push(v),
                Some(other) => panic!("waiting for {event}, got {other:?} (skipped {skipped:?})"),
                None => panic!("no {event} within {WAIT:?} (skipped {skipped:?})"),
            }
        }
    }

    /// Asserts that no frame arrives within `bound`.
    pub async fn expect_silence(&mut self, bound: Duration, what: &str) {
        if let Some(frame) = self.next_within(bound).await {
            panic!("expected nothing ({what}), got {frame:?}");
        }
    }

    /// Reads until the close frame (skipping text frames), within 5 s; returns code and
    /// reason. A stream that ends without a close frame yields 1006.
    pub async fn expect_close(&mut self) -> (u16, String) {
        self.expect_close_within(WAIT).await
    }

    pub async fn expect_close_within(&mut self, bound: Duration) -> (u16, String) {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left).await {
                Some(Incoming::Json(_)) => continue,
                Some(Incoming::Close(code, reason)) => return (code, reason),
                Some(Incoming::Dropped(why)) => {
                    return (1006, format!("closed without a close frame: {why}"))
                }
                None => panic!("connection not closed within {bound:?}"),
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        tokio::time::timeout(WAIT, self.ws.send(Message::text(text.to_owned())))
            .await
            .expect("send timed out")
            .expect("send failed");
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        tokio::time::timeout(WAIT, self.ws.send(Message::binary(bytes)))
            .await
            .expect("send timed out")
            .expect("send failed");
    }

    /// Sends `pusher:ping` and waits for `pusher:pong`, skipping other frames: proves the
    /// connection is alive and served.
    pub async fn ping_pong(&mut self) {
        self.send_json(&json!({"event": "pusher:ping", "data": {}}))
            .await;
        let pong = self.recv_event("pusher:pong").await;
        assert_eq!(pong["data"], json!("{}"), "pong: {pong}");
    }

    /// Sends a subscribe with optional auth and channel_data.
    pub async fn send_subscribe(
        &mut self,
        channel: &str,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) {
        let mut data = json!({ "channel": channel });
        if let Some(auth) = auth {
            data["auth"] = json!(auth);
        }
        if let Some(cd) = channel_data {
            data["channel_data"] = json!(cd);
        }
        self.send_json(&json!({"event": "pusher:subscribe", "data": data}))
            .await;
    }

    /// Subscribes to a public channel and expects `subscription_succeeded` next.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send_subscribe(channel, None, None).await;
        self.expect_succeeded(channel).await
    }

    /// Subscribes to a private (or encrypted) channel with a valid auth.
    pub async fn subscribe_private(&mut self, channel: &str) -> Value {
        let auth = private_auth(&self.socket_id, channel);
        self.send_subscribe(channel, Some(&auth), None).await;
        self.expect_succeeded(channel).await
    }

    /// Subscribes to a presence channel as `user_id` with `user_info`; returns the parsed
    /// `subscription_succeeded` data.
    pub async fn subscribe_presence(
        &mut self,
        channel: &str,
        user_id: &str,
        user_info: Value,
    ) -> Value {
        let channel_data = json!({"user_id": user_id, "user_info": user_info}).to_string();
        let auth = presence_auth(&self.socket_id, channel, &channel_data);
        self.send_subscribe(channel, Some(&auth), Some(&channel_data))
            .await;
        let frame = self.expect_succeeded(channel).await;
        string_data(&frame)
    }

    /// The next frame about `channel` must be `subscription_succeeded` (frames of other
    /// channels, e.g. presence updates elsewhere, may come first and are skipped).
    pub async fn expect_succeeded(&mut self, channel: &str) -> Value {
        let mut frame = self.recv_json().await;
        while frame["channel"].is_string() && frame["channel"] != json!(channel) {
            frame = self.recv_json().await;
        }
        assert_eq!(
            event_of(&frame),
            "pusher_internal:subscription_succeeded",
            "subscribing to {channel}: {frame}"
        );
        assert_eq!(frame["channel"], json!(channel), "{frame}");
        frame
    }

    /// Sends a `pusher:signin` for `user_data` with a valid signature.
    pub async fn send_signin(&mut self, user_data: &str) {
        let auth = signin_auth(&self.socket_id, user_data);
        self.send_json(&json!({
            "event": "pusher:signin",
            "data": {"auth": auth, "user_data": user_data}
        }))
        .await;
    }

    /// Signs in as `user_id` and expects `pusher:signin_success`.
    pub async fn signin(&mut self, user_id: &str) -> Value {
        let user_data =
            json!({"id": user_id, "user_info": {"name": format!("user {user_id}")}}).to_string();
        self.send_signin(&user_data).await;
        let frame = self.recv_json().await;
        assert_eq!(event_of(&frame), "pusher:signin_success", "{frame}");
        frame
    }

    /// Sends a client event.
    pub async fn send_client_event(&mut self, channel: &str, event: &str, data: Value) {
        self.send_json(&json!({"event": event, "channel": channel, "data": data}))
            .await;
    }

    /// Closes the connection from the client side (bounded).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
        // Let the close handshake complete so the server sees the end now.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}
