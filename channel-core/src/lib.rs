//! channel-core: the state every edge and the API share.
//!
//! [`ChannelCore`] is what edges and the API call. [`Core`] implements it over a
//! [`ChannelStore`] (memory here, Redis in the distributed mode); a gRPC client implements the
//! same trait in the distributed mode, so callers never know where core runs.

mod core;
mod hold;
mod memory;
mod reaper;
mod redis_store;
mod service;
mod store;

use async_trait::async_trait;
use switchyard_protocol::presence::Member;

pub use crate::core::{Core, CACHE_TTL, LEASE_TTL, WEBHOOK_HOLD};
pub use memory::MemoryStore;
pub use redis_store::RedisStore;
pub use service::{run, CoreConfig, CoreDeps, HOLD_CHECK_EVERY};
pub use store::{
    CacheStore, ChannelStore, CountStore, CountTransition, DueHold, HoldStore, Holding, JoinResult,
    LeaseStore, LeaveResult, LimitStore, PresenceStore, ReapResult, UserStore,
};

/// Counts for one channel, as the HTTP API reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    /// Connections subscribed, summed over every edge.
    pub subscription_count: u64,
    /// Distinct presence users (0 for other channels).
    pub user_count: u64,
}

/// A cache channel's last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedEvent {
    /// The complete frame, replayed as-is to new subscribers.
    pub frame: String,
    pub ttl_secs: u64,
}

/// One edge's subscriber count for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountReport {
    pub app_id: String,
    pub channel: String,
    pub count: u64,
}

/// Why channel state could not be read or changed: the one error of the store traits, of
/// `Core` and of its gRPC client alike, so no layer translates it.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("presence channel is full ({0} members)")]
    PresenceFull(usize),
    #[error("channel state unavailable: {0}")]
    Unavailable(String),
}

/// What edges and the API need from core.
///
/// Contract: join/leave and count reports decide first/last transitions atomically across the
/// cluster, so `member_added`, `member_removed`, `channel_occupied` and `channel_vacated` are
/// each emitted exactly once per transition, by core.
#[async_trait]
pub trait ChannelCore: Send + Sync {
    /// An edge's current subscriber counts for the listed channels (absolute, not deltas).
    async fn report_counts(&self, edge: &str, reports: Vec<CountReport>) -> Result<(), CoreError>;

    /// Adds a presence connection; returns the member list (the new member included).
    /// Publishes `member_added` (excluding `socket_id`) when this is the user's first
    /// connection on the channel.
    async fn join_presence(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
        member: Member,
    ) -> Result<Vec<Member>, CoreError>;

    /// Removes a presence connection; publishes `member_removed` after the user's last.
    async fn leave_presence(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError>;

    async fn members(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, CoreError>;

    async fn channel(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, CoreError>;

    /// Occupied channels whose name starts with `prefix`.
    async fn channels(
        &self,
        app_id: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ChannelCounts)>, CoreError>;

    async fn cache_get(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<CachedEvent>, CoreError>;

    async fn cache_put(&self, app_id: &str, channel: &str, frame: String) -> Result<(), CoreError>;

    /// A connection signed in as `user_id`; after the user's first, watchers of the user get
    /// an `online` watchlist event.
    async fn user_signed_in(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError>;

    /// A signed-in connection ended; after the user's last, watchers get `offline`.
    async fn user_signed_out(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError>;

    /// Which of `user_ids` are online (signed in on any edge).
    async fn online(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, CoreError>;

    /// Extends `edge`'s lease. An edge that stops calling this is reaped once the lease
    /// expires: its presence members, counts and signed-in users are removed with the same
    /// events as if its sockets had closed. Returns whether the lease was live before; false
    /// after the first beat means core has forgotten what the edge held.
    async fn heartbeat(&self, edge: &str) -> Result<bool, CoreError>;

    /// Counts a new connection of `edge` in the app unless the app already has `max` across
    /// the cluster (0: no limit); false means refuse it (4004). Each admitted connection is
    /// released once; a dead edge's share is reaped with its lease.
    async fn admit_connection(&self, app_id: &str, edge: &str, max: u64)
        -> Result<bool, CoreError>;

    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), CoreError>;

    /// Takes `amount` from the app's cluster-wide allowance of `per_second` in `quota` for
    /// the current second; false (taking nothing) means over the limit (HTTP 429).
    async fn take_quota(
        &self,
        app_id: &str,
        quota: Quota,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, CoreError>;
}

/// Per-second allowances the API enforces per app across all its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Events accepted by `POST /events` and `/batch_events` (each event of a batch counts).
    BackendEvents,
    /// Channel, presence-user and channel-list queries.
    ReadRequests,
}

impl Quota {
    pub fn as_str(self) -> &'static str {
        match self {
            Quota::BackendEvents => "backend_events",
            Quota::ReadRequests => "read_requests",
        }
    }

    pub fn parse(name: &str) -> Option<Quota> {
        [Quota::BackendEvents, Quota::ReadRequests]
            .into_iter()
            .find(|q| q.as_str() == name)
    }
}
