//! The steady trigger load on the feed (numbered events, and which numbers the API accepted)
//! and a REST call that reports a failure instead of panicking, since the API may hang or
//! refuse while a part of the cluster is down.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::Rest;

/// The trigger event name on the feed; its data is the trigger's number.
pub const LOAD_EVENT: &str = "load";
/// Pause between triggers (one request at a time).
const PACE: Duration = Duration::from_millis(40);
/// How long one REST request may take.
const REQUEST_BOUND: Duration = Duration::from_secs(5);

/// A signed REST request; Err says why there was no HTTP answer.
pub async fn call(
    rest: &Rest,
    method: &str,
    suffix: &str,
    params: &[(&str, &str)],
    body: &str,
) -> Result<(u16, Value), String> {
    let path = rest.path(suffix);
    let query = rest.signed_query(method, &path, params, body.as_bytes());
    let exchange = async {
        let mut stream = TcpStream::connect(rest.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/json\r\n"
        };
        let head = format!(
            "{method} {path}?{query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            rest.addr,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(raw)
    };
    let raw = tokio::time::timeout(REQUEST_BOUND, exchange)
        .await
        .map_err(|_| format!("no answer within {REQUEST_BOUND:?}"))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed answer {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    Ok((status, body))
}

#[derive(Default)]
struct Sent {
    /// The number the next trigger carries.
    next: u64,
    /// Every number below this one has been answered (or given up on).
    answered_below: u64,
    accepted: BTreeSet<u64>,
    /// Answers by status ("200", "503", "no answer"…).
    outcomes: BTreeMap<String, u64>,
}

impl Sent {
    fn record(&mut self, n: u64, outcome: &Result<(u16, Value), String>) {
        let label = match outcome {
            Ok((200, _)) => {
                self.accepted.insert(n);
                "200".to_owned()
            }
            Ok((status, _)) => status.to_string(),
            Err(_) => "no answer".to_owned(),
        };
        *self.outcomes.entry(label).or_default() += 1;
        self.answered_below = n + 1;
    }
}

/// Triggers on the feed one after the other until stopped.
pub struct Load {
    sent: Arc<Mutex<Sent>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    pub fn start(rest: Rest, feed: String) -> Load {
        let sent = Arc::new(Mutex::new(Sent::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sent_in, stop_in) = (sent.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !stop_in.load(Ordering::Relaxed) {
                let n = {
                    let mut sent = sent_in.lock().expect("lock");
                    sent.next += 1;
                    sent.next - 1
                };
                let body = json!({"name": LOAD_EVENT, "channel": feed, "data": n.to_string()});
                let outcome = call(&rest, "POST", "/events", &[], &body.to_string()).await;
                sent_in.lock().expect("lock").record(n, &outcome);
                tokio::time::sleep(PACE).await;
            }
        });
        Load { sent, stop, task }
    }

    /// The number of the next trigger: a round that starts now owns the triggers from here.
    pub fn mark(&self) -> u64 {
        self.sent.lock().expect("lock").next
    }

    /// Waits (bounded) until every trigger sent so far has its answer; returns the number of
    /// the next one, so `mark()..settle()` are the triggers of a round.
    pub async fn settle(&self) -> u64 {
        let end = self.mark();
        let deadline = Instant::now() + REQUEST_BOUND * 2;
        while self.sent.lock().expect("lock").answered_below < end && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        end
    }

    /// The accepted (200) trigger numbers within `range`.
    pub fn accepted(&self, range: Range<u64>) -> Vec<u64> {
        self.sent
            .lock()
            .expect("lock")
            .accepted
            .range(range)
            .copied()
            .collect()
    }

    pub fn outcomes(&self) -> BTreeMap<String, u64> {
        self.sent.lock().expect("lock").outcomes.clone()
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(REQUEST_BOUND * 2, self.task).await;
    }
}
