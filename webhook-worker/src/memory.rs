use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{QueueError, WebhookJob, WebhookQueue};

/// The embedded mode's queue: an in-process channel drained by the worker task.
pub struct MemoryQueue {
    tx: mpsc::UnboundedSender<WebhookJob>,
}

impl MemoryQueue {
    pub fn new() -> (MemoryQueue, mpsc::UnboundedReceiver<WebhookJob>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (MemoryQueue { tx }, rx)
    }
}

#[async_trait]
impl WebhookQueue for MemoryQueue {
    async fn push(&self, job: WebhookJob) -> Result<(), QueueError> {
        self.tx
            .send(job)
            .map_err(|_| QueueError::Unavailable("webhook worker has stopped".into()))
    }
}
