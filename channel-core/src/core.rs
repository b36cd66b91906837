use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchyard_apps::{App, AppStore};
use switchyard_bus::{channel_subject, watch_subject, Bus, Envelope};
use switchyard_protocol::{frame, Channel, ChannelKind};
use switchyard_webhook::{WebhookEvent, WebhookJob, WebhookSink};
use tokio::sync::Notify;

use crate::hold::HoldKey;
use crate::store::{ChannelStore, CountTransition};
use crate::CoreError;

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
    /// Wakes the relay: a change just wrote effects to the outbox.
    pub(crate) relay: Notify,
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
            relay: Notify::new(),
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

    /// The app an effect belongs to; `None` when it no longer exists. An app store that
    /// cannot answer is an error, so the effect is carried out later rather than dropped.
    pub(crate) async fn effect_app(&self, app_id: &str) -> Result<Option<Arc<App>>, CoreError> {
        self.apps
            .by_id(app_id)
            .await
            .map_err(|e| CoreError::Unavailable(format!("app store: {e}")))
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
    ) -> Result<(), CoreError> {
        let env = Envelope::frame(frame, except.map(str::to_owned)).member_seq(seq);
        self.send(&channel_subject(app_id, channel), env).await
    }

    /// Publishes on the bus; a failure leaves the effect it belongs to for a retry.
    async fn send(&self, subject: &str, env: Envelope) -> Result<(), CoreError> {
        self.bus
            .publish(subject, env)
            .await
            .map_err(|e| CoreError::Unavailable(e.to_string()))
    }

    /// Sends a webhook event to the queue, retrying briefly. If the queue stays down, the job
    /// is parked with the held webhooks, due at once, so the relay keeps retrying it without
    /// holding up broadcasts; an error (both down) leaves the effect it belongs to for the
    /// relay to carry out again.
    pub(crate) async fn webhook(
        &self,
        app: &App,
        event: WebhookEvent,
        id: Option<String>,
    ) -> Result<(), CoreError> {
        if app.webhooks.is_empty() {
            return Ok(());
        }
        let job = WebhookJob {
            app_id: app.id.clone(),
            event,
            time_ms: now_ms(),
            only_url: None,
            id,
        };
        let Err(e) = switchyard_webhook::push_with_retry(self.webhooks.as_ref(), job.clone()).await
        else {
            return Ok(());
        };
        tracing::warn!(app_id = %app.id, error = %e, "webhook queue unavailable; parking the job");
        let json =
            serde_json::to_string(&job).map_err(|e| CoreError::Unavailable(e.to_string()))?;
        let key = format!("r{:016x}", rand::random::<u64>());
        self.store.hold(&app.id, &key, json, Duration::ZERO).await
    }

    pub(crate) async fn publish_watch(
        &self,
        app_id: &str,
        user_id: &str,
        name: &str,
    ) -> Result<(), CoreError> {
        let frame = frame::watchlist_event(name, &[user_id]);
        let subject = watch_subject(app_id, user_id);
        self.send(&subject, Envelope::frame(frame, None)).await
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

    /// Emits what a change of a channel's cluster-wide count means: occupied / vacated
    /// webhooks and the subscription_count event. Webhooks go first: if one fails, the effect
    /// is carried out again later, and a late `subscription_count` could undo a newer one, so
    /// the broadcast is sent once the webhooks are in and is never retried.
    pub(crate) async fn on_count_change(
        &self,
        app_id: &str,
        channel: String,
        t: CountTransition,
        id: impl Fn(&str) -> Option<String>,
    ) -> Result<(), CoreError> {
        if t.before == t.after {
            return Ok(());
        }
        let Some(app) = self.effect_app(app_id).await? else {
            return Ok(());
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
            self.arrival(&app, key, event, id("channel_occupied"))
                .await?;
        } else if t.vacated() {
            let event = WebhookEvent::ChannelVacated {
                channel: channel.clone(),
            };
            self.departure(&app, key, event, id("channel_vacated"))
                .await?;
        }
        let is_presence =
            Channel::parse(&channel, usize::MAX).is_ok_and(|c| c.kind() == ChannelKind::Presence);
        if app.enable_subscription_count
            && !is_presence
            && self.count_event_due(&app.id, &channel, t.after)
        {
            let event = WebhookEvent::SubscriptionCount {
                channel: channel.clone(),
                subscription_count: t.after,
            };
            self.webhook(&app, event, id("subscription_count")).await?;
            let frame = frame::subscription_count(&channel, t.after);
            let env = Envelope::frame(frame, None);
            if let Err(e) = self.send(&channel_subject(&app.id, &channel), env).await {
                tracing::warn!(app_id, channel, error = %e, "subscription_count publish failed");
            }
        }
        Ok(())
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
