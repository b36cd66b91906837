//! What the HTTP API needs from core, and core's answer to it.

use async_trait::async_trait;
use switchyard_protocol::presence::Member;

use crate::core::{Core, CACHE_TTL};
use crate::{CachedEvent, ChannelCounts, CoreError, Quota};

/// What the API calls: channel queries, cache writes and quotas. It never changes membership
/// or counts, so it raises no webhook.
#[async_trait]
pub trait ApiCore: Send + Sync {
    async fn members(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, CoreError>;

    async fn channel(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, CoreError>;

    /// Occupied channels whose name starts with `prefix`.
    async fn channels(
        &self,
        app_id: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ChannelCounts)>, CoreError>;

    /// A cache channel's last event, read without a `cache_miss` webhook (that is for
    /// subscribers finding it empty, not for queries).
    async fn cache_peek(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<CachedEvent>, CoreError>;

    async fn cache_put(&self, app_id: &str, channel: &str, frame: String) -> Result<(), CoreError>;

    /// Takes `amount` from the app's cluster-wide allowance of `per_second` in `quota` for
    /// the current second; false (taking nothing) means over the limit (HTTP 429).
    async fn take_quota(
        &self,
        app_id: &str,
        quota: Quota,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, CoreError>;

    /// `Ok` when core answers: the API's readiness. The store is not asked, since triggers
    /// are delivered without it.
    async fn ready(&self) -> Result<(), CoreError>;
}

#[async_trait]
impl ApiCore for Core {
    async fn members(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, CoreError> {
        self.store.members(app_id, channel).await
    }

    async fn channel(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, CoreError> {
        self.store.counts(app_id, channel).await
    }

    async fn channels(
        &self,
        app_id: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ChannelCounts)>, CoreError> {
        self.store.occupied(app_id, prefix).await
    }

    async fn cache_put(&self, app_id: &str, channel: &str, frame: String) -> Result<(), CoreError> {
        self.store
            .cache_put(app_id, channel, frame, CACHE_TTL)
            .await
    }

    async fn take_quota(
        &self,
        app_id: &str,
        quota: Quota,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, CoreError> {
        self.store
            .take_quota(app_id, quota.as_str(), amount, per_second)
            .await
    }

    async fn cache_peek(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<CachedEvent>, CoreError> {
        Ok(self
            .store
            .cache_get(app_id, channel)
            .await?
            .map(CachedEvent::from_stored))
    }

    async fn ready(&self) -> Result<(), CoreError> {
        Ok(())
    }
}
