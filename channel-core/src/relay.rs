//! The relay: carries out the effects each change wrote to the outbox (see
//! [`OutboxStore`](crate::OutboxStore)), and sends held webhooks once due. Every replica runs
//! one; a change wakes its own replica's relay at once, and the others pick up what a dead
//! replica left once its claims lapse.

use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::frame;
use switchyard_protocol::presence::{self, Member};
use switchyard_webhook::WebhookEvent;
use tokio_util::sync::CancellationToken;

use crate::core::Core;
use crate::hold::HoldKey;
use crate::store::{CountTransition, Effect, PendingEffect};
use crate::CoreError;

/// How long a relay may take over an effect before another may: a replica that dies holding
/// some delays them by this much.
const CLAIM: Duration = Duration::from_secs(5);
/// Effects claimed per round trip.
const BATCH: usize = 100;

impl Core {
    /// Carries out the effects that are due, in order; returns how many were claimed. On a
    /// failure it stops: the failed effect and the rest of the batch come due again, in
    /// order, when their claims lapse. So does a batch that takes half its claim, so that no
    /// other relay takes an effect this one may still be carrying out.
    pub async fn release_effects(&self) -> Result<usize, CoreError> {
        let started = std::time::Instant::now();
        let claimed = self.store.claim_effects(CLAIM, BATCH).await?;
        let n = claimed.len();
        for pending in claimed {
            if started.elapsed() > CLAIM / 2 {
                tracing::warn!("a batch of effects is taking long; the rest waits for its claim");
                return Ok(0);
            }
            if let Err(e) = self.carry_out(&pending).await {
                tracing::warn!(app_id = %pending.app_id, id = %pending.id, error = %e, "effect failed; will retry");
                return Err(e);
            }
            self.store.forget_effect(&pending).await?;
        }
        Ok(n)
    }

    async fn carry_out(&self, pending: &PendingEffect) -> Result<(), CoreError> {
        let app_id = pending.app_id.as_str();
        // The same on every redelivery of the effect: a receiver drops repeats by it.
        let id = |name: &str| Some(format!("{app_id}:{}:{name}", pending.id));
        match &pending.effect {
            Effect::MemberAdded {
                channel,
                user_id,
                user_info,
                except,
                seq,
            } => {
                let member = Member {
                    user_id: user_id.clone(),
                    user_info: user_info.clone(),
                };
                let data = presence::member_added_data(&member);
                let frame =
                    frame::channel_event("pusher_internal:member_added", channel, &data, None);
                self.publish_member_event(app_id, channel, frame, except.as_deref(), *seq)
                    .await?;
                let Some(app) = self.effect_app(app_id).await? else {
                    return Ok(());
                };
                let key = HoldKey::member(app_id, channel, user_id);
                let event = WebhookEvent::MemberAdded {
                    channel: channel.clone(),
                    user_id: user_id.clone(),
                };
                self.arrival(&app, key, event, id("member_added")).await
            }
            Effect::MemberRemoved {
                channel,
                user_id,
                seq,
            } => {
                let data = presence::member_removed_data(user_id);
                let frame =
                    frame::channel_event("pusher_internal:member_removed", channel, &data, None);
                self.publish_member_event(app_id, channel, frame, None, *seq)
                    .await?;
                let Some(app) = self.effect_app(app_id).await? else {
                    return Ok(());
                };
                let key = HoldKey::member(app_id, channel, user_id);
                let event = WebhookEvent::MemberRemoved {
                    channel: channel.clone(),
                    user_id: user_id.clone(),
                };
                self.departure(&app, key, event, id("member_removed")).await
            }
            Effect::Count {
                channel,
                before,
                after,
            } => {
                let t = CountTransition {
                    before: *before,
                    after: *after,
                };
                self.on_count_change(app_id, channel.clone(), t, id).await
            }
            Effect::Online { user_id } => self.publish_watch(app_id, user_id, "online").await,
            Effect::Offline { user_id } => self.publish_watch(app_id, user_id, "offline").await,
        }
    }

    /// Carries out effects and sends due holds: at once when a change wakes it, and every
    /// `every` for what other replicas left, until `shutdown`.
    pub async fn run_relay(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                () = self.relay.notified() => {}
            }
            loop {
                match self.release_effects().await {
                    Ok(n) if n == BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "carrying out effects failed; will retry");
                        break;
                    }
                }
            }
            if let Err(e) = self.release_due_holds().await {
                tracing::warn!(error = %e, "sending held webhooks failed; will retry");
            }
        }
    }
}
