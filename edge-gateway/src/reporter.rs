//! Reports this edge's per-channel subscriber counts to core.
//!
//! Subscribing to a channel this edge already holds costs no core round trip: the channel is
//! marked dirty and a single task sends the current counts of all dirty channels in one call.
//! While a call is in flight further changes accumulate, so under churn the reports batch
//! themselves; when idle a change goes out at once.
//!
//! The first local subscriber of a channel is reported before `subscription_succeeded`
//! ([`Reporter::report_now`]), so a backend that queries the API right after a client
//! subscribed sees the channel occupied. Every send holds one lock and reads the counts at
//! send time, so reports from this edge reach core in order and the last one is current.
//!
//! Reports are absolute counts, so resending one is harmless, and they go in chunks of at most
//! [`CHUNK`]: a large batch after an outage makes progress chunk by chunk instead of timing
//! out whole and being retried whole forever.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use channel_core::{CoreError, CountReport, EdgeCore};
use tokio::sync::Notify;

use crate::hub::{Hub, Index, Key};

/// Reports per call to core: small enough that one call is quick even on a slow core.
pub(crate) const CHUNK: usize = 200;

#[derive(Default)]
pub(crate) struct Reporter {
    dirty: Mutex<HashSet<Key>>,
    notify: Notify,
    sending: tokio::sync::Mutex<()>,
}

impl Reporter {
    pub fn mark(&self, key: &Key) {
        self.dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone());
        self.notify.notify_one();
    }

    fn take(&self) -> Vec<Key> {
        let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        dirty.drain().collect()
    }

    /// Sends every pending report once; on failure the channels not yet sent stay dirty for
    /// the next try.
    pub async fn flush(
        &self,
        edge_id: &str,
        hub: &Hub,
        core: &dyn EdgeCore,
    ) -> Result<(), CoreError> {
        let _sending = self.sending.lock().await;
        let keys = self.take();
        self.send(keys, edge_id, hub, core).await
    }

    /// Sends `key`'s count now and waits for core to take it.
    pub async fn report_now(
        &self,
        key: &Key,
        edge_id: &str,
        hub: &Hub,
        core: &dyn EdgeCore,
    ) -> Result<(), CoreError> {
        let _sending = self.sending.lock().await;
        self.dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        self.send(vec![key.clone()], edge_id, hub, core).await
    }

    async fn send(
        &self,
        keys: Vec<Key>,
        edge_id: &str,
        hub: &Hub,
        core: &dyn EdgeCore,
    ) -> Result<(), CoreError> {
        for (i, chunk) in keys.chunks(CHUNK).enumerate() {
            let reports = chunk
                .iter()
                .map(|key| CountReport {
                    app_id: key.0.to_string(),
                    channel: key.1.to_string(),
                    count: hub.count(Index::Channel, key) as u64,
                })
                .collect();
            if let Err(e) = core.report_counts(edge_id, reports).await {
                tracing::warn!(error = %e, "count report failed; will retry");
                for key in &keys[i * CHUNK..] {
                    self.mark(key);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Waits until some channel's count changed since the last flush.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}
