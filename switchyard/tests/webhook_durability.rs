//! The `webhook-worker` binary loses no webhook when it is killed in the middle of a batch
//! (Redis and SQS queues) or when the receiver is down for a while: every job is delivered at
//! least once (duplicates allowed), within a bounded wait. Real worker processes against the
//! local Redis (127.0.0.1:6379) and the local SQS-compatible server (127.0.0.1:9324), with a
//! webhook receiver in the test. Jobs are told apart by their channel names.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{read_request, HttpRequest};
use switchyard_protocol::signature::sign;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use webhook_worker::{
    RedisQueue, SqsQueue, SqsQueueConfig, WebhookEvent, WebhookJob, WebhookQueue,
};

const REDIS: &str = "redis://127.0.0.1:6379";
const SQS_ENDPOINT: &str = "http://127.0.0.1:9324";
const APP: &str = "app-1";
const KEY: &str = "key-1";
const SECRET: &str = "durability-app-secret";
/// `[worker] reclaim_after_secs` of every worker here: a killed worker's jobs go to the next
/// one after this long (instead of the default 60 s).
const RECLAIM_AFTER_SECS: u64 = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Redis,
    Sqs,
}

/// One test's namespace (and SQS queue), config file and workers; kills the workers and
/// removes the Redis keys and files when dropped.
struct Setup {
    ns: String,
    dir: PathBuf,
    config: PathBuf,
    backend: Backend,
    health_port: u16,
    workers: Vec<Child>,
}

