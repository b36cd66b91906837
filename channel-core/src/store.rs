use std::time::Duration;

use async_trait::async_trait;
use switchyard_protocol::presence::Member;

use crate::ChannelCounts;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("presence channel is full ({0} members)")]
    PresenceFull(usize),
    #[error("store unavailable: {0}")]
    Unavailable(String),
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResult {
    pub user_id: String,
    /// This was the user's last connection on the channel.
    pub last: bool,
}

/// Channel state, cut at the operations that must be atomic. Each method is one indivisible
/// step (one Lua script in Redis), so concurrent callers on several core replicas agree on
/// every first/last transition.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Sets `edge`'s subscriber count and returns the cluster-wide total before and after.
    async fn set_edge_count(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        count: u64,
    ) -> Result<CountTransition, StoreError>;

    /// Adds (edge, socket) as a connection of `member.user_id`. A new user beyond
    /// `max_members` is refused with `PresenceFull`; a user's further connections never are.
    async fn join(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
        member: Member,
        max_members: usize,
    ) -> Result<JoinResult, StoreError>;

    /// Removes (edge, socket); `None` when it was not a member.
    async fn leave(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<Option<LeaveResult>, StoreError>;

    async fn members(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, StoreError>;

    async fn counts(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, StoreError>;

    /// Channels with at least one subscriber whose name starts with `prefix`.
    async fn occupied(
        &self,
        app_id: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ChannelCounts)>, StoreError>;

    async fn cache_put(
        &self,
        app_id: &str,
        channel: &str,
        frame: String,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// The stored frame and its remaining time to live.
    async fn cache_get(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<(String, Duration)>, StoreError>;

    /// Records a signed-in connection of `user_id`; true when it is the user's first.
    async fn user_connect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, StoreError>;

    /// Forgets a signed-in connection; true when it was the user's last.
    async fn user_disconnect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, StoreError>;

    /// Which of `user_ids` have at least one signed-in connection.
    async fn users_online(
        &self,
        app_id: &str,
        user_ids: &[String],
    ) -> Result<Vec<String>, StoreError>;

    /// Extends `edge`'s lease to now + `ttl`. Returns whether the edge's state is intact:
    /// true while it has a lease entry, even an expired one no reaper has claimed yet (core
    /// may just have been down); false on its first heartbeat and once a reaper claimed it,
    /// in which case core has forgotten (or is forgetting) what the edge holds.
    async fn touch_edge(&self, edge: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Claims one edge whose lease has expired, for `claim` long. Each expired edge goes to
    /// exactly one caller, even with several core replicas asking; a claim not ended by
    /// [`ChannelStore::forget_edge`] within `claim` (its reaper died) can be claimed again.
    async fn claim_expired_edge(&self, claim: Duration) -> Result<Option<String>, StoreError>;

    /// Everything `edge` may hold (a superset is fine: reaping is idempotent).
    async fn edge_holdings(&self, edge: &str) -> Result<Vec<Holding>, StoreError>;

    /// Removes `edge`'s count and presence connections in one channel, in one atomic step.
    async fn reap_channel(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
    ) -> Result<ReapResult, StoreError>;

    /// Removes `edge`'s signed-in connections of a user; true when that was the user's last.
    async fn reap_user(&self, app_id: &str, user_id: &str, edge: &str) -> Result<bool, StoreError>;

    /// Counts one more connection of `edge` in the app, unless the app already has `max`
    /// across all edges (0: no limit). One atomic step, so edges racing for the last slot
    /// cannot both win.
    async fn admit_connection(
        &self,
        app_id: &str,
        edge: &str,
        max: u64,
    ) -> Result<bool, StoreError>;

    /// Counts one connection of `edge` in the app fewer.
    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), StoreError>;

    /// Drops a dead `edge`'s share of the app's connection count.
    async fn reap_connections(&self, app_id: &str, edge: &str) -> Result<(), StoreError>;

    /// Takes `amount` from the app's `bucket` allowance of `per_second` for the current
    /// second (by the store's clock, shared by every caller); false, taking nothing, when that
    /// would exceed it.
    async fn take_quota(
        &self,
        app_id: &str,
        bucket: &str,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, StoreError>;

    /// Holds a leaving webhook (`job`, serialized) under `key` for `hold`, replacing any
    /// older hold of the same key. Held in the store, not in one core's memory, so a return
    /// handled by another replica cancels it and a core that dies does not lose it.
    async fn hold(
        &self,
        app_id: &str,
        key: &str,
        job: String,
        hold: Duration,
    ) -> Result<(), StoreError>;

    /// The channel or member came back: true if a hold was pending (it is dropped).
    async fn cancel_hold(&self, app_id: &str, key: &str) -> Result<bool, StoreError>;

    /// Up to `limit` holds whose time has come, claimed for `claim` (other replicas skip
    /// them meanwhile; if the claimer dies they come due again). Send each, then
    /// [`ChannelStore::forget_hold`] it.
    async fn claim_due_holds(
        &self,
        claim: Duration,
        limit: usize,
    ) -> Result<Vec<DueHold>, StoreError>;

    /// Drops a sent hold, unless a newer hold of the same key replaced it meanwhile.
    async fn forget_hold(&self, due: &DueHold) -> Result<(), StoreError>;

    /// Ends the claim on a reaped `edge` and drops whatever index the store keeps for it. A
    /// live lease of the same name is left alone.
    async fn forget_edge(&self, edge: &str) -> Result<(), StoreError>;
}
