//! The distributed mode's adapters, built from the configuration: NATS for the bus, Redis for
//! channel state and the webhook queue, gRPC to reach channel-core. Each standalone binary
//! takes the pieces it needs.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use channel_core::{CoreDeps, RedisStore};
use switchyard_bus::{Bus, NatsBus};
use switchyard_config::{Config, WebhookQueueBackend};
use switchyard_listener::Handler;
use switchyard_proto::GrpcCore;
use switchyard_telemetry::loggable_url;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use webhook_worker::service::WorkerDeps;
use webhook_worker::{
    DeadLetters, RedisDeadLetters, RedisQueue, RedisQueueConfig, SqsQueue, SqsQueueConfig,
    WebhookQueue, DEFAULT_DEAD_LETTER_CAP,
};

use crate::{app_store, compose};

/// The Redis stream holding webhook jobs, and the consumer group of the workers.
pub const WEBHOOK_STREAM: &str = "webhooks";
pub const WEBHOOK_GROUP: &str = "workers";

pub async fn bus(config: &Config) -> anyhow::Result<Arc<dyn Bus>> {
    let bus = NatsBus::connect(&config.cluster.nats_url)
        .await
        .with_context(|| {
            format!(
                "cannot connect to NATS at {}",
                loggable_url(&config.cluster.nats_url)
            )
        })?;
    Ok(Arc::new(bus))
}

/// One client serves both traits (`EdgeCore` for edges, `ApiCore` for the API).
pub fn core_client(config: &Config) -> anyhow::Result<Arc<GrpcCore>> {
    Ok(Arc::new(GrpcCore::new(&config.cluster.core_url)?))
}

pub async fn store(config: &Config) -> anyhow::Result<RedisStore> {
    RedisStore::connect(&config.cluster.redis_url, &config.cluster.redis_namespace)
        .await
        .with_context(|| {
            format!(
                "cannot connect to Redis at {}",
                loggable_url(&config.cluster.redis_url)
            )
        })
}

/// The webhook queue chosen by `[cluster] webhook_queue`; `consumer` names this process.
pub async fn webhook_queue(
    config: &Config,
    consumer: &str,
) -> anyhow::Result<Arc<dyn WebhookQueue>> {
    let c = &config.cluster;
    let reclaim_after = compose::reclaim_after(config);
    if c.webhook_queue == WebhookQueueBackend::Sqs {
        let mut sqs = SqsQueueConfig::new(&c.sqs_queue, &c.sqs_region);
        if c.sqs_queue.starts_with("https://") || c.sqs_queue.starts_with("http://") {
            sqs.queue_url = Some(c.sqs_queue.clone());
        }
        sqs.endpoint_url = Some(c.sqs_endpoint.clone()).filter(|e| !e.is_empty());
        sqs.dead_letter_queue = Some(c.sqs_dead_letter_queue.clone()).filter(|q| !q.is_empty());
        sqs.visibility_timeout = reclaim_after;
        let queue = SqsQueue::connect(sqs)
            .await
            .with_context(|| format!("cannot open the SQS webhook queue {:?}", c.sqs_queue))?;
        return Ok(Arc::new(queue));
    }
    let stream = format!("{}:{WEBHOOK_STREAM}", c.redis_namespace);
    let mut redis = RedisQueueConfig::new(&stream, WEBHOOK_GROUP, consumer);
    redis.reclaim_after = reclaim_after;
    let queue = RedisQueue::connect_with(&c.redis_url, redis)
        .await
        .with_context(|| {
            format!(
                "cannot open the webhook queue in Redis at {}",
                loggable_url(&c.redis_url)
            )
        })?;
    Ok(Arc::new(queue))
}

/// Where the worker keeps the webhooks it gave up: `<redis_namespace>:webhooks:dead`.
pub async fn dead_letters(config: &Config) -> anyhow::Result<Arc<dyn DeadLetters>> {
    let ns = &config.cluster.redis_namespace;
    let key = format!("{ns}:{WEBHOOK_STREAM}:dead");
    let url = &config.cluster.redis_url;
    let store = RedisDeadLetters::connect(url, &key, DEFAULT_DEAD_LETTER_CAP)
        .await
        .with_context(|| {
            let url = loggable_url(url);
            format!("cannot open the dead letters in Redis at {url}")
        })?;
    Ok(Arc::new(store))
}

/// A channel-core replica's adapters: Redis, NATS, the app store and the webhook queue, where
/// `name` is its queue consumer.
pub async fn core_deps(
    config: &Config,
    name: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<CoreDeps> {
    let store = Arc::new(store(config).await?);
    let bus = bus(config).await?;
    let backend = app_store::backend(config).await?;
    let apps = app_store::lookup(config, backend, Some(bus.clone()), shutdown.clone());
    Ok(CoreDeps {
        store,
        bus,
        apps,
        webhooks: webhook_queue(config, name).await?,
    })
}

/// A worker's adapters: the webhook queue (consumer `name`), the app store and the dead
/// letters in Redis.
pub async fn worker_deps(
    config: &Config,
    name: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<WorkerDeps> {
    let queue = webhook_queue(config, name).await?;
    let dead_letters = dead_letters(config).await?;
    // No bus here: a changed app (a rotated secret) is picked up within the cache TTL.
    let backend = app_store::backend(config).await?;
    let apps = app_store::lookup(config, backend, None, shutdown.clone());
    Ok(WorkerDeps {
        queue,
        apps,
        dead_letters,
    })
}

/// A name unique to this process, for edge ids and queue consumers.
pub fn instance_name(role: &str, port: u16) -> String {
    format!("{role}-{port}-{:08x}", rand_u32())
}

fn rand_u32() -> u32 {
    // Process id and start time are unique enough to tell restarts apart.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

/// A service's health port until `shutdown`: `/up`, `/ready` (as `ready` answers), `/metrics`
/// and, when given, `admin` for every path under `/admin/`.
pub async fn serve_health<F, Fut>(
    listener: TcpListener,
    ready: F,
    admin: Option<Handler>,
    shutdown: CancellationToken,
) where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let ready = Arc::new(ready);
    let handler: Handler = Arc::new(move |req, peer| {
        let ready = ready.clone();
        let admin = admin.clone();
        Box::pin(async move {
            match (req.uri().path(), admin) {
                ("/up", _) => switchyard_listener::health(true),
                ("/ready", _) => switchyard_listener::health(ready().await),
                ("/metrics", _) => switchyard_telemetry::metrics::endpoint(),
                (path, Some(admin)) if path.starts_with("/admin/") => admin(req, peer).await,
                (path, _) => switchyard_listener::error(
                    hyper::StatusCode::NOT_FOUND,
                    &format!("no such endpoint: {path}"),
                ),
            }
        })
    });
    switchyard_listener::serve(listener, handler, shutdown, TaskTracker::new()).await;
}
