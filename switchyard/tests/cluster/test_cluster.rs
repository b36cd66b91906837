//! [`TestCluster`]: starting a whole cluster on free ports, reaching it, and tearing it down.

use std::fs;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::{Client, Rest};

use super::{
    connect_to, Backend, EdgeLinks, Hooks, Options, Proc, Proxy, Service, CLUSTER_APP, CLUSTER_KEY,
    CLUSTER_SECRET, LEASE_TTL, NATS_SERVER, REAP_INTERVAL, SHARED_NATS_PORT, SHARED_REDIS_PORT,
    STARTUP,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

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
    /// With `Options::edge2_via_proxy`: the proxies edge 2 reaches NATS and core through.
    pub edge2_links: Option<EdgeLinks>,
    started: Instant,
    keep_dir: bool,
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
        // core gRPC + health per replica, 2 edges, api, worker health, nats, redis, and the
        // two proxies of edge 2. All picked at once: a port bound later with `:0` could be
        // one just picked for a service that has not started yet.
        let mut ports = free_ports(2 * opts.cores + 8).into_iter();
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
        let mut edge2_core = core_ports[core_ports.len() - 1].0;
        let mut edge2_nats = nats_port;
        let edge2_links = if opts.edge2_via_proxy {
            let links = EdgeLinks {
                nats: Proxy::start(port(), nats_port).await,
                core: Proxy::start(port(), edge2_core).await,
            };
            (edge2_nats, edge2_core) = (links.nats.port, links.core.port);
            Some(links)
        } else {
            None
        };
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
                    (
                        "SWITCHYARD_CLUSTER_NATS_URL",
                        format!("nats://127.0.0.1:{edge2_nats}"),
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
            edge2_links,
            started: Instant::now(),
            keep_dir: false,
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

    /// `FLUSHALL` on the private Redis: every key is lost at once, as when a Redis without
    /// persistence restarts, while every process stays connected.
    pub fn flush_redis(&self) {
        assert!(self.redis.is_some(), "flush_redis needs a private Redis");
        let out = Command::new("redis-cli")
            .args(["-p", &self.redis_port.to_string(), "FLUSHALL"])
            .output()
            .expect("run redis-cli FLUSHALL");
        let reply = String::from_utf8_lossy(&out.stdout);
        assert!(reply.trim() == "OK", "FLUSHALL answered {reply:?}");
    }

    /// The proxies of edge 2 (the cluster must have been started with `edge2_via_proxy`).
    pub fn edge2_links(&self) -> &EdgeLinks {
        self.edge2_links
            .as_ref()
            .expect("cluster started without edge2_via_proxy")
    }

    /// Keeps the config and logs after the cluster is dropped (they are kept anyway when the
    /// test fails) and returns where they are.
    pub fn keep_logs(&mut self) -> PathBuf {
        self.keep_dir = true;
        self.dir.clone()
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
        if !failed && !self.keep_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
