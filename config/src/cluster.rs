//! Settings of the distributed mode: where the shared services are, and each service's own
//! section. The embedded mode ignores all of them.

use serde::Deserialize;
use switchyard_apps::Secret;

/// `[cluster]`: the services every process of a cluster shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub nats_url: String,
    pub redis_url: String,
    /// Prefix of every Redis key, so several clusters can share one Redis.
    pub redis_namespace: String,
    /// Where edges and the API reach channel-core's gRPC service.
    pub core_url: String,
    /// The webhook queue: `redis` (Redis Streams on `redis_url`) or `sqs`.
    pub webhook_queue: String,
    /// With `webhook_queue = "sqs"`: the queue's name (created if missing) or its URL.
    pub sqs_queue: String,
    /// Another endpoint than AWS's (a local SQS-compatible server); empty for AWS.
    pub sqs_endpoint: String,
    pub sqs_region: String,
    /// A dead-letter queue SQS moves messages to after repeated failed receives; empty: none.
    pub sqs_dead_letter_queue: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_url: "nats://127.0.0.1:4222".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_namespace: "sy".into(),
            core_url: "http://127.0.0.1:6301".into(),
            webhook_queue: "redis".into(),
            sqs_queue: "switchyard-webhooks".into(),
            sqs_endpoint: String::new(),
            sqs_region: "us-east-1".into(),
            sqs_dead_letter_queue: String::new(),
        }
    }
}

/// `[edge]`: a WebSocket edge (`edge-gateway`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeSection {
    pub port: u16,
    /// Unique name of this edge in core; empty picks `edge-<port>-<random>` at start, so a
    /// restarted edge never inherits a dead one's lease.
    pub id: String,
    pub heartbeat_ms: u64,
    /// How long a channel's bus subscription outlives its last local subscriber.
    pub linger_ms: u64,
}

impl Default for EdgeSection {
    fn default() -> Self {
        EdgeSection {
            port: 6101,
            id: String::new(),
            heartbeat_ms: 2000,
            linger_ms: 2000,
        }
    }
}

/// `[api]`: the HTTP API (`api-service`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    pub port: u16,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { port: 6201 }
    }
}

/// `[core]`: channel-core.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreSection {
    /// gRPC port.
    pub port: u16,
    /// `/up` and `/ready` over HTTP.
    pub health_port: u16,
    /// An edge silent for this long is reaped (edges beat every `edge.heartbeat_ms`).
    pub lease_ttl_ms: u64,
    pub reap_interval_ms: u64,
}

impl Default for CoreSection {
    fn default() -> Self {
        CoreSection {
            port: 6301,
            health_port: 6302,
            lease_ttl_ms: 6000,
            reap_interval_ms: 1000,
        }
    }
}

/// `[worker]`: the webhook worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSection {
    /// `/up` and `/ready` over HTTP.
    pub health_port: u16,
    pub concurrency: usize,
    /// How long a failing webhook is retried before it is dead-lettered.
    pub retry_window_secs: u64,
    /// How long after a worker dies its unfinished jobs go to the other workers: the Redis
    /// queue's reclaim timeout, or the SQS queue's visibility timeout. Live workers renew
    /// their jobs at a third of it, so a slow delivery is never mistaken for a dead worker.
    pub reclaim_after_secs: u64,
}

impl Default for WorkerSection {
    fn default() -> Self {
        WorkerSection {
            health_port: 6401,
            concurrency: 64,
            retry_window_secs: 300,
            reclaim_after_secs: 60,
        }
    }
}

pub(crate) fn validate(
    cluster: &ClusterConfig,
    edge: &EdgeSection,
    core: &CoreSection,
    worker: &WorkerSection,
) -> Vec<String> {
    let mut errors = Vec::new();
    for (name, url, schemes) in [
        (
            "[cluster] nats_url",
            &cluster.nats_url,
            &["nats://", "tls://"][..],
        ),
        (
            "[cluster] redis_url",
            &cluster.redis_url,
            &["redis://", "rediss://"][..],
        ),
        (
            "[cluster] core_url",
            &cluster.core_url,
            &["http://", "https://"][..],
        ),
    ] {
        if !schemes.iter().any(|s| url.starts_with(s)) {
            errors.push(format!(
                "{name} {url:?} must start with {}",
                schemes.join(" or ")
            ));
        }
    }
    if cluster.webhook_queue != "redis" && cluster.webhook_queue != "sqs" {
        errors.push(format!(
            "[cluster] webhook_queue {:?} must be \"redis\" or \"sqs\"",
            cluster.webhook_queue
        ));
    }
    if edge.heartbeat_ms == 0 || core.reap_interval_ms == 0 || worker.concurrency == 0 {
        errors.push("[edge] heartbeat_ms, [core] reap_interval_ms and [worker] concurrency must be at least 1".into());
    }
    if core.lease_ttl_ms < 2 * edge.heartbeat_ms {
        errors.push(format!(
            "[core] lease_ttl_ms ({}) must be at least twice [edge] heartbeat_ms ({}), or live edges get reaped",
            core.lease_ttl_ms, edge.heartbeat_ms
        ));
    }
    errors
}

/// `[app_store]`: where apps come from, for every service and the `switchyard apps` commands.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppStoreSection {
    /// `file` (the `[[apps]]` of this file), `mysql` or `postgres`.
    pub backend: String,
    /// With `mysql` or `postgres`: e.g. `mysql://user:pass@host/db`.
    pub database_url: Secret,
    /// How long a service trusts an app it looked up; changes made through `switchyard apps`
    /// or the admin API are also pushed over the bus at once.
    pub cache_ttl_ms: u64,
}

impl Default for AppStoreSection {
    fn default() -> Self {
        AppStoreSection {
            backend: "file".into(),
            database_url: Secret::new(""),
            cache_ttl_ms: 5000,
        }
    }
}

impl AppStoreSection {
    pub(crate) fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        match self.backend.as_str() {
            "file" => {}
            "mysql" | "postgres" => {
                if self.database_url.expose().is_empty() {
                    errors.push(format!(
                        "[app_store] backend {:?} needs database_url",
                        self.backend
                    ));
                }
            }
            other => errors.push(format!(
                "[app_store] backend {other:?} is not one of \"file\", \"mysql\", \"postgres\""
            )),
        }
        if self.cache_ttl_ms == 0 {
            errors.push("[app_store] cache_ttl_ms must be at least 1".into());
        }
        errors
    }
}
