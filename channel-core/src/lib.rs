//! channel-core: the state every edge and the API share.
//!
//! [`EdgeCore`] is what edges call and [`ApiCore`] what the API calls. [`Core`] implements
//! both over a [`ChannelStore`] (memory here, Redis in the distributed mode); a gRPC client
//! implements the same traits in the distributed mode, so callers never know where core runs.

mod api;
mod core;
mod edge;
mod hold;
mod memory;
mod reaper;
mod redis_store;
mod relay;
mod service;
mod store;

pub use crate::core::{Core, CACHE_TTL, LEASE_TTL, WEBHOOK_HOLD};
pub use api::ApiCore;
pub use edge::EdgeCore;
pub use memory::MemoryStore;
pub use redis_store::RedisStore;
pub use service::{run, CoreConfig, CoreDeps, HOLD_CHECK_EVERY};
pub use store::{
    CacheStore, ChannelStore, CountStore, CountTransition, DueHold, Effect, HoldStore, Holding,
    JoinResult, LeaseStore, LeaveResult, LimitStore, OutboxStore, PendingEffect, Presence,
    PresenceStore, ReapResult, UserStore,
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

impl CachedEvent {
    /// From what [`CacheStore::cache_get`] returns.
    fn from_stored((frame, ttl): (String, std::time::Duration)) -> CachedEvent {
        CachedEvent {
            frame,
            ttl_secs: ttl.as_secs(),
        }
    }
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
    /// The edge was reaped (its lease lapsed): it must take a new id before writing again.
    #[error("edge {0} was reaped; it must start afresh under a new id")]
    Fenced(String),
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
