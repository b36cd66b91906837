use async_trait::async_trait;

use super::CountTransition;
use crate::{ChannelCounts, CoreError};

/// Subscriber counts per channel, reported per edge and summed over the cluster, and the app's
/// index of occupied channels.
///
/// Contract: a channel's total is the sum of the last count each edge set; `set_edge_count`
/// returns the total before and after in the same atomic step, so of several edges racing,
/// exactly one sees 0 → n (occupied) and exactly one sees n → 0 (vacated). A channel with no
/// subscribers and no presence members is absent from `occupied` and leaves nothing behind.
#[async_trait]
pub trait CountStore: Send + Sync {
    /// Sets `edge`'s subscriber count and returns the cluster-wide total before and after.
    async fn set_edge_count(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        count: u64,
    ) -> Result<CountTransition, CoreError>;

    /// The channel's subscriber total and, for presence channels, its distinct users.
    async fn counts(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, CoreError>;

    /// Channels with at least one subscriber whose name starts with `prefix`.
    async fn occupied(
        &self,
        app_id: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ChannelCounts)>, CoreError>;
}
