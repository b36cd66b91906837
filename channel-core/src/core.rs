use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use switchyard_apps::{App, AppStore};
use switchyard_bus::{channel_subject, watch_subject, Bus, Envelope};
use switchyard_protocol::presence::{self, Member};
use switchyard_protocol::{frame, Channel, ChannelKind};
use switchyard_webhook::{WebhookEvent, WebhookJob, WebhookSink};

use crate::hold::HoldKey;
use crate::store::{ChannelStore, CountTransition};
use crate::{CachedEvent, ChannelCore, ChannelCounts, CoreError, CountReport, Quota};

/// Channels with more subscribers than this get `subscription_count` at most every
/// [`BUSY_COUNT_INTERVAL`], as Pusher does, so a busy channel is not flooded by its own churn.
const BUSY_CHANNEL: u64 = 100;
const BUSY_COUNT_INTERVAL: Duration = Duration::from_secs(5);

/// How long `channel_vacated` and `member_removed` wait for the channel or member to return.
pub const WEBHOOK_HOLD: Duration = Duration::from_secs(3);

/// How long an edge's lease lasts after its last heartbeat (edges beat every 2 s), so a dead
/// edge's members are gone for everyone within about 10 s.
pub const LEASE_TTL: Duration = Duration::from_secs(6);

/// How long a cache channel keeps its last event.
pub const CACHE_TTL: Duration = Duration::from_secs(30 * 60);

/// The channel-core service: decides transitions in the store, then tells the world.
pub struct Core {
    pub(crate) store: Arc<dyn ChannelStore>,
    bus: Arc<dyn Bus>,
    apps: Arc<dyn AppStore>,
    pub(crate) webhooks: Arc<dyn WebhookSink>,
    last_count_event: Mutex<HashMap<(String, String), Instant>>,
    pub(crate) hold: Duration,
    pub(crate) lease_ttl: Duration,
}

impl Core {
    pub fn new(
        store: Arc<dyn ChannelStore>,
        bus: Arc<dyn Bus>,
        apps: Arc<dyn AppStore>,
        webhooks: Arc<dyn WebhookSink>,
    ) -> Core {
        Core {
            store,
            bus,
            apps,
            webhooks,
            last_count_event: Mutex::new(HashMap::new()),
            hold: WEBHOOK_HOLD,
            lease_ttl: LEASE_TTL,
        }
    }

