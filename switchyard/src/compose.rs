//! One builder per service from the configuration: the edge's settings, core and its loops,
//! the worker. The embedded server and the binaries build these through here, so a setting
//! means the same in both modes; only the adapters they pass in differ (memory in the embedded
//! server, Redis, NATS and gRPC from `cluster`). The API takes its settings from `Config`
//! directly.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use channel_core::{Core, CoreConfig, CoreDeps, HOLD_CHECK_EVERY};
use edge_gateway::EdgeConfig;
use switchyard_config::Config;
use switchyard_listener::Handler;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use webhook_worker::service::WorkerDeps;
use webhook_worker::{DeadLetterApi, WorkerConfig};

use crate::{cluster, launch};

/// The edge settings, for the embedded and the standalone edge alike.
pub fn edge_config(config: &Config, edge_id: String) -> EdgeConfig {
    let server = &config.server;
    EdgeConfig {
        edge_id,
        activity_timeout: server.activity_timeout,
        pong_timeout: server.pong_timeout,
        max_message_bytes: server.max_message_bytes,
        outbound_queue: server.outbound_queue,
        outbound_queue_bytes: server.outbound_queue_bytes,
        max_connections: server.max_edge_connections,
        shutdown_grace: server.shutdown_grace,
        heartbeat_interval: config.edge.heartbeat,
        linger: config.edge.linger,
        max_connections_per_ip_per_second: server.max_connections_per_ip_per_second,
    }
}

/// Core's timings from `[core]`.
pub fn core_config(config: &Config) -> CoreConfig {
    CoreConfig {
        lease_ttl: config.core.lease_ttl,
        reap_interval: config.core.reap_interval,
        hold_check: HOLD_CHECK_EVERY,
    }
}

/// A core over `deps`, as `[core]` says. Run its loops with [`channel_core::run`], or serve it
/// with [`serve_core`].
pub fn core(config: &Config, deps: CoreDeps) -> Arc<Core> {
    Arc::new(Core::from_deps(&core_config(config), deps))
}

/// The distributed channel-core: its loops, `/up`, `/ready` and `/metrics` on
/// `[core] health_port` and gRPC on `[core] port`, until `shutdown`.
pub async fn serve_core(
    config: &Config,
    core: Arc<Core>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let host = &config.server.host;
    let health = launch::bind(host, config.core.health_port, "health checks").await?;
    let grpc = launch::bind(host, config.core.port, "gRPC").await?;
    tracing::info!(addr = %grpc.local_addr()?, "channel-core listening");
    let probe = core.clone();
    let ready = move || {
        let probe = probe.clone();
        async move { probe.store_ready().await }
    };
    // Stopped with gRPC too, so a server that fails to start does not leave the process
    // reaping with nobody able to reach it.
    let others = shutdown.child_token();
    let background = async {
        tokio::join!(
            channel_core::run(core_config(config), core.clone(), others.clone()),
            cluster::serve_health(health, ready, None, others.clone()),
        )
    };
    let serving = async {
        let served = switchyard_proto::serve(grpc, core.clone(), shutdown.clone()).await;
        others.cancel();
        served
    };
    let (served, _) = tokio::join!(serving, background);
    Ok(served?)
}

/// The delivery settings from `[worker]`; the rest keep the worker's defaults.
pub fn worker_config(config: &Config) -> WorkerConfig {
    WorkerConfig {
        concurrency: config.worker.concurrency,
        retry_window: config.worker.retry_window,
        ..WorkerConfig::default()
    }
}

/// How long a dead worker's jobs stay leased: `[worker] reclaim_after_secs`, at least one
/// second, since 0 would reclaim live leases at once (and one second is SQS's own floor).
pub fn reclaim_after(config: &Config) -> Duration {
    config.worker.reclaim_after.max(Duration::from_secs(1))
}

/// The webhook worker as `[worker]` says, and on `health` (if given) its health port with the
/// dead-letter endpoints (on with `[server] admin_token`), until `shutdown`.
pub fn worker(
    config: &Config,
    health: Option<TcpListener>,
    deps: WorkerDeps,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let serve = health.map(|listener| {
        let token = config
            .server
            .admin_token
            .as_ref()
            .map(|t| t.expose().to_owned());
        let (queue, letters) = (deps.queue.clone(), deps.dead_letters.clone());
        let api = Arc::new(DeadLetterApi::new(token, letters, queue.clone()));
        let admin: Handler = Arc::new(move |req, _| {
            let api = api.clone();
            Box::pin(async move {
                let (status, body) = api.handle(req).await;
                switchyard_listener::json(status, body.to_string())
            })
        });
        // A round trip to the queue (Redis XLEN, SQS attributes): not ready while the queue
        // is unreachable.
        let ready = move || {
            let queue = queue.clone();
            async move { queue.depth().await.is_ok() }
        };
        cluster::serve_health(listener, ready, Some(admin), shutdown.clone())
    });
    let deliver = webhook_worker::service::run(worker_config(config), deps, shutdown);
    async move {
        match serve {
            Some(serve) => {
                tokio::join!(serve, deliver);
            }
            None => deliver.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn worker_settings_come_from_the_worker_section() {
        let file = "[worker]\nconcurrency = 3\nretry_window_secs = 7\nreclaim_after_secs = 0\n";
        let config = Config::load(Some(file), &HashMap::new()).expect("valid");
        let worker = worker_config(&config);
        assert_eq!(worker.concurrency, 3);
        assert_eq!(worker.retry_window, Duration::from_secs(7));
        assert_eq!(reclaim_after(&config), Duration::from_secs(1));
    }

    #[test]
    fn core_timings_come_from_the_core_section() {
        let file = "[core]\nlease_ttl_ms = 9000\nreap_interval_ms = 700\n";
        let config = Config::load(Some(file), &HashMap::new()).expect("valid");
        let core = core_config(&config);
        assert_eq!(core.lease_ttl, Duration::from_millis(9000));
        assert_eq!(core.reap_interval, Duration::from_millis(700));
    }
}
