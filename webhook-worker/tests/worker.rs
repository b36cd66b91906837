//! The worker against a real local HTTP receiver, over the memory and Redis queues.

mod fixtures;
mod receiver;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use switchyard_apps::{App, StaticAppStore, Webhook};
use switchyard_protocol::signature;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webhook_worker::{
    LeaseId, Leased, MemoryDeadLetters, MemoryQueue, QueueError, WebhookEvent, WebhookJob,
    WebhookQueue, WebhookSink, WorkerConfig,
};

use fixtures::{job, Stream};
use receiver::{Received, Receiver};

const SECRET: &str = "secret-1";
const SOON: Duration = Duration::from_secs(5);

/// A memory queue that remembers what was acked.
#[derive(Default)]
struct Recording {
    inner: MemoryQueue,
    acked: Mutex<Vec<LeaseId>>,
}

impl Recording {
    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    async fn wait_for_acks(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + SOON;
        while self.acked() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} acked",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[async_trait]
impl WebhookSink for Recording {
    async fn push(&self, job: WebhookJob) -> Result<(), QueueError> {
        self.inner.push(job).await
    }
}

#[async_trait]
impl WebhookQueue for Recording {
    async fn pull(&self, max: usize, wait: Duration) -> Result<Vec<Leased>, QueueError> {
        self.inner.pull(max, wait).await
    }
    async fn ack(&self, id: &LeaseId) -> Result<(), QueueError> {
        self.acked.lock().expect("lock").push(id.clone());
        self.inner.ack(id).await
    }
}

fn hook(url: &str) -> Webhook {
    Webhook {
        url: url.into(),
        event_types: Vec::new(),
        filter: Default::default(),
        headers: Default::default(),
    }
}

fn app(id: &str, hooks: Vec<Webhook>) -> App {
    let mut app = App::new(id, &format!("key-{id}"), SECRET);
    app.webhooks = hooks;
    app
}

fn fast_retries() -> WorkerConfig {
    WorkerConfig {
        pull_wait: Duration::from_millis(100),
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        retry_window: Duration::from_secs(10),
        request_timeout: Duration::from_secs(2),
        ..WorkerConfig::default()
    }
}

struct Worker {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Worker {
    fn start(queue: Arc<dyn WebhookQueue>, apps: Vec<App>, config: WorkerConfig) -> Worker {
        let stop = CancellationToken::new();
        let task = tokio::spawn(webhook_worker::run_with_dead_letters(
            queue,
            Arc::new(StaticAppStore::new(apps)),
            Arc::new(MemoryDeadLetters::default()),
            config,
            stop.clone(),
        ));
        Worker { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("worker stops promptly")
            .expect("worker task");
    }
}

/// Checks the request is what Pusher sends, and returns the events it carried.
fn check(request: &Received, app_key: &str) -> Vec<serde_json::Value> {
    assert_eq!(request.key.as_deref(), Some(app_key));
    let sig = request.signature.as_deref().expect("X-Pusher-Signature");
    assert!(
        signature::verify(SECRET, &request.body, sig),
        "bad signature {sig}"
    );
    assert_eq!(sig, sig.to_lowercase());
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json body");
    let time_ms = body["time_ms"].as_u64().expect("time_ms");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    assert!(
        now.abs_diff(time_ms) < 60_000,
        "time_ms is stamped at send time"
    );
    body["events"].as_array().expect("events").clone()
}

#[tokio::test]
async fn every_job_reaches_every_matching_webhook_signed() {
    let mut all = Receiver::start(&[], 200).await;
    let mut members = Receiver::start(&[], 200).await;
    let mut only_members = hook(&members.url);
    only_members.event_types = vec!["member_added".into()];
    let queue = Arc::new(Recording::default());
    let worker = Worker::start(
        queue.clone(),
        vec![app("app-1", vec![hook(&all.url), only_members])],
        fast_retries(),
    );
    let added = WebhookJob {
        app_id: "app-1".into(),
        event: WebhookEvent::MemberAdded {
            channel: "presence-room".into(),
            user_id: "u1".into(),
        },
        time_ms: 1,
        only_url: None,
        id: None,
    };
    let jobs = [job("app-1", 1), job("app-1", 2), added.clone()];
    for j in &jobs {
        queue.push(j.clone()).await.expect("push");
    }

    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend(check(&all.next(SOON).await, "key-app-1"));
    }
    let mut expected: Vec<_> = jobs.iter().map(|j| serde_json::json!(j.event)).collect();
    let by_text = |v: &serde_json::Value| v.to_string();
    seen.sort_by_key(by_text);
    expected.sort_by_key(by_text);
    assert_eq!(seen, expected);
    assert_eq!(
        check(&members.next(SOON).await, "key-app-1"),
        [serde_json::json!(added.event)]
    );
    members.assert_quiet(Duration::from_millis(200)).await;
    queue.wait_for_acks(3).await;
    worker.stop().await;
}

#[tokio::test]
async fn server_errors_are_retried_until_delivered_then_acked() {
    let mut receiver = Receiver::start(&[500, 500], 200).await;
    let queue = Arc::new(Recording::default());
    let worker = Worker::start(
        queue.clone(),
        vec![app("app-1", vec![hook(&receiver.url)])],
        fast_retries(),
    );
    queue.push(job("app-1", 1)).await.expect("push");
    let first = receiver.next(SOON).await;
    let second = receiver.next(SOON).await;
    assert_eq!(
        queue.acked(),
        0,
        "not acked while the delivery is unfinished"
    );
    let third = receiver.next(SOON).await;
    check(&third, "key-app-1");
    assert!(first.idempotency_key.is_some());
    assert_eq!(first.idempotency_key, second.idempotency_key);
    assert_eq!(first.idempotency_key, third.idempotency_key);
    queue.wait_for_acks(1).await;
    receiver.assert_quiet(Duration::from_millis(200)).await;
    worker.stop().await;
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let mut receiver = Receiver::start(&[404], 200).await;
    let queue = Arc::new(Recording::default());
    let worker = Worker::start(
        queue.clone(),
        vec![app("app-1", vec![hook(&receiver.url)])],
        fast_retries(),
    );
    queue.push(job("app-1", 1)).await.expect("push");
    receiver.next(SOON).await;
    queue.wait_for_acks(1).await;
    receiver.assert_quiet(Duration::from_millis(300)).await;
    worker.stop().await;
}

#[tokio::test]
async fn a_webhook_still_failing_after_the_window_is_dead_lettered_and_acked() {
    let mut receiver = Receiver::start(&[], 503).await;
    let queue = Arc::new(Recording::default());
    let config = WorkerConfig {
        retry_window: Duration::from_millis(300),
        ..fast_retries()
    };
    let worker = Worker::start(
        queue.clone(),
        vec![app("app-1", vec![hook(&receiver.url)])],
        config,
    );
    queue.push(job("app-1", 1)).await.expect("push");
    receiver.next(SOON).await;
    receiver.next(SOON).await;
    queue.wait_for_acks(1).await;
    worker.stop().await;
}

#[tokio::test]
async fn jobs_for_unknown_apps_are_acked_without_delivery() {
    let queue = Arc::new(Recording::default());
    let worker = Worker::start(queue.clone(), Vec::new(), fast_retries());
    queue.push(job("nobody", 1)).await.expect("push");
    queue.wait_for_acks(1).await;
    worker.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_delay_other_apps() {
    let slow = Receiver::start_slow(&[], 200, Duration::from_secs(30)).await;
    let mut fast = Receiver::start(&[], 200).await;
    let queue = Arc::new(Recording::default());
    let config = WorkerConfig {
        concurrency: 4,
        per_receiver_concurrency: 2,
        request_timeout: Duration::from_secs(60),
        ..fast_retries()
    };
    let apps = vec![
        app("slow", vec![hook(&slow.url)]),
        app("fast", vec![hook(&fast.url)]),
    ];
    let worker = Worker::start(queue.clone(), apps, config);
    for n in 0..20 {
        queue.push(job("slow", n)).await.expect("push");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    queue.push(job("fast", 1)).await.expect("push");
    check(&fast.next(Duration::from_secs(2)).await, "key-fast");
    worker.stop().await;
}

#[tokio::test]
async fn shutdown_stops_pulling_and_leaves_unfinished_jobs_unacked() {
    let slow = Receiver::start_slow(&[], 200, Duration::from_secs(30)).await;
    let queue = Arc::new(Recording::default());
    let worker = Worker::start(
        queue.clone(),
        vec![app("app-1", vec![hook(&slow.url)])],
        fast_retries(),
    );
    queue.push(job("app-1", 1)).await.expect("push");
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    queue.push(job("app-1", 2)).await.expect("push");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        queue.acked(),
        0,
        "the in-flight job is abandoned, not acked"
    );
    let left = queue.pull(10, Duration::ZERO).await.expect("pull");
    assert_eq!(left.len(), 1, "nothing pulls after shutdown");
    assert_eq!(left[0].job, job("app-1", 2));
}

#[tokio::test]
async fn over_redis_a_delivered_job_leaves_the_stream() {
    let stream = Stream::new("worker").await;
    let mut receiver = Receiver::start(&[500], 200).await;
    let worker = Worker::start(
        stream.queue("worker-1").await,
        vec![app("app-1", vec![hook(&receiver.url)])],
        fast_retries(),
    );
    let producer = stream.queue("producer").await;
    producer.push(job("app-1", 1)).await.expect("push");
    producer.push(job("app-1", 2)).await.expect("push");
    let mut events = Vec::new();
    for _ in 0..3 {
        events.extend(check(&receiver.next(SOON).await, "key-app-1"));
    }
    assert_eq!(events.len(), 3, "two jobs, one retried");
    let deadline = tokio::time::Instant::now() + SOON;
    while stream.len().await > 0 || stream.pending().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs were not acked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await;
    stream.delete().await;
}
