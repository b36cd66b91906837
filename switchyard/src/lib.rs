//! The embedded mode: every service in one process on one port, over in-memory adapters.
//!
//! This composes the same `edge-gateway`, `api-service`, `channel-core` and `webhook-worker`
//! code the distributed binaries run; only the adapters differ.

pub mod app_store;
pub mod apps_cli;
pub mod cluster;
pub mod compose;
pub mod launch;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use api_service::{Api, ApiDeps};
use channel_core::{CoreDeps, MemoryStore};
use edge_gateway::{Edge, EdgeDeps};
use hyper::StatusCode;
use switchyard_apps::AppAdmin;
use switchyard_bus::{Bus, MemoryBus};
use switchyard_config::Config;
use switchyard_listener::Listener;
use switchyard_listener::{Handler, Service};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use webhook_worker::service::WorkerDeps;
use webhook_worker::{MemoryDeadLetters, MemoryQueue};

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
        let config = &self.config;
        if let Some(tls) = &self.listener.tls {
            launch::watch_tls(config, tls, &shutdown);
        }
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let backend = self.apps.clone();
        let apps = app_store::lookup(config, backend.clone(), Some(bus.clone()), shutdown.clone());
        let webhooks = Arc::new(MemoryQueue::new());
        let core_deps = CoreDeps {
            store: Arc::new(MemoryStore::new()),
            bus: bus.clone(),
            apps: apps.clone(),
            webhooks: webhooks.clone(),
        };
        let core = compose::core(config, core_deps);
        // The embedded edge never dies on its own, but the same reaper runs in both modes.
        let core_loops = tokio::spawn(channel_core::run(
            compose::core_config(config),
            core.clone(),
            shutdown.clone(),
        ));
        // Stopped only after the edge has drained, so the webhooks its last closes queued are
        // still delivered. (Leaving webhooks still held when the process stops are lost: the
        // embedded store lives in memory.)
        let worker_stop = CancellationToken::new();
        let worker_deps = WorkerDeps {
            queue: webhooks.clone(),
            apps: apps.clone(),
            dead_letters: Arc::new(MemoryDeadLetters::default()),
        };
        let worker = tokio::spawn(compose::worker(
            config,
            None,
            worker_deps,
            worker_stop.clone(),
        ));
        let edge_config = compose::edge_config(config, "embedded".into());
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
            admin: app_store::admin(config, backend),
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
        let _ = core_loops.await;
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
