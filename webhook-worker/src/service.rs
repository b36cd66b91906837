//! The worker as a service: the delivery loop and, on the health port when there is one,
//! `/up`, `/ready`, `/metrics` and the dead-letter admin endpoints.

use std::sync::Arc;

use switchyard_apps::AppStore;
use switchyard_listener::Handler;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dead_letter::DeadLetters;
use crate::dead_letter_api::{DeadLetterApi, ADMIN_PREFIX};
use crate::worker::{run_with_dead_letters, WorkerConfig};
use crate::WebhookQueue;

/// What the worker drains, looks apps up in and keeps given-up jobs in.
pub struct WorkerDeps {
    pub queue: Arc<dyn WebhookQueue>,
    pub apps: Arc<dyn AppStore>,
    pub dead_letters: Arc<dyn DeadLetters>,
}

/// The worker's own HTTP port. The embedded server has none: its one port already answers
/// `/up` and `/metrics`, and its dead letters live and die with the process.
pub struct HealthPort {
    pub listener: TcpListener,
    /// Bearer token of the admin endpoints; `None` or empty leaves them off (404).
    pub admin_token: Option<String>,
}

/// Delivers webhooks (and serves `health`) until `shutdown`.
pub async fn run(
    health: Option<HealthPort>,
    config: WorkerConfig,
    deps: WorkerDeps,
    shutdown: CancellationToken,
) {
    let WorkerDeps {
        queue,
        apps,
        dead_letters,
    } = deps;
    let serve = async {
        if let Some(HealthPort {
            listener,
            admin_token,
        }) = health
        {
            let admin = Arc::new(DeadLetterApi::new(
                admin_token,
                dead_letters.clone(),
                queue.clone(),
            ));
            serve_health(listener, admin, queue.clone(), shutdown.clone()).await;
        }
    };
    let deliver = run_with_dead_letters(
        queue.clone(),
        apps,
        dead_letters.clone(),
        config,
        shutdown.clone(),
    );
    tokio::join!(serve, deliver);
}

/// `/up`, `/ready`, `/metrics` and, under `/admin/`, the dead-letter endpoints.
async fn serve_health(
    listener: TcpListener,
    admin: Arc<DeadLetterApi>,
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
