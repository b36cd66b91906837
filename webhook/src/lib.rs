//! The webhook contract shared by whoever raises webhooks (channel-core, edges) and whoever
//! delivers them (the worker): the event and job, the queue traits, the in-memory queue.
//! Kept apart from the worker so that raising a webhook does not pull in HTTP clients or the
//! SQS SDK.

mod job;
mod memory;
mod push;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub use job::{WebhookEvent, WebhookJob};
pub use memory::MemoryQueue;
pub use push::push_with_retry;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("webhook queue unavailable: {0}")]
    Unavailable(String),
}

/// Names one pulled job until it is acked. Opaque: only the queue that handed it out reads it.
/// It is stable across redeliveries where the backend allows (a Redis stream entry id), which
/// is why the worker builds the receiver-facing idempotency key from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseId(String);

impl LeaseId {
    pub fn new(id: impl Into<String>) -> LeaseId {
        LeaseId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job handed to one worker, to be acked once the worker is done with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    pub id: LeaseId,
    pub job: WebhookJob,
}

/// Where core and edges leave webhook jobs: all they may do with a queue.
///
/// Contract: once `push` returns `Ok`, the job is delivered at least once or dead-lettered
/// after the retry window. Jobs carry no secrets; the worker signs at send time.
#[async_trait]
pub trait WebhookSink: Send + Sync {
    /// Enqueues `job`. `Ok` means the backend holds it.
    async fn push(&self, job: WebhookJob) -> Result<(), QueueError>;
}

/// The worker's side of the queue.
///
/// Contract (at least once, with [`WebhookSink::push`]):
/// - a job handed out by `pull` stays leased to that worker until `ack`; if the worker dies
///   first, the job is handed out again after the backend's visibility (idle) timeout, so a
///   receiver may see a job twice but never zero times;
/// - jobs come out roughly in push order; with several workers or redeliveries, order across
///   jobs is not guaranteed.
#[async_trait]
pub trait WebhookQueue: WebhookSink {
    /// Leases up to `max` jobs, waiting at most about `wait` for the first one; an empty `Vec`
    /// means none arrived in time. Entries that cannot be decoded are dropped (logged and
    /// acked) by the backend rather than returned or redelivered forever.
    async fn pull(&self, max: usize, wait: Duration) -> Result<Vec<Leased>, QueueError>;

    /// Ends the lease for good: the job was delivered, rejected or dead-lettered. Acking an
    /// unknown or already-acked id is not an error.
    async fn ack(&self, id: &LeaseId) -> Result<(), QueueError>;

    /// Jobs pushed and not yet acked (waiting or leased), as well as the backend can tell
    /// cheaply (SQS: approximately); `None` if it cannot. For the queue-depth gauge only.
    async fn depth(&self) -> Result<Option<u64>, QueueError> {
        Ok(None)
    }
}
