//! The `webhook-worker` binary's dead letters: the `dead-letters` commands and the admin
//! endpoints on its health port, against the local Redis under a namespace of each test's own.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use webhook_worker::{
    DeadLetters, Failure, RedisDeadLetters, RedisQueue, WebhookEvent, WebhookJob, WebhookQueue,
    WebhookSink,
};

const REDIS: &str = "redis://127.0.0.1:6379";
const SECRET: &str = "cli-app-secret-never-printed";
const TOKEN: &str = "admin-token-for-tests";

/// One test's namespace, config file and worker; removes its keys and files when dropped.
struct Setup {
    ns: String,
    dir: PathBuf,
    config: PathBuf,
    health_port: u16,
    worker: Option<Child>,
}

impl Setup {
    /// The app's one webhook goes to a port nothing listens on, so every delivery fails.
    fn new(test: &str) -> Setup {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let ns = format!("sy-test-cli-{test}-{}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(&ns);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (health_port, dead_port) = (free_port(), free_port());
        let config = dir.join("worker.toml");
        let text = format!(
            r#"[server]
host = "127.0.0.1"

[cluster]
redis_url = "{REDIS}"
redis_namespace = "{ns}"

[worker]
health_port = {health_port}
retry_window_secs = 1

[[apps]]
id = "app-1"
key = "key-1"
secret = "{SECRET}"
webhooks = [{{ url = "http://127.0.0.1:{dead_port}/hooks" }}]
"#
        );
        std::fs::write(&config, text).expect("write config");
        Setup {
            ns,
            dir,
            config,
            health_port,
            worker: None,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_webhook-worker"));
        cmd.args(args).arg("--config").arg(&self.config);
        // The binary reads SWITCHYARD_* as overrides: only the test's may reach it.
        for (var, _) in std::env::vars() {
            if var.starts_with("SWITCHYARD_") {
                cmd.env_remove(var);
            }
        }
        cmd
    }

    fn cli(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run webhook-worker");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains(SECRET), "the app secret was printed");
        out
    }

    /// Starts the worker and waits until its health port answers.
    async fn start_worker(&mut self, token: Option<&str>) {
        let log = std::fs::File::create(self.dir.join("worker.log")).expect("log file");
        let mut cmd = self.command(&[]);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        if let Some(token) = token {
            cmd.env("SWITCHYARD_ADMIN_TOKEN", token);
        }
        self.worker = Some(cmd.spawn().expect("start webhook-worker"));
        self.poll("the health port", || async {
            http(self.health_port, "GET", "/up", None, "")
                .await
                .map(|_| ())
        })
        .await;
    }

    fn dead_key(&self) -> String {
        format!("{}:webhooks:dead", self.ns)
    }

    async fn dead_letters(&self) -> RedisDeadLetters {
        RedisDeadLetters::connect(REDIS, &self.dead_key(), 100)
            .await
            .expect("dead letters")
    }

    async fn queue(&self, consumer: &str) -> RedisQueue {
        let stream = format!("{}:webhooks", self.ns);
        RedisQueue::connect(REDIS, &stream, "workers", consumer)
            .await
            .expect("queue")
    }

    /// Calls `check` until it yields, failing with the worker's log after 10 s.
    async fn poll<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = check().await {
                return found;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("worker.log")).unwrap_or_default();
                panic!("timed out waiting for {what}; worker log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(mut worker) = self.worker.take() {
            let _ = worker.kill();
            let _ = worker.wait();
        }
        let stream = format!("{}:webhooks", self.ns);
        let _ = Command::new("redis-cli")
            .args(["DEL", &stream, &self.dead_key()])
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn job(n: u64) -> WebhookJob {
    WebhookJob {
        app_id: "app-1".into(),
        event: WebhookEvent::ChannelOccupied {
            channel: format!("room-{n}"),
        },
        time_ms: n,
        only_url: None,
        id: None,
    }
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// One HTTP/1.1 request; the status and the JSON body, or `None` when nothing answers.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some((status, serde_json::from_str(body).ok()?))
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_from_the_command_line() {
    let setup = Setup::new("commands");
    let letters = setup.dead_letters().await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        let failure = Failure::now(job(n), Some("http://127.0.0.1:1/hooks"), "boom");
        ids.push(letters.record(failure).await.expect("record"));
    }

    let listed = json_lines(&setup.cli(&["dead-letters", "list"]));
    let listed_ids: Vec<&str> = listed.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(listed_ids, [&ids[2], &ids[1], &ids[0]], "newest first");
    assert_eq!(listed[0]["job"], json!(job(3)));
    assert_eq!(listed[0]["error"], "boom");
    let one = json_lines(&setup.cli(&["dead-letters", "list", "--limit", "1"]));
    assert_eq!(one.len(), 1);

    let replayed = json_lines(&setup.cli(&["dead-letters", "replay", &ids[0]]));
    assert_eq!(replayed, [json!({ "replayed": ids[0] })]);
    let missing = setup.cli(&["dead-letters", "replay", &ids[0]]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no dead letter"));
    let all = json_lines(&setup.cli(&["dead-letters", "replay", "--all"]));
    assert_eq!(
        all,
        [json!({ "replayed": ids[1] }), json!({ "replayed": ids[2] })]
    );
    assert!(json_lines(&setup.cli(&["dead-letters", "list"])).is_empty());

    let queue = setup.queue("check").await;
    let pulled = queue.pull(10, Duration::from_secs(2)).await.expect("pull");
    let jobs: Vec<_> = pulled.into_iter().map(|l| l.job).collect();
    // A replay is aimed at the webhook that failed, and only at it.
    let aimed = |n| WebhookJob {
        only_url: Some("http://127.0.0.1:1/hooks".into()),
        id: None,
        ..job(n)
    };
    assert_eq!(jobs, [aimed(1), aimed(2), aimed(3)]);

    let usage = setup.cli(&["dead-letters", "replay"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[tokio::test]
async fn the_worker_dead_letters_and_replays_through_the_admin_endpoint() {
    let mut setup = Setup::new("admin");
    setup.start_worker(Some(TOKEN)).await;
    let port = setup.health_port;
    setup
        .queue("producer")
        .await
        .push(job(1))
        .await
        .expect("push");

    let list = || http(port, "GET", "/admin/dead-letters", Some(TOKEN), "");
    let first = setup
        .poll("a dead letter", || async {
            let (_, body) = list().await?;
            body["dead_letters"].as_array()?.first().cloned()
        })
        .await;
    assert_eq!(first["job"], json!(job(1)));
    assert!(
        first["error"]
            .as_str()
            .is_some_and(|e| e.contains("connect")),
        "{first}"
    );
    for token in [None, Some("wrong")] {
        let answer = http(port, "GET", "/admin/dead-letters", token, "").await;
        assert_eq!(answer.map(|(status, _)| status), Some(401));
    }

    let id = first["id"].as_str().expect("id").to_owned();
    let body = json!({ "id": id }).to_string();
    let answer = http(
        port,
        "POST",
        "/admin/dead-letters/replay",
        Some(TOKEN),
        &body,
    )
    .await;
    assert_eq!(answer, Some((200, json!({ "replayed": [id] }))));
    // Back on the queue, still undeliverable: dead-lettered again under a new id.
    let again = setup
        .poll("the replayed job to fail again", || async {
            let (_, body) = list().await?;
            let letter = body["dead_letters"].as_array()?.first()?.clone();
            (letter["id"] != json!(id)).then_some(letter)
        })
        .await;
    assert_eq!(again["job"]["event"], json!(job(1).event));
    assert_eq!(
        again["job"]["only_url"], again["url"],
        "the replay aims at the failed webhook"
    );
}

#[tokio::test]
async fn without_a_token_the_admin_endpoints_answer_404() {
    let mut setup = Setup::new("no-token");
    setup.start_worker(None).await;
    let port = setup.health_port;
    let answer = http(port, "GET", "/admin/dead-letters", Some(TOKEN), "").await;
    assert_eq!(answer.map(|(status, _)| status), Some(404));
    let body = r#"{"all":true}"#;
    let answer = http(
        port,
        "POST",
        "/admin/dead-letters/replay",
        Some(TOKEN),
        body,
    )
    .await;
    assert_eq!(answer.map(|(status, _)| status), Some(404));
    let up = http(port, "GET", "/up", None, "").await;
    assert_eq!(up, Some((200, json!({ "ok": true }))));
}
