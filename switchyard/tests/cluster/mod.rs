//! A whole distributed-mode cluster of real processes for the integration tests: channel-core
//! (one or two replicas), two edges, the API and optionally the webhook worker with a webhook
//! receiver in the test, over the shared NATS/Redis (127.0.0.1:4222 / :6379) or private ones
//! the test may kill and restart.
//!
//! Every wait is bounded. Each cluster uses its own Redis namespace (deleted at the end) and a
//! unique tag for channel and user names, since bus subjects are not namespaced and the shared
//! NATS may carry other clusters' traffic. Dropping a [`TestCluster`] SIGKILLs every process it
//! started; when the test is panicking it first prints the tail of each process's log.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use switchyard_protocol::signature::{channel_string, presence_string, sign, signin_string};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{
    event_of, read_request, string_data, token, Client, HttpRequest, Incoming, ReadError, Rest,
    WAIT,
};

pub const CLUSTER_APP: &str = "app-id";
pub const CLUSTER_KEY: &str = "app-key";
pub const CLUSTER_SECRET: &str = "app-secret";

/// Lease settings every cluster runs with (see the config written by [`TestCluster::start`]).
pub const LEASE_TTL: Duration = Duration::from_millis(3000);
pub const REAP_INTERVAL: Duration = Duration::from_millis(250);
/// How long core holds `member_removed` / `channel_vacated` webhooks.
pub const WEBHOOK_HOLD: Duration = Duration::from_secs(3);

/// How long a process may take to become ready after it was started.
const STARTUP: Duration = Duration::from_secs(20);
const SHARED_NATS_PORT: u16 = 4222;
const SHARED_REDIS_PORT: u16 = 6379;
const NATS_SERVER: &str = "/usr/sbin/nats-server";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// What a test wants in its cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// 1 or 2 channel-core replicas. With 2, edge 1 and the API use core 1, edge 2 core 2.
    pub cores: usize,
    /// Start a nats-server for this cluster alone (so the test may kill it).
    pub private_nats: bool,
    /// Start a redis-server for this cluster alone (so the test may kill it).
    pub private_redis: bool,
    /// With `private_redis`: keep its data across restarts (append-only file, fsync always),
    /// as a production Redis holding the webhook queue must.
    pub durable_redis: bool,
    /// Start the webhook worker and a webhook receiver; the app's webhook points at it.
    pub webhooks: bool,
    /// Lines added to `[server]`.
    pub server: String,
    /// Lines added to the app's `[[apps]]` table.
    pub app: String,
    /// Whole sections appended to the config (`[app_store]`…).
    pub sections: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cores: 1,
            private_nats: false,
            private_redis: false,
            durable_redis: false,
            webhooks: false,
            server: String::new(),
            app: String::new(),
            sections: String::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// One child process with its command line kept, so it can be started again on the same
/// ports. stdout and stderr both go to `log` (appended across restarts).
pub struct Proc {
    pub name: String,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn new(name: &str, program: &str, args: &[String], env: Vec<(String, String)>) -> Proc {
        Proc {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.to_vec(),
            env,
            log: PathBuf::new(),
            child: None,
        }
    }

    /// Starts the process (again). Panics if it is still running.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open log {}: {e}", self.log.display()));
        let _ = writeln!(log, "==== starting {} {:?} ====", self.program, self.args);
        let err = log.try_clone().expect("clone log file handle");
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        // The services read SWITCHYARD_* as config overrides: only ours may reach them.
        for (var, _) in std::env::vars() {
            if var.starts_with("SWITCHYARD_") {
                cmd.env_remove(var);
            }
        }
        // Plain text logs: they are read as files.
        cmd.env("NO_COLOR", "1");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({}): {e}", self.name, self.program));
        self.child = Some(child);
    }

    /// SIGKILL (kill -9) and reap. Does nothing if not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The exit status if the process has ended by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The last `lines` lines of the log.
    pub fn tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Switchyard service: its process, its main port and the port serving `/ready`.
pub struct Service {
    pub proc: Proc,
    pub port: u16,
    pub ready_port: u16,
}

impl Service {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the process again with the same config and ports and waits until it is ready.
    pub async fn restart(&mut self) {
        self.proc.kill();
        self.proc.start();
        self.wait_ready(STARTUP).await;
    }

    /// Waits until `/ready` answers 200 (panics with the log tail if the process dies or the
    /// bound passes).
    pub async fn wait_ready(&mut self, bound: Duration) {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.proc.exited() {
                panic!(
                    "{} exited ({status}) before it was ready; log tail:\n{}",
                    self.proc.name,
                    self.proc.tail(40)
                );
            }
            if http_status(self.ready_port, "/ready", Duration::from_secs(1)).await == Some(200) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} not ready within {bound:?}; log tail:\n{}",
                    self.proc.name,
                    self.proc.tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The status of `GET /ready` (None: no answer within 5 s).
    pub async fn ready_status(&self) -> Option<u16> {
        http_status(self.ready_port, "/ready", Duration::from_secs(5)).await
    }
}

