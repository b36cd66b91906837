//! Settings of the distributed mode: where the shared services are, and each service's own
//! section. The embedded mode ignores addresses and ports but runs core and the worker with
//! the timings of `[core]` and the delivery settings of `[worker]`, as the distributed mode
//! does.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::{millis, secs};

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
    pub webhook_queue: WebhookQueueBackend,
    /// With `webhook_queue = "sqs"`: the queue's name (created if missing) or its URL.
    pub sqs_queue: String,
    /// Another endpoint than AWS's (a local SQS-compatible server); empty for AWS.
    pub sqs_endpoint: String,
    pub sqs_region: String,
    /// A dead-letter queue SQS moves messages to after repeated failed receives; empty: none.
    pub sqs_dead_letter_queue: String,
}

/// Where webhook jobs wait for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum WebhookQueueBackend {
    /// Redis Streams on `[cluster] redis_url`, one consumer group of workers.
    Redis,
    /// Amazon SQS (or a compatible server at `sqs_endpoint`).
    Sqs,
}

impl TryFrom<String> for WebhookQueueBackend {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "redis" => Ok(WebhookQueueBackend::Redis),
            "sqs" => Ok(WebhookQueueBackend::Sqs),
            _ => Err(format!(
                "webhook_queue {name:?} must be \"redis\" or \"sqs\""
            )),
        }
    }
}

impl fmt::Display for WebhookQueueBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WebhookQueueBackend::Redis => "redis",
            WebhookQueueBackend::Sqs => "sqs",
        })
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_url: "nats://127.0.0.1:4222".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_namespace: "sy".into(),
            core_url: "http://127.0.0.1:6301".into(),
            webhook_queue: WebhookQueueBackend::Redis,
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
    /// How often the edge renews its lease in core.
    #[serde(rename = "heartbeat_ms", deserialize_with = "millis")]
    pub heartbeat: Duration,
    /// How long a channel's bus subscription outlives its last local subscriber.
    #[serde(rename = "linger_ms", deserialize_with = "millis")]
    pub linger: Duration,
}

impl Default for EdgeSection {
    fn default() -> Self {
        EdgeSection {
            port: 6101,
            id: String::new(),
            heartbeat: Duration::from_millis(2000),
            linger: Duration::from_millis(2000),
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
    #[serde(rename = "lease_ttl_ms", deserialize_with = "millis")]
    pub lease_ttl: Duration,
    /// How often each replica looks for edges whose lease expired.
    #[serde(rename = "reap_interval_ms", deserialize_with = "millis")]
    pub reap_interval: Duration,
}

impl Default for CoreSection {
    fn default() -> Self {
        CoreSection {
            port: 6301,
            health_port: 6302,
            lease_ttl: Duration::from_millis(6000),
            reap_interval: Duration::from_millis(1000),
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
    #[serde(rename = "retry_window_secs", deserialize_with = "secs")]
    pub retry_window: Duration,
    /// How long after a worker dies its unfinished jobs go to the other workers: the Redis
    /// queue's reclaim timeout, or the SQS queue's visibility timeout. Live workers renew
    /// their jobs at a third of it, so a slow delivery is never mistaken for a dead worker.
    #[serde(rename = "reclaim_after_secs", deserialize_with = "secs")]
    pub reclaim_after: Duration,
}

impl Default for WorkerSection {
    fn default() -> Self {
        WorkerSection {
            health_port: 6401,
            concurrency: 64,
            retry_window: Duration::from_secs(300),
            reclaim_after: Duration::from_secs(60),
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
    if edge.heartbeat.is_zero() || core.reap_interval.is_zero() || worker.concurrency == 0 {
        errors.push("[edge] heartbeat_ms, [core] reap_interval_ms and [worker] concurrency must be at least 1".into());
    }
    if core.lease_ttl < 2 * edge.heartbeat {
        errors.push(format!(
            "[core] lease_ttl_ms ({}) must be at least twice [edge] heartbeat_ms ({}), or live edges get reaped",
            core.lease_ttl.as_millis(),
            edge.heartbeat.as_millis()
        ));
    }
    errors
}
