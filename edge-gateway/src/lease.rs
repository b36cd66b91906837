//! The edge's lease in core, under an id that is the lease's epoch: once core has reaped an
//! id, every write under it is refused ([`CoreError::Fenced`]), and the edge takes a new id.
//!
//! [`CoreError::Fenced`]: channel_core::CoreError::Fenced

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use switchyard_protocol::CloseCode;

use crate::Edge;

/// What a heartbeat's answer means for the id it was sent under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// The lease was renewed, or granted to a new id.
    Held,
    /// The id had a lease this edge never got: an earlier process with the same configured
    /// id. Its state is not ours, so this edge takes another id (nothing to close yet).
    Borrowed,
    /// The lease this edge held is gone: a reaper took it, or the store lost its state.
    Lost,
}

/// `live`: core found a lease entry for the id; `granted`: this edge already held it.
pub(crate) fn beat(live: bool, granted: bool) -> Beat {
    match (live, granted) {
        (true, true) | (false, false) => Beat::Held,
        (true, false) => Beat::Borrowed,
        (false, true) => Beat::Lost,
    }
}

impl Edge {
    /// Renews the lease until shutdown. The first beat goes out at once, before any client
    /// could have subscribed, so everything this edge ever holds is covered by a lease; a new
    /// id is beaten at once too.
    pub(crate) async fn beat(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = tick.tick() => {}
                () = self.beat_now.notified() => {}
            }
            let id = self.id();
            let answer = self.deps.core.heartbeat(&id).await;
            if *self.id() != *id {
                // The id was replaced while the beat was out: its answer is about the old one.
                continue;
            }
            let ok = match answer {
                Ok(live) => {
                    match beat(live, self.leased.load(Ordering::Relaxed)) {
                        Beat::Held => self.leased.store(true, Ordering::Relaxed),
                        Beat::Borrowed => {
                            tracing::warn!(edge = %id, "edge id already leased by an earlier process; taking a new one");
                            self.renew_id(&id);
                        }
                        Beat::Lost => self.start_afresh(&id),
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "heartbeat to channel-core failed");
                    false
                }
            };
            self.ready.store(ok, Ordering::Relaxed);
            if ok {
                self.retry_removals.notify_one();
            }
        }
    }

    /// Sends removals core has not confirmed, after each heartbeat it answered, in a task of
    /// its own: a slow core must not delay the heartbeat and cost the edge its lease.
    pub(crate) async fn send_removals(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = self.retry_removals.notified() => {}
            }
            self.removals
                .retry(&self.id(), self.deps.core.as_ref())
                .await;
        }
    }

    /// Core forgot this edge under `stale` (its lease lapsed, e.g. in a partition, and it was
    /// reaped, or Redis lost its keys): its sockets' state is gone cluster-wide. The edge
    /// takes a new id and sends every client away to reconnect (4200), which rebuilds their
    /// state from scratch. Called by whoever learns it first (a heartbeat, or a write refused
    /// as fenced); only the first call for an id does anything.
    pub(crate) fn start_afresh(&self, stale: &str) {
        if self.renew_id(stale) {
            tracing::warn!(edge = %stale, "lease was lost; reconnecting all clients under a new edge id");
            self.hub.close_all(CloseCode::ReconnectImmediately);
        }
    }

    /// Replaces the id `stale` with a fresh one and has it beaten at once; false when `stale`
    /// was already replaced.
    fn renew_id(&self, stale: &str) -> bool {
        let mut id = self.id.write().unwrap_or_else(PoisonError::into_inner);
        if **id != *stale {
            return false;
        }
        *id = format!("{}-{:08x}", self.config.edge_id, rand::random::<u32>()).into();
        self.leased.store(false, Ordering::Relaxed);
        self.beat_now.notify_one();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_is_read_against_whether_this_edge_held_the_lease() {
        assert_eq!(beat(false, false), Beat::Held, "a first beat is granted");
        assert_eq!(beat(true, true), Beat::Held, "a renewal");
        assert_eq!(beat(false, true), Beat::Lost, "a reaped or lost lease");
        assert_eq!(
            beat(true, false),
            Beat::Borrowed,
            "an earlier process's lease"
        );
    }
}
