use std::time::Duration;

use async_trait::async_trait;

use super::{Holding, ReapResult};
use crate::CoreError;

/// Edge leases, and removing what a dead edge held.
///
/// Contract: an edge that stops renewing its lease is claimed by exactly one reaper once the
/// lease expires; the reaper removes each of the edge's holdings with the same transitions as
/// closing its sockets (every step idempotent, so a reaper that dies is simply replaced), then
/// forgets the edge. An edge whose lease was claimed learns it on its next `touch_edge`.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Extends `edge`'s lease to now + `ttl`. Returns whether the edge's state is intact:
    /// true while it has a lease entry, even an expired one no reaper has claimed yet (core
    /// may just have been down); false on its first heartbeat and once a reaper claimed it,
    /// in which case core has forgotten (or is forgetting) what the edge holds.
    async fn touch_edge(&self, edge: &str, ttl: Duration) -> Result<bool, CoreError>;

    /// Claims one edge whose lease has expired, for `claim` long. Each expired edge goes to
    /// exactly one caller, even with several core replicas asking; a claim not ended by
    /// [`LeaseStore::forget_edge`] within `claim` (its reaper died) can be claimed again.
    async fn claim_expired_edge(&self, claim: Duration) -> Result<Option<String>, CoreError>;

    /// Everything `edge` may hold (a superset is fine: reaping is idempotent).
    async fn edge_holdings(&self, edge: &str) -> Result<Vec<Holding>, CoreError>;

    /// Removes `edge`'s count and presence connections in one channel, in one atomic step.
    async fn reap_channel(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
    ) -> Result<ReapResult, CoreError>;

    /// Removes `edge`'s signed-in connections of a user; true when that was the user's last.
    async fn reap_user(&self, app_id: &str, user_id: &str, edge: &str) -> Result<bool, CoreError>;

    /// Drops a dead `edge`'s share of the app's connection count.
    async fn reap_connections(&self, app_id: &str, edge: &str) -> Result<(), CoreError>;

    /// Ends the claim on a reaped `edge` and drops whatever index the store keeps for it. A
    /// live lease of the same name is left alone.
    async fn forget_edge(&self, edge: &str) -> Result<(), CoreError>;
}
