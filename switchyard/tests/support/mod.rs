//! Shared helpers for the integration tests: an embedded server on an ephemeral port, a raw
//! WebSocket client with bounded waits, a signed HTTP client for the REST API, and the
//! channel / sign-in auth signatures. Every wait here is bounded so that no test can hang.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchyard::Server;
use switchyard_config::Config;
use switchyard_protocol::rest::{body_md5, string_to_sign, Query};
use switchyard_protocol::signature::{channel_string, presence_string, sign, signin_string};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// The default bound on any single wait.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing else arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(300);

pub const APP_ID: &str = "app-1";
pub const KEY: &str = "key-1";
pub const SECRET: &str = "secret-1";

/// The `[server]` section every test server uses (ephemeral port, short shutdown grace).
pub const SERVER: &str = "[server]\nhost = \"127.0.0.1\"\nport = 0\nshutdown_grace_secs = 1\n";

/// An `[[apps]]` table with the given id, key and secret, plus `extra` TOML lines.
pub fn app_toml(id: &str, key: &str, secret: &str, extra: &str) -> String {
    format!("\n[[apps]]\nid = \"{id}\"\nkey = \"{key}\"\nsecret = \"{secret}\"\n{extra}\n")
}

/// A config with the standard server section and the main app (`APP_ID`/`KEY`/`SECRET`)
/// with `extra` settings.
pub fn main_app(extra: &str) -> String {
    format!("{SERVER}{}", app_toml(APP_ID, KEY, SECRET, extra))
}