impl Setup {
    /// The app's one webhook goes to `http://127.0.0.1:<hook_port>/hooks`.
    fn new(test: &str, backend: Backend, hook_port: u16) -> Setup {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let ns = format!("sy-test-durable-{test}-{}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(&ns);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let health_port = free_port();
        let config = dir.join("worker.toml");
        let text = format!(
            r#"[server]
host = "127.0.0.1"
shutdown_grace_secs = 1

[cluster]
redis_url = "{REDIS}"
redis_namespace = "{ns}"

[worker]
health_port = {health_port}
retry_window_secs = 300
reclaim_after_secs = {RECLAIM_AFTER_SECS}

[[apps]]
id = "{APP}"
key = "{KEY}"
secret = "{SECRET}"
webhooks = [{{ url = "http://127.0.0.1:{hook_port}/hooks" }}]
"#
        );
        std::fs::write(&config, text).expect("write config");
        Setup {
            ns,
            dir,
            config,
            backend,
            health_port,
            workers: Vec::new(),
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.join("worker.log")
    }

    /// The SQS queue's name: the namespace, within SQS's 80 characters.
    fn sqs_queue(&self) -> String {
        let name: String = self.ns.chars().rev().take(80).collect();
        name.chars().rev().collect()
    }

    /// Starts a worker (logging to `worker.log`, appended) and waits until its health port
    /// answers.
    async fn start_worker(&mut self) {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("log file");
        let _ = std::io::Write::write_all(&mut log, b"==== starting webhook-worker ====\n");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_webhook-worker"));
        cmd.arg("--config").arg(&self.config);
        // The binary reads SWITCHYARD_* as overrides: only the test's may reach it.
        for (var, _) in std::env::vars() {
            if var.starts_with("SWITCHYARD_") {
                cmd.env_remove(var);
            }
        }
        if self.backend == Backend::Sqs {
            cmd.env("SWITCHYARD_CLUSTER_WEBHOOK_QUEUE", "sqs")
                .env("SWITCHYARD_CLUSTER_SQS_ENDPOINT", SQS_ENDPOINT)
                .env("SWITCHYARD_CLUSTER_SQS_QUEUE", self.sqs_queue());
        }
        cmd.env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        self.workers
            .push(cmd.spawn().expect("start webhook-worker"));
        let port = self.health_port;
        self.poll(
            "the worker's health port",
            Duration::from_secs(20),
            || async { TcpStream::connect(("127.0.0.1", port)).await.ok().map(drop) },
        )
        .await;
    }

    /// SIGKILLs every worker started so far.
    fn kill_workers(&mut self) {
        for mut worker in self.workers.drain(..) {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }

    /// A producer on the same queue the workers read.
    async fn queue(&self) -> Arc<dyn WebhookQueue> {
        match self.backend {
            Backend::Redis => {
                let stream = format!("{}:webhooks", self.ns);
                let queue = RedisQueue::connect(REDIS, &stream, "workers", "producer")
                    .await
                    .expect("redis queue");
                Arc::new(queue)
            }
            Backend::Sqs => {
                let mut config = SqsQueueConfig::new(&self.sqs_queue(), "us-east-1");
                config.endpoint_url = Some(SQS_ENDPOINT.into());
                Arc::new(SqsQueue::connect(config).await.expect("sqs queue"))
            }
        }
    }

    async fn push(&self, queue: &dyn WebhookQueue, jobs: std::ops::Range<usize>) {
        for n in jobs {
            queue.push(job(n)).await.expect("push a job");
        }
    }

    /// Calls `check` until it yields, failing with the worker log after `bound`.
    async fn poll<T, F, Fut>(&self, what: &str, bound: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(found) = check().await {
                return found;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.log()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "timed out after {bound:?} waiting for {what}; worker log tail:\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.kill_workers();
        let stream = format!("{}:webhooks", self.ns);
        let dead = format!("{}:webhooks:dead", self.ns);
        let _ = Command::new("redis-cli")
            .args(["DEL", &stream, &dead])
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn channel(n: usize) -> String {
    format!("room-{n}")
}

fn job(n: usize) -> WebhookJob {
    let time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    WebhookJob {
        app_id: APP.into(),
        event: WebhookEvent::ChannelOccupied {
            channel: channel(n),
        },
        time_ms,
        only_url: None,
        id: None,
    }
}

/// A webhook receiver that checks each request's key and signature, records the channel of
/// every event, then waits `delay` before answering 200, so deliveries stay in flight.
struct Receiver {
    /// Channel → how many times it was received.
    received: Arc<Mutex<HashMap<String, usize>>>,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(port: u16, delay: Duration) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the webhook receiver");
        let received = Arc::new(Mutex::new(HashMap::new()));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (got, bad) = (received.clone(), problems.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (got, bad) = (got.clone(), bad.clone());
                tokio::spawn(async move {
                    match receive(stream, delay, &got).await {
                        Ok(()) => {}
                        Err(problem) => lock(&bad).push(problem),
                    }
                });
            }
        });
        Receiver { received, problems }
    }

    /// How many distinct jobs (channels) were received.
    fn distinct(&self) -> usize {
        lock(&self.received).len()
    }

    /// How many requests were received, duplicates included.
    fn total(&self) -> usize {
        lock(&self.received).values().sum()
    }

    fn missing(&self, jobs: usize) -> Vec<String> {
        let got = lock(&self.received);
        (0..jobs)
            .map(channel)
            .filter(|c| !got.contains_key(c))
            .collect()
    }

    fn assert_no_problems(&self) {
        let problems = lock(&self.problems);
        assert!(problems.is_empty(), "bad webhook requests: {problems:#?}");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads one request (the worker sends one per connection), records its events, waits
/// `delay` and answers 200.
async fn receive(
    mut stream: TcpStream,
    delay: Duration,
    received: &Mutex<HashMap<String, usize>>,
) -> Result<(), String> {
    let Some(HttpRequest {
        head,
        headers,
        body,
    }) = read_request(&mut stream).await?
    else {
        // The worker was killed mid-request: its job is redelivered, and a lost one shows up
        // in `missing`, so a cut request is no problem.
        return Ok(());
    };
    let body = body.as_slice();
    if headers.get("x-pusher-key").map(String::as_str) != Some(KEY) {
        return Err(format!("bad X-Pusher-Key in {head:?}"));
    }
    if headers.get("x-pusher-signature") != Some(&sign(SECRET, body)) {
        return Err(format!("bad X-Pusher-Signature in {head:?}"));
    }
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let events = json["events"]
        .as_array()
        .ok_or_else(|| format!("no events in {json}"))?;
    {
        let mut got = lock(received);
        for event in events {
            let channel = event["channel"].as_str().unwrap_or("?").to_owned();
            *got.entry(channel).or_default() += 1;
        }
    }
    tokio::time::sleep(delay).await;
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await;
    let _ = stream.shutdown().await;
    Ok(())
}

/// Pushes `jobs` jobs, starts a worker against a receiver answering in 100 ms, SIGKILLs it
/// once about half were received, starts another, and waits for every job.
async fn killed_mid_batch(test: &str, backend: Backend) {
    const JOBS: usize = 200;
    let started = Instant::now();
    let port = free_port();
    let receiver = Receiver::start(port, Duration::from_millis(100)).await;
    let mut setup = Setup::new(test, backend, port);
    let queue = setup.queue().await;
    setup.push(&*queue, 0..JOBS).await;

    setup.start_worker().await;
    setup
        .poll(
            "half the jobs delivered",
            Duration::from_secs(20),
            || async { (receiver.distinct() >= JOBS / 2).then_some(()) },
        )
        .await;
    setup.kill_workers();
    let at_kill = receiver.distinct();
    assert!(
        at_kill < JOBS,
        "the worker delivered all {JOBS} jobs before it was killed; nothing was in flight"
    );

    setup.start_worker().await;
    setup
        .poll("every job delivered", Duration::from_secs(30), || async {
            (receiver.distinct() == JOBS).then_some(())
        })
        .await;
    assert!(receiver.missing(JOBS).is_empty());
    receiver.assert_no_problems();
    eprintln!(
        "{test}: {at_kill}/{JOBS} distinct jobs received at the kill; all {JOBS} after the restart \
         ({} requests, duplicates included) in {:?}",
        receiver.total(),
        started.elapsed()
    );
    if backend == Backend::Redis {
        let log = std::fs::read_to_string(setup.log()).unwrap_or_default();
        assert!(
            log.contains("reclaimed from a worker"),
            "the second worker should have reclaimed the killed one's jobs; log:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_no_job_on_redis() {
    killed_mid_batch("kill-redis", Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_no_job_on_sqs() {
    killed_mid_batch("kill-sqs", Backend::Sqs).await;
}

/// Jobs queued while the receiver's port refuses connections, for 20 s, are all delivered
/// once it listens: the worker keeps retrying within its 300 s window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_queued_while_the_receiver_is_down_are_delivered_when_it_comes_up() {
    const JOBS: usize = 40;
    const DOWN: Duration = Duration::from_secs(20);
    let started = Instant::now();
    // Nothing listens here until the receiver starts.
    let port = free_port();
    let mut setup = Setup::new("down", Backend::Redis, port);
    let queue = setup.queue().await;
    setup.start_worker().await;
    setup.push(&*queue, 0..JOBS / 2).await;
    tokio::time::sleep(DOWN / 2).await;
    setup.push(&*queue, JOBS / 2..JOBS).await;
    tokio::time::sleep(DOWN.saturating_sub(started.elapsed())).await;

    let receiver = Receiver::start(port, Duration::ZERO).await;
    let up = Instant::now();
    // Backoff doubles from 0.5 s with up to 50% jitter: the next attempts fall within ~25 s.
    setup
        .poll("every job delivered", Duration::from_secs(40), || async {
            (receiver.distinct() == JOBS).then_some(())
        })
        .await;
    receiver.assert_no_problems();
    let log = std::fs::read_to_string(setup.log()).unwrap_or_default();
    assert!(
        !log.contains("dead-letter"),
        "nothing should be given up within the retry window; log:\n{log}"
    );
    eprintln!(
        "down: all {JOBS} jobs delivered {:?} after the receiver came up ({} requests), {:?} in all",
        up.elapsed(),
        receiver.total(),
        started.elapsed()
    );
}
