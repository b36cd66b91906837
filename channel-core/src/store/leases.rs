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
    /// may just have been down); false on its first heartbeat, after the store lost its
    /// state, and once a reaper claimed it, in which case core has forgotten (or is
    /// forgetting) what the edge holds. A claimed or reaped edge gets no new lease.
    async fn touch_edge(&self, edge: &str, ttl: Duration) -> Result<bool, CoreError>;

    /// Claims one edge whose lease has expired, for `claim` long. Each expired edge goes to
    /// exactly one caller, even with several core replicas asking; a claim not ended by
    /// [`LeaseStore::forget_edge`] within `claim` (its reaper died) can be claimed again.
    async fn claim_expired_edge(&self, claim: Duration) -> Result<Option<String>, CoreError>;

    /// Refuses every later write of a claimed `edge` that would add to what it holds (with
    /// [`CoreError::Fenced`]), in every app, for [`FENCED_FOR`](super::FENCED_FOR). A reaper calls this after
    /// the claim and before [`LeaseStore::edge_holdings`], so nothing the edge writes while
    /// it is reaped is left without an owner. Removals stay allowed.
    async fn fence_edge(&self, edge: &str) -> Result<(), CoreError>;

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

    /// Ends the claim on a reaped `edge` and drops whatever index the store keeps for it. The
    /// edge is dead from then on: for [`FENCED_FOR`](super::FENCED_FOR), `touch_edge` gives it no lease and its
    /// adding writes are refused. A live lease of the same name is left alone.
    async fn forget_edge(&self, edge: &str) -> Result<(), CoreError>;
}