/// A private nats-server or redis-server on a fixed port.
pub struct Backend {
    pub proc: Proc,
    pub port: u16,
}

impl Backend {
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts it (again) on the same port and waits until it accepts connections.
    pub async fn start(&mut self) {
        self.proc.kill();
        self.proc.start();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.proc.exited() {
                panic!(
                    "{} exited ({status}); log tail:\n{}",
                    self.proc.name,
                    self.proc.tail(40)
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not accept connections on {}; log tail:\n{}",
                self.proc.name,
                self.port,
                self.proc.tail(40)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster

pub struct TestCluster {
    /// The Redis namespace, unique to this cluster.
    pub ns: String,
    /// Short unique tag for channel and user names (see [`TestCluster::name`]).
    pub tag: String,
    /// Config file and logs.
    pub dir: PathBuf,
    pub nats_port: u16,
    pub redis_port: u16,
    pub nats: Option<Backend>,
    pub redis: Option<Backend>,
    pub cores: Vec<Service>,
    pub edges: Vec<Service>,
    pub api: Service,
    pub worker: Option<Service>,
    pub hooks: Option<Hooks>,
    started: Instant,
}

/// Ports that are free right now (all held open until every one is picked, so none repeats).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<StdListener> = (0..n)
        .map(|_| StdListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

fn unique() -> (String, String) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    (
        format!("sytest-cluster-{pid}-{nanos}-{n}"),
        format!("{pid:x}{:x}{n}", nanos & 0xfffff),
    )
}

impl TestCluster {
    /// Starts a cluster and waits (bounded) until every service is ready.
    pub async fn start(opts: Options) -> TestCluster {
        assert!(
            (1..=2).contains(&opts.cores),
            "1 or 2 core replicas, not {}",
            opts.cores
        );
        let (ns, tag) = unique();
        let dir = std::env::temp_dir().join(format!("switchyard-{ns}"));
        fs::create_dir_all(&dir).expect("create the cluster's temp dir");
        // core gRPC + health per replica, 2 edges, api, worker health, nats, redis.
        let mut ports = free_ports(2 * opts.cores + 6).into_iter();
        let mut port = || ports.next().expect("enough ports");

        let hooks = if opts.webhooks {
            Some(Hooks::start().await)
        } else {
            None
        };
        let log = |name: &str| dir.join(format!("{name}.log"));

        let nats_port = if opts.private_nats {
            port()
        } else {
            SHARED_NATS_PORT
        };
        let redis_port = if opts.private_redis {
            port()
        } else {
            SHARED_REDIS_PORT
        };
        let nats = opts.private_nats.then(|| {
            let args = ["-a", "127.0.0.1", "-p", &nats_port.to_string()].map(String::from);
            let mut proc = Proc::new("nats-server", NATS_SERVER, &args, Vec::new());
            proc.log = log("nats");
            Backend {
                proc,
                port: nats_port,
            }
        });
        let redis = opts.private_redis.then(|| {
            let args = [
                "--port",
                &redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                if opts.durable_redis { "yes" } else { "no" },
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
                "--dir",
                &dir.display().to_string(),
            ]
            .map(String::from);
            let mut proc = Proc::new("redis-server", "redis-server", &args, Vec::new());
            proc.log = log("redis");
            Backend {
                proc,
                port: redis_port,
            }
        });

        let core_ports: Vec<(u16, u16)> = (0..opts.cores).map(|_| (port(), port())).collect();
        let edge_ports = [port(), port()];
        let api_port = port();
        let worker_port = port();

        let webhook = hooks.as_ref().map_or(String::new(), |h| {
            format!(
                "\n[[apps.webhooks]]\nurl = \"http://127.0.0.1:{}/hooks\"\n",
                h.port
            )
        });
        let config = format!(
            r#"[server]
host = "127.0.0.1"
shutdown_grace_secs = 1
{server_extra}

[cluster]
nats_url = "nats://127.0.0.1:{nats_port}"
redis_url = "redis://127.0.0.1:{redis_port}"
redis_namespace = "{ns}"
core_url = "http://127.0.0.1:{core}"

[edge]
port = {edge}
heartbeat_ms = 500

[api]
port = {api_port}

[core]
port = {core}
health_port = {core_health}
lease_ttl_ms = {lease}
reap_interval_ms = {reap}

[worker]
health_port = {worker_port}
retry_window_secs = 30
reclaim_after_secs = 5

[[apps]]
id = "{CLUSTER_APP}"
key = "{CLUSTER_KEY}"
secret = "{CLUSTER_SECRET}"
enable_client_messages = true
{app_extra}
{webhook}
{sections}"#,
            server_extra = opts.server,
            app_extra = opts.app,
            sections = opts.sections,
            core = core_ports[0].0,
            core_health = core_ports[0].1,
            edge = edge_ports[0],
            lease = LEASE_TTL.as_millis(),
            reap = REAP_INTERVAL.as_millis(),
        );
        let config_path = dir.join("cluster.toml");
        fs::write(&config_path, &config).expect("write the cluster config");
        let args = vec!["--config".to_owned(), config_path.display().to_string()];
        let env = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        let service = |name: &str, bin: &str, vars, port, ready_port| {
            let mut proc = Proc::new(name, bin, &args, vars);
            proc.log = log(name);
            Service {
                proc,
                port,
                ready_port,
            }
        };

        let cores = core_ports
            .iter()
            .enumerate()
            .map(|(i, &(grpc, health))| {
                let vars = if i == 0 {
                    Vec::new()
                } else {
                    env(&[
                        ("SWITCHYARD_CORE_PORT", grpc.to_string()),
                        ("SWITCHYARD_CORE_HEALTH_PORT", health.to_string()),
                    ])
                };
                let name = format!("core{}", i + 1);
                service(
                    &name,
                    env!("CARGO_BIN_EXE_channel-core"),
                    vars,
                    grpc,
                    health,
                )
            })
            .collect();
        let edge2_core = core_ports[core_ports.len() - 1].0;
        let edges = vec![
            service(
                "edge1",
                env!("CARGO_BIN_EXE_edge-gateway"),
                Vec::new(),
                edge_ports[0],
                edge_ports[0],
            ),
            service(
                "edge2",
                env!("CARGO_BIN_EXE_edge-gateway"),
                env(&[
                    ("SWITCHYARD_EDGE_PORT", edge_ports[1].to_string()),
                    (
                        "SWITCHYARD_CLUSTER_CORE_URL",
                        format!("http://127.0.0.1:{edge2_core}"),
                    ),
                ]),
                edge_ports[1],
                edge_ports[1],
            ),
        ];
        let api = service(
            "api",
            env!("CARGO_BIN_EXE_api-service"),
            Vec::new(),
            api_port,
            api_port,
        );
        let worker = opts.webhooks.then(|| {
            service(
                "worker",
                env!("CARGO_BIN_EXE_webhook-worker"),
                Vec::new(),
                worker_port,
                worker_port,
            )
        });

        let mut cluster = TestCluster {
            ns,
            tag,
            dir,
            nats_port,
            redis_port,
            nats,
            redis,
            cores,
            edges,
            api,
            worker,
            hooks,
            started: Instant::now(),
        };
        if let Some(nats) = cluster.nats.as_mut() {
            nats.start().await;
        }
        if let Some(redis) = cluster.redis.as_mut() {
            redis.start().await;
        }
        for s in cluster.services_mut() {
            s.proc.start();
        }
        for s in cluster.services_mut() {
            s.wait_ready(STARTUP).await;
        }
        cluster
    }

    fn services_mut(&mut self) -> impl Iterator<Item = &mut Service> {
        self.cores
            .iter_mut()
            .chain(self.edges.iter_mut())
            .chain(std::iter::once(&mut self.api))
            .chain(self.worker.iter_mut())
    }

    /// `base` made unique to this cluster: `<base>-<tag>`.
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.tag)
    }

    /// The signed REST client of the app, against the API.
    pub fn rest(&self) -> Rest {
        Rest {
            addr: self.api.addr(),
            app_id: CLUSTER_APP.into(),
            key: CLUSTER_KEY.into(),
            secret: CLUSTER_SECRET.into(),
        }
    }

    /// Connects to edge `i` (0 or 1) and reads `connection_established`.
    pub async fn connect(&self, i: usize) -> Client {
        connect_to(self.edges[i].addr()).await
    }

    /// The webhook receiver (the cluster must have been started with `webhooks`).
    pub fn hooks(&mut self) -> &mut Hooks {
        self.hooks
            .as_mut()
            .expect("cluster started without webhooks")
    }

    pub fn nats_backend(&mut self) -> &mut Backend {
        self.nats.as_mut().expect("cluster has no private NATS")
    }

    pub fn redis_backend(&mut self) -> &mut Backend {
        self.redis.as_mut().expect("cluster has no private Redis")
    }

    /// Time since the cluster started (for test timing reports).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn all_procs(&self) -> Vec<&Proc> {
        let mut procs: Vec<&Proc> = self.cores.iter().map(|s| &s.proc).collect();
        procs.extend(self.edges.iter().map(|s| &s.proc));
        procs.push(&self.api.proc);
        procs.extend(self.worker.iter().map(|s| &s.proc));
        procs.extend(self.nats.iter().map(|b| &b.proc));
        procs.extend(self.redis.iter().map(|b| &b.proc));
        procs
    }

    /// Deletes this cluster's keys from the shared Redis.
    fn delete_keys(&self) {
        if self.redis.is_some() {
            return; // a private Redis dies with the cluster
        }
        let port = self.redis_port.to_string();
        let pattern = format!("{}:*", self.ns);
        let Ok(out) = Command::new("redis-cli")
            .args(["-p", &port, "--scan", "--pattern", &pattern])
            .stderr(Stdio::null())
            .output()
        else {
            eprintln!("cluster: cannot run redis-cli to delete {pattern}");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let keys: Vec<&str> = text.lines().filter(|k| !k.is_empty()).collect();
        for chunk in keys.chunks(200) {
            let _ = Command::new("redis-cli")
                .args(["-p", &port, "DEL"])
                .args(chunk)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        // Services first (they would recreate keys), then the private backends.
        for s in self.services_mut() {
            s.kill();
        }
        if let Some(b) = self.nats.as_mut() {
            b.kill();
        }
        if let Some(b) = self.redis.as_mut() {
            b.kill();
        }
        if failed {
            eprintln!(
                "\n==== cluster {} failed after {:?}; logs in {} ====",
                self.ns,
                self.started.elapsed(),
                self.dir.display()
            );
            for proc in self.all_procs() {
                eprintln!("---- {} (last 30 lines) ----\n{}", proc.name, proc.tail(30));
            }
            if let Some(hooks) = self.hooks.as_mut() {
                hooks.drain();
                eprintln!("---- webhooks received ----\n{:#?}", hooks.events);
            }
        }
        self.delete_keys();
        if !failed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP probes

/// The status of `GET path` on 127.0.0.1:`port`, or None when nothing answers within `bound`.
pub async fn http_status(port: u16, path: &str, bound: Duration) -> Option<u16> {
    let probe = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let text = String::from_utf8_lossy(&raw);
        text.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(bound, probe).await.ok().flatten()
}

// ---------------------------------------------------------------------------------------------
// Clients with the cluster app's credentials

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

/// Retries `check` every 50 ms until it returns Some, within `bound`; panics naming `what`
/// and the last value seen otherwise.
pub async fn poll_until<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + bound;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        if Instant::now() > deadline {
            panic!("timed out after {bound:?} waiting for {what}; last: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sorted user ids of `GET /channels/{channel}/users` (Err with the answer otherwise).
pub async fn users(rest: &Rest, channel: &str) -> Result<Vec<String>, String> {
    let (status, body) = rest.get(&format!("/channels/{channel}/users"), &[]).await;
    if status != 200 {
        return Err(format!("{status} {body}"));
    }
    let mut ids: Vec<String> = body["users"]
        .as_array()
        .ok_or_else(|| format!("no users array: {body}"))?
        .iter()
        .map(|u| u["id"].as_str().unwrap_or("?").to_owned())
        .collect();
    ids.sort();
    Ok(ids)
}

/// The channel names of `GET /channels` (Err with the answer otherwise).
pub async fn channel_names(rest: &Rest) -> Result<Vec<String>, String> {
    let (status, body) = rest.get("/channels", &[]).await;
    if status != 200 {
        return Err(format!("{status} {body}"));
    }
    let mut names: Vec<String> = body["channels"]
        .as_object()
        .ok_or_else(|| format!("no channels object: {body}"))?
        .keys()
        .cloned()
        .collect();
    names.sort();
    Ok(names)
}

/// Soft assertions: every failed check is recorded, and [`Checks::finish`] reports them all,
/// so one server bug does not hide the checks after it.
#[derive(Default)]
pub struct Checks(Vec<String>);

impl Checks {
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            let what = what.into();
            eprintln!("CHECK FAILED: {what}");
            self.0.push(what);
        }
    }

    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} check(s) failed:\n  - {}",
            self.0.len(),
            self.0.join("\n  - ")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook receiver

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
    let HttpRequest {
        head,
        headers,
        body,
    } = match read_request(&mut stream).await {
        Ok(request) => request,
        // A sender killed mid-POST (the chaos test kills workers): the job is redelivered, and
        // a lost one shows up as a missing event.
        Err(ReadError::Cut(_)) => return Ok(Vec::new()),
        Err(e @ ReadError::Malformed(_)) => return Err(e.to_string()),
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

/// `events` with redeliveries (a repeated Idempotency-Key and event) removed.
pub fn distinct(events: &[Value]) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .filter(|e| match e["_idempotency_key"].as_str() {
            Some(key) => seen.insert((key.to_owned(), e.to_string())),
            None => true,
        })
        .cloned()
        .collect()
}
