//! Reports this edge's per-channel subscriber counts to core.
//!
//! Subscribing costs no core round trip: the channel is marked dirty and a single task sends
//! the current counts of all dirty channels in one call. While a call is in flight further
//! changes accumulate, so under churn the reports batch themselves; when idle a change goes
//! out at once, which keeps `subscription_count` and occupancy prompt.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use channel_core::{ChannelCore, CountReport};
use tokio::sync::Notify;

use crate::hub::{Hub, Index, Key};

#[derive(Default)]
pub(crate) struct Reporter {
    dirty: Mutex<HashSet<Key>>,
    notify: Notify,
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

    /// Sends every pending report once; on failure the channels stay dirty for the next try.
    pub async fn flush(&self, edge_id: &str, hub: &Hub, core: &dyn ChannelCore) -> bool {
        let keys = self.take();
        if keys.is_empty() {
            return true;
        }
        let reports = keys
            .iter()
            .map(|key| CountReport {
                app_id: key.0.to_string(),
                channel: key.1.to_string(),
                count: hub.count(Index::Channel, key) as u64,
            })
            .collect();
        match core.report_counts(edge_id, reports).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "count report failed; will retry");
                for key in &keys {
                    self.mark(key);
                }
                false
            }
        }
    }

    /// Waits until some channel's count changed since the last flush.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}
