//! Channel state, cut by concern into small traits, each a set of operations that must be
//! atomic. Each method is one indivisible step (one Lua script in Redis), so concurrent
//! callers on several core replicas agree on every first/last transition. [`ChannelStore`] is
//! all of them together, which is what `Core` holds; every backend implements each trait, and
//! each trait has its own conformance cases (`channel-core/tests/store_conformance.rs`).

mod cache;
mod counts;
mod holds;
mod leases;
mod limits;
mod outbox;
mod presence;
mod users;

use switchyard_protocol::presence::Member;

pub use cache::CacheStore;
pub use counts::CountStore;
pub use holds::HoldStore;
pub use leases::LeaseStore;
pub use limits::LimitStore;
pub use outbox::{Effect, OutboxStore, PendingEffect};
pub use presence::PresenceStore;
pub use users::UserStore;

/// How long a reaped edge stays fenced: far longer than any of its requests can be in flight,
/// short enough that the record of dead edges stays small.
pub const FENCED_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

/// Every concern of channel state, as one backend provides it.
pub trait ChannelStore:
    CountStore
    + CacheStore
    + PresenceStore
    + UserStore
    + LeaseStore
    + LimitStore
    + HoldStore
    + OutboxStore
{
}

impl<T> ChannelStore for T where
    T: CountStore
        + CacheStore
        + PresenceStore
        + UserStore
        + LeaseStore
        + LimitStore
        + HoldStore
        + OutboxStore
{
}

/// A channel's cluster-wide subscriber count before and after one edge's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountTransition {
    pub before: u64,
    pub after: u64,
}

impl CountTransition {
    pub fn occupied(&self) -> bool {
        self.before == 0 && self.after > 0
    }

    pub fn vacated(&self) -> bool {
        self.before > 0 && self.after == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// This was the user's first connection on the channel.
    pub first: bool,
    pub members: Vec<Member>,
    /// The channel's membership sequence number after the join (see [`Presence::seq`]).
    pub seq: u64,
}

/// A presence channel's members and the sequence number of the change that made them so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    pub members: Vec<Member>,
    /// Every member added or removed counts one up, in the same atomic step as the change,
    /// so `member_added` / `member_removed` events can be ordered and an edge that missed
    /// one can tell. It outlives the channel's last member by an hour, so a channel that
    /// fills again keeps counting up.
    pub seq: u64,
}

/// A held webhook whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueHold {
    pub app_id: String,
    pub key: String,
    /// The serialized webhook job, exactly as held.
    pub job: String,
}

/// Something an edge holds in the store, which the reaper removes when the edge dies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holding {
    /// A subscriber count or presence connections in a channel.
    Channel { app_id: String, channel: String },
    /// Signed-in connections of a user.
    User { app_id: String, user_id: String },
    /// The edge's share of the app's connection count.
    Connections { app_id: String },
}

/// What reaping one dead edge's share of a channel changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReapResult {
    pub transition: CountTransition,
    /// Users whose last connection on the channel was on the dead edge.
    pub users_left: Vec<String>,
    /// The membership sequence number after the reap; the removals of `users_left` took the
    /// numbers just up to it, in order.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResult {
    pub user_id: String,
    /// This was the user's last connection on the channel.
    pub last: bool,
    /// The membership sequence number after the leave (changed only when `last`).
    pub seq: u64,
}
