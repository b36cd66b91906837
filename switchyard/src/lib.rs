//! The embedded mode: every service in one process on one port, over in-memory adapters.
//!
//! This composes the same `edge-gateway`, `api-service`, `channel-core` and `webhook-worker`
//! code the distributed binaries run; only the adapters differ.

pub mod app_store;
pub mod apps_cli;
pub mod cluster;
pub mod launch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use api_service::{Api, ApiDeps};
use channel_core::{Core, MemoryStore};
use edge_gateway::{Edge, EdgeConfig, EdgeDeps};
use hyper::StatusCode;
use switchyard_apps::AppAdmin;
use switchyard_bus::{Bus, MemoryBus};
use switchyard_config::Config;
use switchyard_listener::Listener;
use switchyard_listener::{Handler, Service};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use webhook_worker::{MemoryQueue, WorkerConfig};

/// How often channel-core looks for held leaving webhooks that are due (the hold is 3 s).
pub const HOLD_CHECK_EVERY: Duration = Duration::from_millis(250);

/// A bound embedded server, ready to run.
pub struct Server {
    listener: Listener,
    config: Config,
    apps: Arc<dyn AppAdmin>,
}

impl Server {
    /// Listens on the configured port and opens the app store.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        let (host, port) = (&config.server.host, config.server.port);
        let tcp = switchyard_listener::bind(host, port)
            .await
            .with_context(|| format!("cannot listen on {host}:{port}"))?;
        let listener =
            launch::with_backpressure(&config, Listener::new(tcp, launch::tls(&config)?));
        let apps = app_store::backend(&config).await?;
        Ok(Server {
            listener,
            config,
            apps,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then tells clients to reconnect (4200) and drains.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Some(tls) = &self.listener.tls {
            launch::watch_tls(&self.config, tls, &shutdown);
        }
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let backend = self.apps.clone();
        let apps = app_store::lookup(
            &self.config,
            backend.clone(),
            Some(bus.clone()),
            shutdown.clone(),
        );
        let webhooks = Arc::new(MemoryQueue::new());
        let core = Arc::new(
            Core::new(
                Arc::new(MemoryStore::new()),
                bus.clone(),
                apps.clone(),
                webhooks.clone(),
            )
            .with_lease_ttl(Duration::from_millis(self.config.core.lease_ttl_ms)),
        );
        // The embedded edge never dies on its own, but the same reaper runs in both modes.
        let reap_every = Duration::from_millis(self.config.core.reap_interval_ms);
        tokio::spawn(core.clone().run_reaper(reap_every, shutdown.clone()));
        tokio::spawn(core.clone().run_holds(HOLD_CHECK_EVERY, shutdown.clone()));
        let worker_stop = CancellationToken::new();
        let worker = tokio::spawn(webhook_worker::run(
            webhooks.clone(),
            apps.clone(),
            WorkerConfig::default(),
            worker_stop.clone(),
        ));
        let edge_config = edge_config(&self.config, "embedded".into());
        let edge_deps = EdgeDeps {
            apps: apps.clone(),
            core: core.clone(),
            bus: bus.clone(),
            webhooks,
        };
        let edge = Edge::new(edge_config, edge_deps, shutdown.clone());
        let api = Api::new(ApiDeps {
            apps,
            core,
            bus,
            admin: app_store::admin(&self.config, backend),
        });
        let service = Service {
            handler: router(api),
            upgrades: Some(edge.upgrades()),
        };
        let tracker = TaskTracker::new();
        switchyard_listener::serve(self.listener, service, shutdown, tracker.clone()).await;
        edge.drain().await;
        tracker.close();
        tracker.wait().await;
        worker_stop.cancel();
        let _ = worker.await;
    }
}

/// The edge settings from the configuration, for the embedded and the standalone edge alike.
pub fn edge_config(config: &Config, edge_id: String) -> EdgeConfig {
    let server = &config.server;
    EdgeConfig {
        edge_id,
        activity_timeout: server.activity_timeout(),
        pong_timeout: server.pong_timeout(),
        max_message_bytes: server.max_message_bytes,
        outbound_queue: server.outbound_queue,
        outbound_queue_bytes: server.outbound_queue_bytes,
        max_connections: server.max_edge_connections,
        shutdown_grace: server.shutdown_grace(),
        heartbeat_interval: Duration::from_millis(config.edge.heartbeat_ms),
        linger: Duration::from_millis(config.edge.linger_ms),
        max_connections_per_ip_per_second: server.max_connections_per_ip_per_second,
    }
}

/// One port for everything, as Pusher, soketi and Sockudo serve it. WebSocket upgrades go to
/// the edge's upgrade hook before a request reaches this handler.
fn router(api: Arc<Api>) -> Handler {
    Arc::new(move |req, _peer| {
        let api = api.clone();
        Box::pin(async move {
            let path = req.uri().path();
            if path.starts_with("/apps/") || path.starts_with("/admin/") {
                api.handle(req).await
            } else if path.starts_with("/app/") {
                edge_gateway::not_an_upgrade()
            } else if path == "/up" || path == "/ready" {
                switchyard_listener::json(StatusCode::OK, r#"{"ok":true}"#)
            } else if path == "/metrics" {
                switchyard_telemetry::metrics::endpoint()
            } else {
                switchyard_listener::error(
                    StatusCode::NOT_FOUND,
                    &format!("no such endpoint: {path}"),
                )
            }
        })
    })
}
