//! The worker as a service: what it is built over, and the delivery loop. Its health port
//! (with the dead-letter endpoints of [`crate::DeadLetterApi`]) is served by the composition,
//! with the same health server as every other service.

use std::sync::Arc;

use switchyard_apps::AppStore;
use tokio_util::sync::CancellationToken;

use crate::dead_letter::DeadLetters;
use crate::worker::{run_with_dead_letters, WorkerConfig};
use crate::WebhookQueue;

/// What the worker drains, looks apps up in and keeps given-up jobs in.
pub struct WorkerDeps {
    pub queue: Arc<dyn WebhookQueue>,
    pub apps: Arc<dyn AppStore>,
    pub dead_letters: Arc<dyn DeadLetters>,
}

/// Delivers webhooks until `shutdown`.
pub async fn run(config: WorkerConfig, deps: WorkerDeps, shutdown: CancellationToken) {
    run_with_dead_letters(deps.queue, deps.apps, deps.dead_letters, config, shutdown).await;
}
