//! Re-reading presence channels whose views missed events: one that saw a gap in the
//! membership numbers, or every one after the bus reconnected (what was published while it
//! was down never arrives). After a reconnect, watchers are also told who is online now.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::frame;

use crate::hub::{Index, Key};
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
                edge.resync_watchlists().await;
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

    /// Tells every watcher the current state of each user it watches: an `online` or
    /// `offline` it missed while the bus was down is sent now (a repeat changes nothing).
    async fn resync_watchlists(&self) {
        let mut by_app: HashMap<Arc<str>, Vec<String>> = HashMap::new();
        for (app_id, user_id) in self.hub.watched() {
            by_app.entry(app_id).or_default().push(user_id.to_string());
        }
        for (app_id, users) in by_app {
            let online = match self.deps.core.online(&app_id, &users).await {
                Ok(online) => online,
                Err(e) => {
                    tracing::warn!(%app_id, error = %e, "watchlist re-read failed");
                    continue;
                }
            };
            for user in users {
                let name = if online.contains(&user) {
                    "online"
                } else {
                    "offline"
                };
                let key: Key = (app_id.clone(), user.as_str().into());
                let frame = frame::watchlist_event(name, &[user.as_str()]);
                self.hub.send_local(Index::Watch, &key, frame);
            }
        }
    }
}
