//! The webhook scenario: push jobs into the Redis webhook queue, receive what the real
//! `webhook-worker` delivers, and report throughput, losses and duplicates.
//!
//! `loadgen webhooks --redis URL --stream KEY --app-id ID --listen HOST:PORT --jobs N`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use webhook_worker::{RedisQueue, WebhookEvent, WebhookJob, WebhookSink, DEFAULT_GROUP};

const PUSHERS: usize = 32;

pub struct Options {
    redis: String,
    stream: String,
    app_id: String,
    listen: SocketAddr,
    jobs: usize,
    timeout: Duration,
}

pub const USAGE: &str =
    "usage: loadgen webhooks --redis redis://127.0.0.1:6379 --stream NS:webhooks
  --app-id ID --listen 127.0.0.1:7601 [--jobs 20000] [--timeout-secs 60]
Receives webhooks on --listen (the app's webhook URL must point there), pushes --jobs jobs into
the Redis stream the webhook-worker drains, and prints deliveries per second, losses and
duplicates as JSON.";

impl Options {
    pub fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut map: HashMap<String, String> = HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let Some(name) = flag.strip_prefix("--") else {
                bail!("unexpected argument {flag:?}");
            };
            let value = it
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            map.insert(name.to_owned(), value.clone());
        }
        let mut take = |k: &str| map.remove(k);
        let opts = Options {
            redis: take("redis").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            stream: take("stream").context("--stream is required")?,
            app_id: take("app-id").context("--app-id is required")?,
            listen: take("listen")
                .context("--listen is required")?
                .parse()
                .context("--listen")?,
            jobs: take("jobs")
                .unwrap_or_else(|| "20000".into())
                .parse()
                .context("--jobs")?,
            timeout: Duration::from_secs(
                take("timeout-secs")
                    .unwrap_or_else(|| "60".into())
                    .parse()
                    .context("--timeout-secs")?,
            ),
        };
        if let Some(unknown) = map.keys().next() {
            bail!("unknown option --{unknown}");
        }
        Ok(opts)
    }
}

/// Events received, by channel name (each job has its own channel).
#[derive(Default)]
struct Received {
    per_channel: HashMap<String, u32>,
    posts: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

pub async fn run(opts: Options) -> anyhow::Result<Value> {
    let received = Arc::new(Mutex::new(Received::default()));
    let listener = TcpListener::bind(opts.listen)
        .await
        .context("bind the receiver")?;
    tokio::spawn(receive(listener, received.clone()));

    let queue =
        Arc::new(RedisQueue::connect(&opts.redis, &opts.stream, DEFAULT_GROUP, "loadgen").await?);
    let pushed_at = Instant::now();
    // Several pushers, so the producer side is not what limits the measured rate.
    let mut pushers = tokio::task::JoinSet::new();
    for first in 0..PUSHERS {
        let (queue, app_id, jobs) = (queue.clone(), opts.app_id.clone(), opts.jobs);
        pushers.spawn(async move {
            for n in (first..jobs).step_by(PUSHERS) {
                let job = WebhookJob {
                    app_id: app_id.clone(),
                    event: WebhookEvent::ChannelOccupied {
                        channel: format!("bench-{n}"),
                    },
                    time_ms: 0,
                    only_url: None,
                    id: None,
                };
                queue.push(job).await?;
            }
            Ok::<_, webhook_worker::QueueError>(())
        });
    }
    while let Some(pushed) = pushers.join_next().await {
        pushed??;
    }
    let push_secs = pushed_at.elapsed().as_secs_f64();
    let deadline = Instant::now() + opts.timeout;
    loop {
        let done = lock(&received).per_channel.len() >= opts.jobs;
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = lock(&received);
    let delivered = r.per_channel.len();
    let duplicates: u32 = r.per_channel.values().map(|n| n - 1).sum();
    let secs = r
        .first
        .zip(r.last)
        .map_or(0.0, |(a, b)| (b - a).as_secs_f64());
    Ok(json!({
        "scenario": "webhooks",
        "jobs": opts.jobs,
        "push_seconds": push_secs,
        "delivered": delivered,
        "lost": opts.jobs - delivered,
        "duplicates": duplicates,
        "posts": r.posts,
        "delivery_seconds": secs,
        "delivered_per_second": if secs > 0.0 { delivered as f64 / secs } else { 0.0 },
        "end_to_end_per_second": delivered as f64 / pushed_at.elapsed().as_secs_f64(),
    }))
}

fn lock(r: &Mutex<Received>) -> std::sync::MutexGuard<'_, Received> {
    r.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn receive(listener: TcpListener, received: Arc<Mutex<Received>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let received = received.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let received = received.clone();
                async move {
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    record(&received, &body);
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"{}",
                    ))))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn record(received: &Mutex<Received>, body: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let now = Instant::now();
    let mut r = lock(received);
    r.posts += 1;
    r.first.get_or_insert(now);
    r.last = Some(now);
    for event in v["events"].as_array().into_iter().flatten() {
        if let Some(channel) = event["channel"].as_str() {
            *r.per_channel.entry(channel.to_owned()).or_default() += 1;
        }
    }
}