/// A running embedded server. Dropping it cancels it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub handle: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server from a complete TOML config (environment empty).
    pub async fn start(toml: &str) -> TestServer {
        let config = Config::load(Some(toml), &HashMap::new())
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}\n{toml}"));
        let server = Server::bind(config).await.expect("bind test server");
        let addr = server.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        let handle = tokio::spawn(server.run(stop.clone()));
        TestServer {
            addr,
            stop,
            handle: Some(handle),
        }
    }

    /// Starts a server with only the main app, configured with `extra`.
    pub async fn with_main_app(extra: &str) -> TestServer {
        TestServer::start(&main_app(extra)).await
    }

    /// Cancels the server and waits (bounded) for `run` to return.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("server run() did not return within 10 s of shutdown")
                .expect("server task panicked");
        }
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.addr, path_and_query)
    }

    /// Connects to the main app with protocol 7 and reads `connection_established`.
    pub async fn connect(&self) -> Client {
        self.connect_key(KEY).await
    }

    /// Connects to the app with `key` and reads `connection_established`.
    pub async fn connect_key(&self, key: &str) -> Client {
        let mut c = self
            .connect_raw(&format!(
                "/app/{key}?protocol=7&client=js&version=8.6.0&flash=false"
            ))
            .await;
        c.established().await;
        c
    }

    /// Opens a WebSocket to `path_and_query` and reads nothing.
    pub async fn connect_raw(&self, path_and_query: &str) -> Client {
        self.connect_with_origin(path_and_query, None).await
    }

    /// Opens a WebSocket with an optional `Origin` header and reads nothing.
    pub async fn connect_with_origin(&self, path_and_query: &str, origin: Option<&str>) -> Client {
        let mut req = self
            .ws_url(path_and_query)
            .into_client_request()
            .expect("client request");
        if let Some(origin) = origin {
            req.headers_mut().insert(
                "Origin",
                HeaderValue::from_str(origin).expect("origin header"),
            );
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("WebSocket connect timed out")
            .expect("WebSocket handshake failed");
        Client {
            ws,
            socket_id: String::new(),
        }
    }

    /// A REST client for the main app.
    pub fn rest(&self) -> Rest {
        self.rest_for(APP_ID, KEY, SECRET)
    }

    pub fn rest_for(&self, app_id: &str, key: &str, secret: &str) -> Rest {
        Rest {
            addr: self.addr,
            app_id: app_id.into(),
            key: key.into(),
            secret: secret.into(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

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

// ---------------------------------------------------------------------------------------------
// Channel and sign-in auth

pub fn token(secret: &str, key: &str, message: &str) -> String {
    format!("{key}:{}", sign(secret, message.as_bytes()))
}

pub fn private_auth(socket_id: &str, channel: &str) -> String {
    token(SECRET, KEY, &channel_string(socket_id, channel))
}

pub fn presence_auth(socket_id: &str, channel: &str, channel_data: &str) -> String {
    token(
        SECRET,
        KEY,
        &presence_string(socket_id, channel, channel_data),
    )
}

pub fn signin_auth(socket_id: &str, user_data: &str) -> String {
    token(SECRET, KEY, &signin_string(socket_id, user_data))
}

// ---------------------------------------------------------------------------------------------
// REST

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Appends `auth_signature` to `query` (which must not contain it), signing
/// `METHOD\npath\nsorted query` with `secret`.
pub fn sign_query(secret: &str, method: &str, path: &str, query: &str) -> String {
    let q = Query::parse(query);
    let sig = sign(secret, string_to_sign(method, path, &q).as_bytes());
    format!("{query}&auth_signature={sig}")
}

/// A signed REST client for one app.
pub struct Rest {
    pub addr: SocketAddr,
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

impl Rest {
    pub fn path(&self, suffix: &str) -> String {
        format!("/apps/{}{suffix}", self.app_id)
    }

    /// The full signed query: auth params, `body_md5` for a non-empty body, then `params`
    /// (values must need no URL escaping).
    pub fn signed_query(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &[u8],
    ) -> String {
        let mut query = format!(
            "auth_key={}&auth_timestamp={}&auth_version=1.0",
            self.key,
            now_secs()
        );
        if !body.is_empty() {
            query.push_str(&format!("&body_md5={}", body_md5(body)));
        }
        for (k, v) in params {
            query.push_str(&format!("&{k}={v}"));
        }
        sign_query(&self.secret, method, path, &query)
    }

    /// A signed GET of `/apps/{id}{suffix}`.
    pub async fn get(&self, suffix: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let path = self.path(suffix);
        let query = self.signed_query("GET", &path, params, b"");
        http(self.addr, "GET", &format!("{path}?{query}"), None, b"").await
    }

    /// A signed POST of a JSON body to `/apps/{id}{suffix}`.
    pub async fn post(&self, suffix: &str, body: &Value) -> (u16, Value) {
        self.post_text(suffix, &body.to_string()).await
    }

    /// A signed POST of raw text as `application/json` (or with no body and no type when
    /// empty).
    pub async fn post_text(&self, suffix: &str, body: &str) -> (u16, Value) {
        let path = self.path(suffix);
        let query = self.signed_query("POST", &path, &[], body.as_bytes());
        let content_type = (!body.is_empty()).then_some("application/json");
        http(
            self.addr,
            "POST",
            &format!("{path}?{query}"),
            content_type,
            body.as_bytes(),
        )
        .await
    }

    /// Triggers `event` on `channel` with string `data`; asserts 200 `{}`.
    pub async fn trigger(&self, channel: &str, event: &str, data: &str) {
        let (status, body) = self
            .post(
                "/events",
                &json!({"name": event, "channel": channel, "data": data}),
            )
            .await;
        assert_eq!((status, &body), (200, &json!({})), "trigger on {channel}");
    }
}

/// One HTTP/1.1 request over a fresh TCP connection (`Connection: close`), bounded by 5 s.
/// Returns the status and the body as JSON (a non-JSON body becomes a JSON string).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = content_type
        .map(|ct| ("Content-Type", ct))
        .into_iter()
        .collect();
    http_with_headers(addr, method, path_and_query, &headers, body).await
}

/// [`http`] with any request headers.
pub async fn http_with_headers(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let fut = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect for HTTP");
        let mut head = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(body).await.expect("write body");
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .expect("read HTTP response");
        raw
    };
    let raw = tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("HTTP {method} {path_and_query} timed out"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("malformed HTTP response: {text:?}"));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Retries `check` every 25 ms until it returns Some, within 5 s; for state the server
/// updates a moment later (subscriber counts reported by the edge).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the REST API reports `channel` with `count` subscribers.
pub async fn wait_subscription_count(rest: &Rest, channel: &str, count: u64) {
    let suffix = format!("/channels/{channel}");
    eventually(
        &format!("{channel} to have {count} subscribers"),
        || async {
            let (status, body) = rest.get(&suffix, &[("info", "subscription_count")]).await;
            (status == 200 && body["subscription_count"] == json!(count)).then_some(())
        },
    )
    .await
}

/// Asserts an error response: the status and a JSON body with a non-empty `error` string.
pub fn assert_error(what: &str, got: &(u16, Value), status: u16) {
    assert_eq!(got.0, status, "{what}: body {}", got.1);
    let msg = got.1["error"].as_str().unwrap_or("");
    assert!(
        !msg.is_empty(),
        "{what}: error body must be JSON with an \"error\" message, got {}",
        got.1
    );
}

/// One HTTP/1.1 request as a test receiver reads it.
pub struct HttpRequest {
    /// The request line and headers, as text.
    pub head: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Why a test receiver got no request out of a connection.
#[derive(Debug)]
pub enum ReadError {
    /// The sender stopped before the request was whole (end of stream or a reset). A sender
    /// killed with -9 mid-POST does this, and any receiver sees it after a crash: the job is
    /// redelivered, so a lost job shows up as a missing event, not here.
    Cut(String),
    /// A whole head that is not a valid request.
    Malformed(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Cut(m) => write!(f, "cut: {m}"),
            ReadError::Malformed(m) => write!(f, "malformed: {m}"),
        }
    }
}

/// Reads one request with a `Content-Length` body from `stream` (answering is the caller's).
pub async fn read_request(stream: &mut TcpStream) -> Result<HttpRequest, ReadError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| ReadError::Cut(format!("read: {e}")))?;
        if n == 0 {
            return Err(ReadError::Cut(format!(
                "connection closed inside the head: {:?}",
                String::from_utf8_lossy(&buf)
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ReadError::Malformed(format!("no content-length in {head:?}")))?;
    while buf.len() < head_end + length {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| ReadError::Cut(format!("read body: {e}")))?;
        if n == 0 {
            return Err(ReadError::Cut("connection closed inside the body".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    Ok(HttpRequest {
        head,
        headers,
        body,
    })
}
