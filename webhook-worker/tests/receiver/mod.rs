//! A webhook receiver on a local port: answers with scripted statuses and reports every
//! request it gets.

#![allow(dead_code)] // each test crate uses its own subset

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct Received {
    pub key: Option<String>,
    pub signature: Option<String>,
    pub idempotency_key: Option<String>,
    pub body: Bytes,
}

pub struct Receiver {
    pub url: String,
    requests: mpsc::UnboundedReceiver<Received>,
    script: Arc<Script>,
}

struct Script {
    statuses: Mutex<VecDeque<u16>>,
    then: AtomicU16,
    delay: Duration,
}

impl Receiver {
    /// Answers `statuses` in order, then `then` forever.
    pub async fn start(statuses: &[u16], then: u16) -> Receiver {
        Receiver::start_slow(statuses, then, Duration::ZERO).await
    }

    /// Like `start`, but every answer takes `delay`.
    pub async fn start_slow(statuses: &[u16], then: u16, delay: Duration) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/webhooks", listener.local_addr().expect("addr"));
        let script = Arc::new(Script {
            statuses: Mutex::new(statuses.iter().copied().collect()),
            then: AtomicU16::new(then),
            delay,
        });
        let (tx, requests) = mpsc::unbounded_channel();
        let serving = script.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, tx) = (serving.clone(), tx.clone());
                let service = service_fn(move |req| answer(req, script.clone(), tx.clone()));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Receiver {
            url,
            requests,
            script,
        }
    }

    /// Answers `status` to every request from now on, once the scripted statuses are used.
    pub fn answer_from_now(&self, status: u16) {
        self.script.then.store(status, Ordering::SeqCst);
    }

    /// Forgets the requests received so far; returns how many there were.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.requests.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    /// The next request, failing the test if none comes within `within`.
    pub async fn next(&mut self, within: Duration) -> Received {
        tokio::time::timeout(within, self.requests.recv())
            .await
            .expect("no webhook arrived in time")
            .expect("receiver stopped")
    }

    /// Asserts that no request arrives for `quiet`.
    pub async fn assert_quiet(&mut self, quiet: Duration) {
        if let Ok(Some(extra)) = tokio::time::timeout(quiet, self.requests.recv()).await {
            panic!("unexpected webhook: {extra:?}");
        }
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    script: Arc<Script>,
    tx: mpsc::UnboundedSender<Received>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (key, signature, idempotency_key) = (
        header("x-pusher-key"),
        header("x-pusher-signature"),
        header("idempotency-key"),
    );
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let status = script
        .statuses
        .lock()
        .expect("script lock")
        .pop_front()
        .unwrap_or_else(|| script.then.load(Ordering::SeqCst));
    tokio::time::sleep(script.delay).await;
    let _ = tx.send(Received {
        key,
        signature,
        idempotency_key,
        body,
    });
    let status = StatusCode::from_u16(status).expect("status");
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    Ok(res)
}

impl Received {
    /// The events of a webhook body, after checking it is what Pusher sends: signed with
    /// `secret` over the exact body, with `app_key` and a `time_ms` stamped at send time.
    pub fn verified_events(&self, app_key: &str, secret: &str) -> Vec<serde_json::Value> {
        assert_eq!(self.key.as_deref(), Some(app_key));
        let sig = self.signature.as_deref().expect("X-Pusher-Signature");
        assert!(
            switchyard_protocol::signature::verify(secret, &self.body, sig),
            "bad signature {sig}"
        );
        let body: serde_json::Value = serde_json::from_slice(&self.body).expect("json body");
        let time_ms = body["time_ms"].as_u64().expect("time_ms");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        assert!(
            now.abs_diff(time_ms) < 60_000,
            "time_ms is stamped at send time"
        );
        body["events"].as_array().expect("events").clone()
    }
}
