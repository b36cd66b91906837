use std::time::Duration;

use async_trait::async_trait;

use crate::CoreError;

/// The last event of each cache channel.
///
/// Contract: a put replaces the channel's frame and its expiry; a get after the expiry finds
/// nothing. Frames are stored and returned byte for byte.
#[async_trait]
pub trait CacheStore: Send + Sync {
    async fn cache_put(
        &self,
        app_id: &str,
        channel: &str,
        frame: String,
        ttl: Duration,
    ) -> Result<(), CoreError>;

    /// The stored frame and its remaining time to live.
    async fn cache_get(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<(String, Duration)>, CoreError>;
}
