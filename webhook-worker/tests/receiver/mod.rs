//! A webhook receiver on a local port: answers with scripted statuses and reports every
//! request it gets.

use std::collections::VecDeque;
use std::convert::Infallible;
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
}

struct Script {
    statuses: Mutex<VecDeque<u16>>,
    then: u16,
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
            then,
            delay,
        });
        let (tx, requests) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, tx) = (script.clone(), tx.clone());
                let service = service_fn(move |req| answer(req, script.clone(), tx.clone()));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Receiver { url, requests }
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
        .unwrap_or(script.then);
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
