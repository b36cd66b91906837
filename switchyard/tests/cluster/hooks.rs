//! [`Hooks`]: the cluster's webhook receiver, and counting what it received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_protocol::signature::sign;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::support::{read_request, HttpRequest, WAIT};

use super::{CLUSTER_KEY, CLUSTER_SECRET};

/// A webhook receiver on 127.0.0.1: answers every POST with 200, checks the key and signature,
/// and collects every event of every body.
pub struct Hooks {
    pub port: u16,
    rx: mpsc::UnboundedReceiver<Value>,
    /// Every event received so far (after [`Hooks::drain`] or a wait).
    pub events: Vec<Value>,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Hooks {
    pub async fn start() -> Hooks {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook receiver");
        let port = listener.local_addr().expect("receiver addr").port();
        let (tx, rx) = mpsc::unbounded_channel();
        let problems = Arc::new(Mutex::new(Vec::new()));
        let problems_in = problems.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, problems) = (tx.clone(), problems_in.clone());
                tokio::spawn(async move {
                    let received = tokio::time::timeout(WAIT, receive(stream)).await;
                    match received {
                        Ok(Ok(events)) => {
                            for e in events {
                                let _ = tx.send(e);
                            }
                        }
                        Ok(Err(problem)) => problems.lock().expect("lock").push(problem),
                        Err(_) => problems
                            .lock()
                            .expect("lock")
                            .push("webhook request not read within 5 s".into()),
                    }
                });
            }
        });
        Hooks {
            port,
            rx,
            events: Vec::new(),
            problems,
        }
    }

    /// Moves everything received so far into `events`.
    pub fn drain(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.events.push(e);
        }
    }

    /// Waits until `done(&events)` holds, within `bound`.
    pub async fn wait_for(&mut self, what: &str, bound: Duration, done: impl Fn(&[Value]) -> bool) {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            self.drain();
            if done(&self.events) {
                return;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => self.events.push(e),
                Ok(None) => panic!("webhook receiver stopped"),
                Err(_) => panic!(
                    "no {what} within {bound:?}; webhooks received: {:#?}",
                    self.events
                ),
            }
        }
    }

    /// Collects whatever arrives during `span`.
    pub async fn collect_for(&mut self, span: Duration) {
        let deadline = tokio::time::Instant::now() + span;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.events.push(e);
        }
    }

    /// Requests that were malformed or badly signed.
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().expect("lock").clone()
    }
}

/// How many of `events` are `name` on `channel` (for `user_id`, if given).
pub fn count_events(events: &[Value], name: &str, channel: &str, user_id: Option<&str>) -> usize {
    events
        .iter()
        .filter(|e| {
            e["name"] == json!(name)
                && e["channel"] == json!(channel)
                && user_id.is_none_or(|u| e["user_id"] == json!(u))
        })
        .count()
}

/// Per user id, how many `name` events on `channel` arrived.
pub fn count_per_user(events: &[Value], name: &str, channel: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for e in events {
        if e["name"] == json!(name) && e["channel"] == json!(channel) {
            let user = e["user_id"].as_str().unwrap_or("?").to_owned();
            *counts.entry(user).or_default() += 1;
        }
    }
    counts
}

/// Reads one HTTP request, answers 200, and returns the events of its body.
async fn receive(mut stream: TcpStream) -> Result<Vec<Value>, String> {
    let Some(HttpRequest {
        head,
        headers,
        body,
    }) = read_request(&mut stream).await?
    else {
        // A sender killed mid-POST (the chaos test kills workers): the job is redelivered,
        // and a lost one shows up as a missing event.
        return Ok(Vec::new());
    };
    let body = body.as_slice();
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await;
    let _ = stream.shutdown().await;

    if headers.get("x-pusher-key").map(String::as_str) != Some(CLUSTER_KEY) {
        return Err(format!("bad X-Pusher-Key in {head:?}"));
    }
    let expected = sign(CLUSTER_SECRET, body);
    if headers.get("x-pusher-signature") != Some(&expected) {
        return Err(format!("bad X-Pusher-Signature in {head:?}"));
    }
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    })?;
    // Delivery is at least once: a redelivered POST repeats its Idempotency-Key, which is
    // kept on each event so tests can tell a redelivery from a second event.
    let key = headers.get("idempotency-key").cloned();
    let events = json["events"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("no events array in {json}"))?;
    Ok(events
        .into_iter()
        .map(|mut e| {
            if let (Some(key), Some(obj)) = (&key, e.as_object_mut()) {
                obj.insert("_idempotency_key".into(), Value::String(key.clone()));
            }
            e
        })
        .collect())
}

/// `events` with redeliveries removed: a repeated event id (channel-core sends an effect at
/// least once, each event with a stable `"id"`), or a repeated Idempotency-Key and event.
pub fn distinct(events: &[Value]) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .filter(
            |e| match (e["id"].as_str(), e["_idempotency_key"].as_str()) {
                (Some(id), _) => seen.insert(("id".to_owned(), id.to_owned())),
                (None, Some(key)) => seen.insert((key.to_owned(), e.to_string())),
                (None, None) => true,
            },
        )
        .cloned()
        .collect()
}
