use async_trait::async_trait;
use switchyard_protocol::presence::Member;

use super::{JoinResult, LeaveResult, Presence};
use crate::CoreError;

/// Presence members: each user's connections (edge, socket) in a channel.
///
/// Contract: a user is a member while at least one of its connections is; `join` reports the
/// user's first connection and `leave` its last, each in the same atomic step as the change,
/// so `member_added` and `member_removed` are decided exactly once across the cluster. Members
/// are listed in join order with the user info of their first connection. Each member added
/// or removed takes the channel's next membership sequence number in the same step.
#[async_trait]
pub trait PresenceStore: Send + Sync {
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
    ) -> Result<JoinResult, CoreError>;

    /// Removes (edge, socket); `None` when it was not a member.
    async fn leave(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<Option<LeaveResult>, CoreError>;

    /// The members, in join order, with the sequence number they are current as of.
    async fn presence(&self, app_id: &str, channel: &str) -> Result<Presence, CoreError>;

    async fn members(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, CoreError> {
        Ok(self.presence(app_id, channel).await?.members)
    }
}