    /// Changes how long an edge lives without heartbeats before it is reaped.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Core {
        self.lease_ttl = ttl;
        self
    }

    /// Changes how long leaving webhooks are held (tests use a short one).
    pub fn with_webhook_hold(mut self, hold: Duration) -> Core {
        self.hold = hold;
        self
    }

    async fn app(&self, app_id: &str) -> Option<Arc<App>> {
        self.apps.by_id(app_id).await.ok().flatten()
    }

    async fn publish(&self, app_id: &str, channel: &str, frame: String, except: Option<&str>) {
        let env = Envelope::frame(frame, except.map(str::to_owned));
        if let Err(e) = self
            .bus
            .publish(&channel_subject(app_id, channel), env)
            .await
        {
            tracing::warn!(app_id, channel, error = %e, "bus publish failed");
        }
    }

    pub(crate) async fn webhook(&self, app: &App, event: WebhookEvent) {
        if app.webhooks.is_empty() {
            return;
        }
        let job = WebhookJob {
            app_id: app.id.clone(),
            event,
            time_ms: now_ms(),
            only_url: None,
        };
        if let Err(e) = switchyard_webhook::push_with_retry(self.webhooks.as_ref(), job).await {
            tracing::error!(app_id = %app.id, error = %e, "webhook enqueue failed; event dropped");
        }
    }

    pub(crate) async fn publish_watch(&self, app_id: &str, user_id: &str, name: &str) {
        let frame = frame::watchlist_event(name, &[user_id]);
        let subject = watch_subject(app_id, user_id);
        if let Err(e) = self
            .bus
            .publish(&subject, Envelope::frame(frame, None))
            .await
        {
            tracing::warn!(app_id, error = %e, "watchlist publish failed");
        }
    }

    /// Whether a `subscription_count` event is due for this channel now.
    fn count_event_due(&self, app_id: &str, channel: &str, count: u64) -> bool {
        let mut last = self
            .last_count_event
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (app_id.to_owned(), channel.to_owned());
        let now = Instant::now();
        if count == 0 {
            last.remove(&key);
            return false;
        }
        let due = count <= BUSY_CHANNEL
            || last
                .get(&key)
                .is_none_or(|t| now.duration_since(*t) >= BUSY_COUNT_INTERVAL);
        if due {
            last.insert(key, now);
        }
        due
    }

    async fn apply_report(&self, edge: &str, report: CountReport) -> Result<(), CoreError> {
        let t = self
            .store
            .set_edge_count(&report.app_id, &report.channel, edge, report.count)
            .await?;
        self.on_count_change(&report.app_id, report.channel, t)
            .await;
        Ok(())
    }

    /// Emits what a change of a channel's cluster-wide count means: occupied / vacated
    /// webhooks and the subscription_count event.
    pub(crate) async fn on_count_change(&self, app_id: &str, channel: String, t: CountTransition) {
        if t.before == t.after {
            return;
        }
        let Some(app) = self.app(app_id).await else {
            return;
        };
        let key = HoldKey {
            app_id: app.id.clone(),
            channel: channel.clone(),
            user_id: None,
        };
        if t.occupied() {
            let event = WebhookEvent::ChannelOccupied {
                channel: channel.clone(),
            };
            self.arrival(&app, key, event).await;
        } else if t.vacated() {
            let event = WebhookEvent::ChannelVacated {
                channel: channel.clone(),
            };
            self.departure(app.clone(), key, event).await;
        }
        let is_presence =
            Channel::parse(&channel, usize::MAX).is_ok_and(|c| c.kind() == ChannelKind::Presence);
        if app.enable_subscription_count
            && !is_presence
            && self.count_event_due(&app.id, &channel, t.after)
        {
            let frame = frame::subscription_count(&channel, t.after);
            self.publish(&app.id, &channel, frame, None).await;
            self.webhook(
                &app,
                WebhookEvent::SubscriptionCount {
                    channel,
                    subscription_count: t.after,
                },
            )
            .await;
        }
    }

    /// A user's last connection left a presence channel: tell the channel and the webhooks.
    pub(crate) async fn member_left(&self, app_id: &str, channel: &str, user_id: String) {
        let data = presence::member_removed_data(&user_id);
        let frame = frame::channel_event("pusher_internal:member_removed", channel, &data, None);
        self.publish(app_id, channel, frame, None).await;
        if let Some(app) = self.app(app_id).await {
            let key = HoldKey {
                app_id: app.id.clone(),
                channel: channel.to_owned(),
                user_id: Some(user_id.clone()),
            };
            let event = WebhookEvent::MemberRemoved {
                channel: channel.to_owned(),
                user_id,
            };
            self.departure(app, key, event).await;
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[async_trait]
impl ChannelCore for Core {
    async fn report_counts(&self, edge: &str, reports: Vec<CountReport>) -> Result<(), CoreError> {
        for report in reports {
            self.apply_report(edge, report).await?;
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
    ) -> Result<Vec<Member>, CoreError> {
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
                member.clone(),
                app.max_presence_members,
            )
            .await?;
        if result.first {
            let data = presence::member_added_data(&member);
            let frame = frame::channel_event("pusher_internal:member_added", channel, &data, None);
            self.publish(app_id, channel, frame, Some(socket_id)).await;
            let key = HoldKey {
                app_id: app.id.clone(),
                channel: channel.to_owned(),
                user_id: Some(member.user_id.clone()),
            };
            let event = WebhookEvent::MemberAdded {
                channel: channel.to_owned(),
                user_id: member.user_id,
            };
            self.arrival(&app, key, event).await;
        }
        Ok(result.members)
    }

    async fn leave_presence(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<(), CoreError> {
        let Some(left) = self.store.leave(app_id, channel, edge, socket_id).await? else {
            return Ok(());
        };
        if left.last {
            self.member_left(app_id, channel, left.user_id).await;
        }
        Ok(())
    }

    async fn members(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, CoreError> {
        Ok(self.store.members(app_id, channel).await?)
    }

    async fn channel(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, CoreError> {
        Ok(self.store.counts(app_id, channel).await?)
    }

    async fn channels(
        &self,
        app_id: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ChannelCounts)>, CoreError> {
        Ok(self.store.occupied(app_id, prefix).await?)
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
                self.webhook(&app, event).await;
            }
        }
        Ok(cached.map(|(frame, ttl)| CachedEvent {
            frame,
            ttl_secs: ttl.as_secs(),
        }))
    }

    async fn cache_put(&self, app_id: &str, channel: &str, frame: String) -> Result<(), CoreError> {
        Ok(self
            .store
            .cache_put(app_id, channel, frame, CACHE_TTL)
            .await?)
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
            self.publish_watch(app_id, user_id, "online").await;
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
            self.publish_watch(app_id, user_id, "offline").await;
        }
        Ok(())
    }

    async fn online(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, CoreError> {
        Ok(self.store.users_online(app_id, user_ids).await?)
    }

    async fn heartbeat(&self, edge: &str) -> Result<bool, CoreError> {
        Ok(self.store.touch_edge(edge, self.lease_ttl).await?)
    }

    async fn admit_connection(
        &self,
        app_id: &str,
        edge: &str,
        max: u64,
    ) -> Result<bool, CoreError> {
        Ok(self.store.admit_connection(app_id, edge, max).await?)
    }

    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        Ok(self.store.release_connection(app_id, edge).await?)
    }

    async fn take_quota(
        &self,
        app_id: &str,
        quota: Quota,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, CoreError> {
        Ok(self
            .store
            .take_quota(app_id, quota.as_str(), amount, per_second)
            .await?)
    }
}
