//! `webhook-worker [--config FILE]`: drains the webhook queue and delivers signed webhooks.

use std::process::ExitCode;
use std::time::Duration;

use switchyard::{cluster, launch};
use webhook_worker::WorkerConfig;

const USAGE: &str = "usage: webhook-worker [--config FILE]

Delivers webhooks from the Redis queue; /up and /ready on [worker] health_port (6401).";

fn main() -> ExitCode {
    launch::main(USAGE, |config, shutdown| async move {
        let name = cluster::instance_name("worker", config.worker.health_port);
        let queue = cluster::webhook_queue(&config, &name).await?;
        let health = launch::bind(
            &config.server.host,
            config.worker.health_port,
            "health checks",
        )
        .await?;
        tokio::spawn(cluster::serve_health(
            health,
            || async { true },
            shutdown.clone(),
        ));
        let worker_config = WorkerConfig {
            concurrency: config.worker.concurrency,
            retry_window: Duration::from_secs(config.worker.retry_window_secs),
            ..WorkerConfig::default()
        };
        tracing::info!(name, "webhook-worker running");
        webhook_worker::run(queue, cluster::apps(&config), worker_config, shutdown).await;
        Ok(())
    })
}
