use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchyard_apps::{App, AppStore};
use switchyard_bus::{channel_subject, watch_subject, Bus, Envelope};
use switchyard_protocol::presence;
use switchyard_protocol::{frame, Channel, ChannelKind};
use switchyard_webhook::{WebhookEvent, WebhookJob, WebhookSink};

use crate::hold::HoldKey;
use crate::store::{ChannelStore, CountTransition};
use crate::{CoreError, CountReport};

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

    /// Whether the store answers a real read: core's own readiness.
    pub async fn store_ready(&self) -> bool {
        self.store.counts("", "ready-probe").await.is_ok()
    }

    pub(crate) async fn app(&self, app_id: &str) -> Option<Arc<App>> {
        self.apps.by_id(app_id).await.ok().flatten()
    }

    pub(crate) async fn publish(
        &self,
        app_id: &str,
        channel: &str,
        frame: String,
        except: Option<&str>,
    ) {
        let env = Envelope::frame(frame, except.map(str::to_owned));
        self.publish_envelope(app_id, channel, env).await;
    }

    /// A `member_added` / `member_removed` frame, stamped with the membership sequence
    /// number the change took.
    pub(crate) async fn publish_member_event(
        &self,
        app_id: &str,
        channel: &str,
        frame: String,
        except: Option<&str>,
        seq: u64,
    ) {
        let env = Envelope::frame(frame, except.map(str::to_owned)).member_seq(seq);
        self.publish_envelope(app_id, channel, env).await;
    }

    async fn publish_envelope(&self, app_id: &str, channel: &str, env: Envelope) {
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

    pub(crate) async fn apply_report(
        &self,
        edge: &str,
        report: CountReport,
    ) -> Result<(), CoreError> {
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

    /// A user's last connection left a presence channel (the change took membership number
    /// `seq`): tell the channel and the webhooks.
    pub(crate) async fn member_left(&self, app_id: &str, channel: &str, user_id: String, seq: u64) {
        let data = presence::member_removed_data(&user_id);
        let frame = frame::channel_event("pusher_internal:member_removed", channel, &data, None);
        self.publish_member_event(app_id, channel, frame, None, seq)
            .await;
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
