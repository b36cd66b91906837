use async_trait::async_trait;

use crate::CoreError;

/// Cluster-wide limits: each app's connection count and per-second quotas.
///
/// Contract: every decision is one atomic step against a count shared by all callers, so
/// edges or API instances racing for the last slot cannot both win; a refused request takes
/// nothing.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Counts one more connection of `edge` in the app, unless the app already has `max`
    /// across all edges (0: no limit).
    async fn admit_connection(&self, app_id: &str, edge: &str, max: u64)
        -> Result<bool, CoreError>;

    /// Counts one connection of `edge` in the app fewer (never below zero).
    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), CoreError>;

    /// Takes `amount` from the app's `bucket` allowance of `per_second` for the current
    /// second (by the store's clock, shared by every caller); false, taking nothing, when that
    /// would exceed it.
    async fn take_quota(
        &self,
        app_id: &str,
        bucket: &str,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, CoreError>;
}
