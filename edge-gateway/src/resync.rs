//! Re-reading presence channels whose views missed events: one that saw a gap in the
//! membership numbers, or every one after the bus reconnected (what was published while it
//! was down never arrives).

use std::sync::Arc;
use std::time::Duration;

use crate::Edge;

/// How long after a reconnect the channels are re-read: async-nats reports the reconnect
/// before it has re-subscribed, and a read before the subscriptions are back could miss an
/// event published in between.
const AFTER_RECONNECT: Duration = Duration::from_secs(1);
/// How long a failed read waits before the next try.
const RETRY: Duration = Duration::from_secs(1);
/// How long a hole may stay open before the channel is re-read: events relayed by two core
/// replicas side by side arrive a little out of order, and a late one fills it.
const HOLE_WAIT: Duration = Duration::from_millis(300);

impl Edge {
    /// Watches for gaps and reconnects until shutdown.
    pub(crate) async fn resync(self: Arc<Self>) {
        let edge = self.clone();
        let reconnects = tokio::spawn(async move {
            let mut reconnects = edge.deps.bus.reconnects();
            // An in-process bus never reconnects: its sender is gone and this ends.
            while reconnects.changed().await.is_ok() {
                tokio::time::sleep(AFTER_RECONNECT).await;
                edge.hub.want_resync_all();
            }
        });
        loop {
            let keys = tokio::select! {
                () = self.shutdown.cancelled() => break,
                keys = self.hub.resync_wanted() => keys,
            };
            tokio::time::sleep(HOLE_WAIT).await;
            let mut failed = false;
            for key in keys {
                if !self.hub.needs_resync(&key) {
                    continue;
                }
                match self.deps.core.presence(&key.0, &key.1).await {
                    Ok(now) => self.hub.resync(&key, &now),
                    Err(e) => {
                        tracing::warn!(app_id = %key.0, channel = %key.1, error = %e, "presence re-read failed; will retry");
                        self.hub.want_resync(&key);
                        failed = true;
                    }
                }
            }
            if failed {
                tokio::time::sleep(RETRY).await;
            }
        }
        reconnects.abort();
    }
}
