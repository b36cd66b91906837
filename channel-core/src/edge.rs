//! What edges need from core, and core's answer to it.

use async_trait::async_trait;
use switchyard_protocol::presence::Member;
use switchyard_webhook::WebhookEvent;

use crate::core::Core;
use crate::store::Presence;
use crate::{CachedEvent, CoreError, CountReport};

/// What an edge calls: its counts and lease, presence, sign-ins, admission, cache reads.
///
/// Contract: join/leave and count reports decide first/last transitions atomically across the
/// cluster, so `member_added`, `member_removed`, `channel_occupied` and `channel_vacated` are
/// each emitted exactly once per transition, by core.
#[async_trait]
pub trait EdgeCore: Send + Sync {
    /// An edge's current subscriber counts for the listed channels (absolute, not deltas).
    async fn report_counts(&self, edge: &str, reports: Vec<CountReport>) -> Result<(), CoreError>;

    /// Adds a presence connection; returns the member list (the new member included) and its
    /// membership sequence number. Publishes `member_added` (excluding `socket_id`) when this
    /// is the user's first connection on the channel. Joining again with the same socket
    /// changes nothing, so a join whose answer was lost may be retried.
    async fn join_presence(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
        member: Member,
    ) -> Result<Presence, CoreError>;

    /// A presence channel's members and membership sequence number, for an edge that missed
    /// some `member_added` / `member_removed` events and must bring its clients' lists right.
    async fn presence(&self, app_id: &str, channel: &str) -> Result<Presence, CoreError>;

    /// Removes a presence connection; publishes `member_removed` after the user's last.
    async fn leave_presence(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError>;

    /// A subscriber's read of a cache channel: its last event, or `None` and a `cache_miss`
    /// webhook.
    async fn cache_get(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<CachedEvent>, CoreError>;

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
}

#[async_trait]
impl EdgeCore for Core {
    async fn report_counts(&self, edge: &str, reports: Vec<CountReport>) -> Result<(), CoreError> {
        for report in reports {
            let t = self
                .store
                .set_edge_count(&report.app_id, &report.channel, edge, report.count)
                .await?;
            if t.before != t.after {
                self.relay.notify_one();
            }
        }
        Ok(())
    }

    async fn join_presence(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
        member: Member,
    ) -> Result<Presence, CoreError> {
        let app = self
            .app(app_id)
            .await
            .ok_or_else(|| CoreError::Unavailable(format!("unknown app {app_id}")))?;
        let result = self
            .store
            .join(
                app_id,
                channel,
                edge,
                socket_id,
                member,
                app.max_presence_members,
            )
            .await?;
        if result.first {
            // Carried out here before answering, as far as this relay can: clients count on
            // `member_added` reaching the others before the new member can say anything (or
            // anyone else joins). The effect is in the outbox already, so a cancelled request
            // loses nothing; what this pass cannot claim, the relay sends a moment later.
            if let Err(e) = self.release_effects().await {
                tracing::warn!(app_id, channel, error = %e, "member_added not sent yet; the relay retries");
                self.relay.notify_one();
            }
        }
        Ok(Presence {
            members: result.members,
            seq: result.seq,
        })
    }

    async fn presence(&self, app_id: &str, channel: &str) -> Result<Presence, CoreError> {
        self.store.presence(app_id, channel).await
    }

    async fn leave_presence(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError> {
        let left = self.store.leave(app_id, channel, edge, socket_id).await?;
        if left.is_some_and(|l| l.last) {
            self.relay.notify_one();
        }
        Ok(())
    }

    async fn cache_get(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<CachedEvent>, CoreError> {
        let cached = self.store.cache_get(app_id, channel).await?;
        if cached.is_none() {
            if let Some(app) = self.app(app_id).await {
                let event = WebhookEvent::CacheMiss {
                    channel: channel.to_owned(),
                };
                // A read changes nothing, so there is no outbox entry: the webhook is sent or
                // parked here, and a failure of both is only logged.
                if let Err(e) = self.webhook(&app, event, None).await {
                    tracing::warn!(app_id, channel, error = %e, "cache_miss webhook lost");
                }
            }
        }
        Ok(cached.map(CachedEvent::from_stored))
    }

    async fn user_signed_in(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError> {
        if self
            .store
            .user_connect(app_id, user_id, edge, socket_id)
            .await?
        {
            self.relay.notify_one();
        }
        Ok(())
    }

    async fn user_signed_out(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError> {
        if self
            .store
            .user_disconnect(app_id, user_id, edge, socket_id)
            .await?
        {
            self.relay.notify_one();
        }
        Ok(())
    }

    async fn online(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, CoreError> {
        self.store.users_online(app_id, user_ids).await
    }

    async fn heartbeat(&self, edge: &str) -> Result<bool, CoreError> {
        self.store.touch_edge(edge, self.lease_ttl).await
    }

    async fn admit_connection(
        &self,
        app_id: &str,
        edge: &str,
        max: u64,
    ) -> Result<bool, CoreError> {
        self.store.admit_connection(app_id, edge, max).await
    }

    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        self.store.release_connection(app_id, edge).await
    }
}
