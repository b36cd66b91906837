//! Channels and subscribers: a frame is encoded once per event and the same bytes are queued to
//! every subscriber; each connection's writer sends whatever is queued, then flushes once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Frames queued per connection; a subscriber this far behind is dropped rather than waited for.
const QUEUE: usize = 1024;
/// Frames written between two flushes at most.
const BATCH: usize = 256;

type Queue = mpsc::Sender<Message>;

#[derive(Default)]
pub struct Hub {
    next_id: AtomicU64,
    /// A std mutex: it is never held across an await, and a trigger holds it only while
    /// queueing one frame (a refcount increment) per subscriber.
    channels: Mutex<HashMap<String, HashMap<u64, Queue>>>,
}

impl Hub {
    /// Parses `{name, channel, data}` and queues one encoded frame to every subscriber.
    pub fn trigger(&self, body: &[u8]) -> anyhow::Result<()> {
        let event: Value = serde_json::from_slice(body)?;
        let name = event["name"].as_str().context("name")?;
        let channel = event["channel"].as_str().context("channel")?;
        let data = match &event["data"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let frame =
            Message::text(json!({"event": name, "channel": channel, "data": data}).to_string());
        let mut channels = self
            .channels
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(subs) = channels.get_mut(channel) {
            // A full or closed queue ends the subscription (that client gets no further events)
            // instead of making the trigger wait for it.
            subs.retain(|_, q| q.try_send(frame.clone()).is_ok());
        }
        Ok(())
    }

    fn subscribe(&self, channel: &str, id: u64, queue: &Queue) {
        if let Ok(mut channels) = self.channels.lock() {
            channels
                .entry(channel.to_owned())
                .or_default()
                .insert(id, queue.clone());
        }
    }

    fn unsubscribe(&self, channel: &str, id: u64) {
        if let Ok(mut channels) = self.channels.lock() {
            if let Some(subs) = channels.get_mut(channel) {
                subs.remove(&id);
                if subs.is_empty() {
                    channels.remove(channel);
                }
            }
        }
    }
}

/// Runs one upgraded connection until either side closes it.
pub async fn websocket(stream: TcpStream, read: Vec<u8>, hub: Arc<Hub>) -> anyhow::Result<()> {
    // A small read buffer (as the edge's): clients send little, and 10,000 default 128 KB
    // buffers would dominate.
    let config = WebSocketConfig::default().read_buffer_size(2048);
    let ws = WebSocketStream::from_partially_read(stream, read, Role::Server, Some(config)).await;
    let (mut sink, mut source) = ws.split();
    let (queue, mut queued) = mpsc::channel::<Message>(QUEUE);
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    let writer = tokio::spawn(async move {
        // Empty until the first frame: an idle subscriber should cost no batch buffer.
        let mut batch = Vec::new();
        while queued.recv_many(&mut batch, BATCH).await > 0 {
            for frame in batch.drain(..) {
                sink.feed(frame).await?;
            }
            sink.flush().await?;
        }
        sink.close().await
    });
    let socket_id = format!("{}.{}", id / 1_000_000 + 1, id % 1_000_000);
    let data = json!({"socket_id": socket_id, "activity_timeout": 120}).to_string();
    let hello = json!({"event": "pusher:connection_established", "data": data});
    queue.send(Message::text(hello.to_string())).await?;
    let mut subscribed: Vec<String> = Vec::new();
    while let Some(Ok(msg)) = source.next().await {
        let Message::Text(text) = msg else {
            if msg.is_close() {
                break;
            }
            continue;
        };
        let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let channel = event["data"]["channel"].as_str().unwrap_or_default();
        let reply = match event["event"].as_str().unwrap_or_default() {
            "pusher:subscribe" if !channel.is_empty() => {
                hub.subscribe(channel, id, &queue);
                subscribed.push(channel.to_owned());
                json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
            }
            "pusher:unsubscribe" => {
                hub.unsubscribe(channel, id);
                subscribed.retain(|c| c != channel);
                continue;
            }
            "pusher:ping" => json!({"event": "pusher:pong", "data": "{}"}),
            _ => continue,
        };
        if queue.send(Message::text(reply.to_string())).await.is_err() {
            break;
        }
    }
    for channel in &subscribed {
        hub.unsubscribe(channel, id);
    }
    drop(queue);
    let _ = writer.await;
    Ok(())
}
