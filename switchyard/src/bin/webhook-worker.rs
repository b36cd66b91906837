//! `webhook-worker [--config FILE]`: drains the webhook queue and delivers signed webhooks.
//! `webhook-worker dead-letters …`: lists or replays the webhooks it gave up on.

use std::process::ExitCode;
use std::sync::Arc;

use switchyard::{cluster, compose, launch};
use webhook_worker::{DeadLetterCommand, MemoryQueue, WebhookQueue};

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
        // Bound first, so probes get an answer (not ready) while the stores connect.
        let (host, port) = (&config.server.host, config.worker.health_port);
        let health = launch::bind(host, port, "health checks").await?;
        let deps = cluster::worker_deps(&config, &name, &shutdown).await?;
        tracing::info!(name, "webhook-worker running");
        compose::worker(&config, Some(health), deps, shutdown).await;
        Ok(())
    })
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
        let letters = cluster::dead_letters(&config).await?;
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
