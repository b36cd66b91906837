use std::time::Duration;

use async_trait::async_trait;

use super::DueHold;
use crate::CoreError;

/// Leaving webhooks (`channel_vacated`, `member_removed`) held for a while in case the channel
/// or member comes back. Held in the store, not in one core's memory, so a return handled by
/// another replica cancels it and a core that dies does not lose it.
///
/// Contract: a hold is sent at most once per claim and never after it was cancelled; one
/// that was claimed but not forgotten (its claimer died) comes due again after the claim.
#[async_trait]
pub trait HoldStore: Send + Sync {
    /// Holds a leaving webhook (`job`, serialized) under `key` for `hold`, replacing any
    /// older hold of the same key.
    async fn hold(
        &self,
        app_id: &str,
        key: &str,
        job: String,
        hold: Duration,
    ) -> Result<(), CoreError>;

    /// The channel or member came back: true if a hold was pending (it is dropped).
    async fn cancel_hold(&self, app_id: &str, key: &str) -> Result<bool, CoreError>;

    /// Up to `limit` holds whose time has come, claimed for `claim` (other replicas skip
    /// them meanwhile). Send each, then [`HoldStore::forget_hold`] it.
    async fn claim_due_holds(
        &self,
        claim: Duration,
        limit: usize,
    ) -> Result<Vec<DueHold>, CoreError>;

    /// Drops a sent hold, unless a newer hold of the same key replaced it meanwhile.
    async fn forget_hold(&self, due: &DueHold) -> Result<(), CoreError>;
}
