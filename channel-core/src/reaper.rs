//! Reaping dead edges: an edge whose lease expired is removed from every channel and user it
//! held, with the same events as if each of its sockets had closed.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::core::Core;
use crate::store::Holding;
use crate::CoreError;

/// How long a reaper may take over one dead edge before another may take it over.
const CLAIM: Duration = Duration::from_secs(30);

impl Core {
    /// Reaps every edge whose lease has expired; returns how many were reaped.
    pub async fn reap_expired(&self) -> Result<usize, CoreError> {
        let mut reaped = 0;
        while let Some(edge) = self.store.claim_expired_edge(CLAIM).await? {
            // On an error the claim simply lapses and a later pass (here or on another
            // replica) reaps the edge again; reaping is idempotent.
            self.reap_edge(&edge).await?;
            tracing::info!(edge, "reaped a dead edge");
            reaped += 1;
        }
        Ok(reaped)
    }

    async fn reap_edge(&self, edge: &str) -> Result<(), CoreError> {
        // Fenced before listing: whatever the edge manages to write from here on is refused,
        // so the list is complete.
        self.store.fence_edge(edge).await?;
        for holding in self.store.edge_holdings(edge).await? {
            match holding {
                // The store writes each removal's effects with it; the relay sends them.
                Holding::Channel { app_id, channel } => {
                    self.store.reap_channel(&app_id, &channel, edge).await?;
                    self.relay.notify_one();
                }
                Holding::User { app_id, user_id } => {
                    self.store.reap_user(&app_id, &user_id, edge).await?;
                    self.relay.notify_one();
                }
                Holding::Connections { app_id } => {
                    self.store.reap_connections(&app_id, edge).await?;
                }
            }
        }
        self.store.forget_edge(edge).await
    }

    /// Looks for expired edges every `every` until `shutdown`. Several core replicas may run
    /// this at once: each expired edge is claimed by exactly one of them.
    pub async fn run_reaper(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        // After a core outage every lease has expired; give live edges one lease period to
        // beat again before reaping, or a core restart would disconnect every client.
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(self.lease_ttl) => {}
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.reap_expired().await {
                tracing::warn!(error = %e, "reaping dead edges failed; will retry");
            }
        }
    }
}
