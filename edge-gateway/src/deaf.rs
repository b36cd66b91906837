//! An edge that has lost the bus can no longer deliver anything to its clients. A short loss is
//! ridden out (the client keeps its connection; presence is re-read after the reconnect), but
//! one that lasts longer than [`DEAF_AFTER`] sends every client away to back off and reconnect
//! (4100), through the load balancer, to an edge that can hear, rather than leave it connected
//! and silently missing events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_protocol::CloseCode;

use crate::Edge;

/// How long the bus may be gone before clients are sent away.
pub(crate) const DEAF_AFTER: Duration = Duration::from_secs(5);
const CHECK_EVERY: Duration = Duration::from_millis(250);

impl Edge {
    pub(crate) async fn watch_bus(self: Arc<Self>) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        let mut lost_at: Option<Instant> = None;
        let mut sent_away = false;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if self.deps.bus.is_connected() {
                lost_at = None;
                sent_away = false;
                continue;
            }
            let since = *lost_at.get_or_insert_with(Instant::now);
            if !sent_away && since.elapsed() >= DEAF_AFTER {
                tracing::warn!(after = ?DEAF_AFTER, "the bus is gone; sending every client away (4100)");
                self.hub.close_all(CloseCode::OverCapacity);
                sent_away = true;
            }
        }
    }
}
