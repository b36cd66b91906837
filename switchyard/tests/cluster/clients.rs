//! WebSocket clients with the cluster app's credentials, and bounded reads of their frames.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_protocol::signature::{channel_string, presence_string, signin_string};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{event_of, string_data, token, Client, Incoming, WAIT};

use super::{CLUSTER_KEY, CLUSTER_SECRET};

/// Opens a WebSocket to the app on `addr` and reads `connection_established`.
pub async fn connect_to(addr: SocketAddr) -> Client {
    let url =
        format!("ws://{addr}/app/{CLUSTER_KEY}?protocol=7&client=js&version=8.6.0&flash=false");
    let req = url.into_client_request().expect("client request");
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .unwrap_or_else(|_| panic!("WebSocket connect to {addr} timed out"))
        .unwrap_or_else(|e| panic!("WebSocket handshake with {addr} failed: {e}"));
    let mut client = Client {
        ws,
        socket_id: String::new(),
    };
    client.established().await;
    client
}

/// Joins presence `channel` as `user_id` (user_info `{"name": user_id}`); returns the parsed
/// `subscription_succeeded` data.
pub async fn join_presence(c: &mut Client, channel: &str, user_id: &str) -> Value {
    let channel_data = json!({"user_id": user_id, "user_info": {"name": user_id}}).to_string();
    let auth = token(
        CLUSTER_SECRET,
        CLUSTER_KEY,
        &presence_string(&c.socket_id, channel, &channel_data),
    );
    c.send_subscribe(channel, Some(&auth), Some(&channel_data))
        .await;
    let frame = c.expect_succeeded(channel).await;
    string_data(&frame)
}

/// Subscribes to a private channel with the cluster app's auth.
pub async fn subscribe_private(c: &mut Client, channel: &str) -> Value {
    let auth = token(
        CLUSTER_SECRET,
        CLUSTER_KEY,
        &channel_string(&c.socket_id, channel),
    );
    c.send_subscribe(channel, Some(&auth), None).await;
    c.expect_succeeded(channel).await
}

/// Signs in as `user_id` and expects `pusher:signin_success`.
pub async fn signin(c: &mut Client, user_id: &str) -> Value {
    let user_data = json!({"id": user_id}).to_string();
    let auth = token(
        CLUSTER_SECRET,
        CLUSTER_KEY,
        &signin_string(&c.socket_id, &user_data),
    );
    c.send_json(&json!({
        "event": "pusher:signin",
        "data": {"auth": auth, "user_data": user_data}
    }))
    .await;
    c.recv_event("pusher:signin_success").await
}

/// Skips frames until one with `event` (and, if given, `channel`) arrives within `bound`.
pub async fn recv_event_within(
    c: &mut Client,
    event: &str,
    channel: Option<&str>,
    bound: Duration,
) -> Value {
    let deadline = Instant::now() + bound;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next_within(left).await {
            Some(Incoming::Json(v))
                if event_of(&v) == event
                    && channel.is_none_or(|ch| v["channel"].as_str() == Some(ch)) =>
            {
                return v
            }
            Some(Incoming::Json(v)) => skipped.push(v),
            Some(other) => panic!("waiting for {event}, got {other:?} (skipped {skipped:?})"),
            None => panic!("no {event} within {bound:?} (skipped {skipped:?})"),
        }
    }
}

/// Every JSON frame that arrives until `quiet` passes with nothing new (or `bound` passes);
/// panics on a close or a dropped connection.
pub async fn drain_frames(c: &mut Client, quiet: Duration, bound: Duration) -> Vec<Value> {
    let deadline = Instant::now() + bound;
    let mut frames = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return frames;
        }
        match c.next_within(quiet.min(left)).await {
            None => return frames,
            Some(Incoming::Json(v)) => frames.push(v),
            Some(other) => panic!("expected frames or quiet, got {other:?} after {frames:?}"),
        }
    }
}
