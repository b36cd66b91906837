use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, Mutex};

use crate::{LeaseId, Leased, QueueError, WebhookJob, WebhookQueue, WebhookSink};

/// The embedded mode's queue: an in-process channel the worker pulls from.
///
/// `ack` is a no-op and a pulled job is never handed out again: the only way a worker dies
/// without acking is the process dying, and that loses the whole queue anyway. Durability
/// across crashes is what the Redis queue is for.
pub struct MemoryQueue {
    tx: mpsc::UnboundedSender<WebhookJob>,
    // A tokio mutex because `pull` waits on the channel while holding it; concurrent pullers
    // simply take turns.
    rx: Mutex<mpsc::UnboundedReceiver<WebhookJob>>,
    next_id: AtomicU64,
    /// Pushed and not yet acked, counted here: the receiver cannot be asked while a pull
    /// holds it.
    unacked: AtomicU64,
}

impl MemoryQueue {
    pub fn new() -> MemoryQueue {
        let (tx, rx) = mpsc::unbounded_channel();
        MemoryQueue {
            tx,
            rx: Mutex::new(rx),
            // Lease ids feed the receivers' idempotency keys; a random start keeps a restarted
            // process from reusing the previous run's keys.
            next_id: AtomicU64::new(u64::from(rand::random::<u32>()) << 20),
            unacked: AtomicU64::new(0),
        }
    }

    fn lease(&self, job: WebhookJob) -> Leased {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        Leased {
            id: LeaseId::new(format!("m{n}")),
            job,
        }
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        MemoryQueue::new()
    }
}

#[async_trait]
impl WebhookSink for MemoryQueue {
    async fn push(&self, job: WebhookJob) -> Result<(), QueueError> {
        // Cannot fail while `self` holds the receiver; kept as an error rather than a panic.
        self.tx
            .send(job)
            .map_err(|_| QueueError::Unavailable("memory queue receiver is gone".into()))?;
        self.unacked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl WebhookQueue for MemoryQueue {
    async fn pull(&self, max: usize, wait: Duration) -> Result<Vec<Leased>, QueueError> {
        let max = max.max(1);
        let mut rx = self.rx.lock().await;
        let first = match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) | Err(_) => return Ok(Vec::new()),
        };
        let mut jobs = vec![self.lease(first)];
        while jobs.len() < max {
            match rx.try_recv() {
                Ok(job) => jobs.push(self.lease(job)),
                Err(_) => break,
            }
        }
        Ok(jobs)
    }

    async fn ack(&self, _id: &LeaseId) -> Result<(), QueueError> {
        // Acking twice is allowed, so the count must not wrap below zero.
        let _ = self
            .unacked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        Ok(())
    }

    async fn depth(&self) -> Result<Option<u64>, QueueError> {
        Ok(Some(self.unacked.load(Ordering::Relaxed)))
    }
}
