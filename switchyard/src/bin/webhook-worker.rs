//! `webhook-worker [--config FILE]`: drains the webhook queue and delivers signed webhooks.
//! `webhook-worker dead-letters …`: lists or replays the webhooks it gave up on.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard::{app_store, cluster, launch};
use switchyard_config::Config;
use switchyard_listener::Handler;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use webhook_worker::{
    Admin, DeadLetterCommand, DeadLetters, MemoryQueue, RedisDeadLetters, WebhookQueue,
    WorkerConfig, ADMIN_PREFIX, DEFAULT_DEAD_LETTER_CAP,
};

const USAGE: &str = "usage: webhook-worker [--config FILE]
       webhook-worker dead-letters list [--limit N] [--config FILE]
       webhook-worker dead-letters replay (ID|--all) [--config FILE]

Delivers webhooks from the Redis queue; /up and /ready on [worker] health_port (6401).
Webhooks given up are kept in Redis under <redis_namespace>:webhooks:dead. The dead-letters
commands list them or push them back onto the queue, printing one JSON object per line. With
SWITCHYARD_ADMIN_TOKEN set, the health port also serves GET /admin/dead-letters and
POST /admin/dead-letters/replay ({\"id\":\"…\"} or {\"all\":true}) to that bearer token.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(("dead-letters", rest)) = args.split_first().map(|(a, r)| (a.as_str(), r)) {
        return dead_letters_command(rest);
    }
    launch::main(USAGE, |config, shutdown| async move {
        let name = cluster::instance_name("worker", config.worker.health_port);
        let queue = cluster::webhook_queue(&config, &name).await?;
        let letters = dead_letters(&config).await?;
        let token = config
            .server
            .admin_token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .filter(|t| !t.is_empty());
        let admin = Arc::new(Admin::new(token, letters.clone(), queue.clone()));
        let health = launch::bind(
            &config.server.host,
            config.worker.health_port,
            "health checks",
        )
        .await?;
        tokio::spawn(serve_health(health, admin, queue.clone(), shutdown.clone()));
        let worker_config = WorkerConfig {
            concurrency: config.worker.concurrency,
            retry_window: Duration::from_secs(config.worker.retry_window_secs),
            ..WorkerConfig::default()
        };
        tracing::info!(name, "webhook-worker running");
        // No bus here: a changed app (a rotated secret) is picked up within the cache TTL.
        let backend = app_store::backend(&config).await?;
        let apps = app_store::lookup(&config, backend, None, shutdown.clone());
        webhook_worker::run_with_dead_letters(queue, apps, letters, worker_config, shutdown).await;
        Ok(())
    })
}

async fn dead_letters(config: &Config) -> anyhow::Result<Arc<dyn DeadLetters>> {
    let ns = &config.cluster.redis_namespace;
    let key = format!("{ns}:{}:dead", cluster::WEBHOOK_STREAM);
    let url = &config.cluster.redis_url;
    let store = RedisDeadLetters::connect(url, &key, DEFAULT_DEAD_LETTER_CAP)
        .await
        .with_context(|| {
            let url = switchyard_telemetry::loggable_url(url);
            format!("cannot open the dead letters in Redis at {url}")
        })?;
    Ok(Arc::new(store))
}

/// `/up`, `/ready`, `/metrics` and, under `/admin/`, the dead-letter endpoints.
async fn serve_health(
    listener: tokio::net::TcpListener,
    admin: Arc<Admin>,
    queue: Arc<dyn WebhookQueue>,
    shutdown: CancellationToken,
) {
    let handler: Handler = Arc::new(move |req, _| {
        let (admin, queue) = (admin.clone(), queue.clone());
        Box::pin(async move {
            match req.uri().path() {
                "/up" => switchyard_listener::health(true),
                // A round trip to the queue (Redis XLEN, SQS attributes): not ready while the
                // queue is unreachable.
                "/ready" => switchyard_listener::health(queue.depth().await.is_ok()),
                "/metrics" => switchyard_telemetry::metrics::endpoint(),
                path if path.starts_with(ADMIN_PREFIX) => {
                    let (status, body) = admin.handle(req).await;
                    switchyard_listener::json(status, body.to_string())
                }
                path => switchyard_listener::error(
                    hyper::StatusCode::NOT_FOUND,
                    &format!("no such endpoint: {path}"),
                ),
            }
        })
    });
    switchyard_listener::serve(listener, handler, shutdown, TaskTracker::new()).await;
}

/// Exit statuses as `launch` uses them: 2 bad usage, 64 bad config, 1 the command failed.
fn dead_letters_command(args: &[String]) -> ExitCode {
    let (command, path) = match DeadLetterCommand::parse(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    launch::command(path.as_deref(), |config| async move {
        let letters = dead_letters(&config).await?;
        // Only a replay touches the queue; opening the Redis one would create its stream
        // and group, a side effect `list` should not have.
        let queue: Arc<dyn WebhookQueue> = match command {
            DeadLetterCommand::Replay(_) => {
                let name = cluster::instance_name("worker-cli", config.worker.health_port);
                cluster::webhook_queue(&config, &name).await?
            }
            DeadLetterCommand::List { .. } => Arc::new(MemoryQueue::new()),
        };
        Ok(command.run(&*letters, &*queue).await?)
    })
}
