//! Webhook jobs, the queue they wait in, and the worker that signs and delivers them.

mod deliver;
mod job;
mod memory;
mod worker;

use async_trait::async_trait;

pub use job::{WebhookEvent, WebhookJob};
pub use memory::MemoryQueue;
pub use worker::{matches, run, WorkerConfig};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("webhook queue unavailable: {0}")]
    Unavailable(String),
}

/// Where core and edges leave webhook jobs for the worker.
///
/// Contract: once `push` returns `Ok`, the job is delivered at least once (or dead-lettered
/// after the retry window). Jobs carry no secrets; the worker signs at send time.
#[async_trait]
pub trait WebhookQueue: Send + Sync {
    async fn push(&self, job: WebhookJob) -> Result<(), QueueError>;
}
