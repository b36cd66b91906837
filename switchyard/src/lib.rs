//! The embedded mode: every service in one process on one port, over in-memory adapters.
//!
//! This composes the same `edge-gateway`, `api-service`, `channel-core` and `webhook-worker`
//! code the distributed binaries run; only the adapters differ.

use std::net::SocketAddr;
use std::sync::Arc;

use api_service::{Api, ApiDeps};
use channel_core::{Core, MemoryStore};
use edge_gateway::{Edge, EdgeConfig, EdgeDeps};
use hyper::StatusCode;
use switchyard_apps::{AppStore, StaticAppStore};
use switchyard_bus::{Bus, MemoryBus};
use switchyard_config::Config;
use switchyard_listener::Handler;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use webhook_worker::{MemoryQueue, WorkerConfig};

/// A bound embedded server, ready to run.
pub struct Server {
    listener: TcpListener,
    config: Config,
}

impl Server {
    pub async fn bind(config: Config) -> std::io::Result<Server> {
        let addr = format!("{}:{}", config.server.host, config.server.port);
        let listener = TcpListener::bind(addr).await?;
        Ok(Server { listener, config })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then tells clients to reconnect (4200) and drains.
    pub async fn run(self, shutdown: CancellationToken) {
        let server = &self.config.server;
        let apps: Arc<dyn AppStore> = Arc::new(StaticAppStore::new(self.config.apps.clone()));
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let (queue, jobs) = MemoryQueue::new();
        let webhooks = Arc::new(queue);
        let core = Arc::new(Core::new(
            Arc::new(MemoryStore::new()),
            bus.clone(),
            apps.clone(),
            webhooks.clone(),
        ));
        let worker_stop = CancellationToken::new();
        let worker = tokio::spawn(webhook_worker::run(
            jobs,
            apps.clone(),
            WorkerConfig::default(),
            worker_stop.clone(),
        ));
        let edge_config = EdgeConfig {
            edge_id: "embedded".into(),
            activity_timeout: server.activity_timeout(),
            pong_timeout: server.pong_timeout(),
            max_message_bytes: server.max_message_bytes,
            outbound_queue: server.outbound_queue,
            shutdown_grace: server.shutdown_grace(),
        };
        let edge_deps = EdgeDeps {
            apps: apps.clone(),
            core: core.clone(),
            bus: bus.clone(),
            webhooks,
        };
        let edge = Edge::new(edge_config, edge_deps, shutdown.clone());
        let api = Api::new(ApiDeps { apps, core, bus });
        let handler = router(edge.clone(), api);
        let tracker = TaskTracker::new();
        switchyard_listener::serve(self.listener, handler, shutdown, tracker.clone()).await;
        edge.drain().await;
        tracker.close();
        tracker.wait().await;
        worker_stop.cancel();
        let _ = worker.await;
    }
}

/// One port for everything, as Pusher, soketi and Sockudo serve it.
fn router(edge: Arc<Edge>, api: Arc<Api>) -> Handler {
    Arc::new(move |req, peer| {
        let (edge, api) = (edge.clone(), api.clone());
        Box::pin(async move {
            let path = req.uri().path();
            if path.starts_with("/apps/") {
                api.handle(req).await
            } else if path.starts_with("/app/")
                || req.headers().contains_key(hyper::header::UPGRADE)
            {
                edge.handle(req, peer).await
            } else if path == "/up" || path == "/ready" {
                switchyard_listener::json(StatusCode::OK, r#"{"ok":true}"#)
            } else {
                switchyard_listener::error(
                    StatusCode::NOT_FOUND,
                    &format!("no such endpoint: {path}"),
                )
            }
        })
    })
}
