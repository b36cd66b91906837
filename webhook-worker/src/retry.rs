//! Delivering one body (one job, or a batch of one app's jobs) to one webhook: attempts,
//! exponential backoff with jitter, and giving up once rejected or the retry window is spent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use switchyard_apps::{App, Webhook};
use switchyard_telemetry::metrics::{self, WebhookOutcome};
use switchyard_telemetry::{loggable_url, trace};
use tokio::time::Instant;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::deliver::{self, Outcome};
use crate::worker::Context;
use crate::{WebhookJob, WorkerConfig};

/// Pauses between attempts: doubling from `first_backoff` up to `max_backoff`, plus up to half
/// again of random jitter so receivers that fail together are not retried in lockstep.
pub(crate) struct Backoff {
    started: Instant,
    next: Duration,
    max: Duration,
    window: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &WorkerConfig) -> Backoff {
        Backoff {
            started: Instant::now(),
            next: config.first_backoff,
            max: config.max_backoff,
            window: config.retry_window,
        }
    }

    /// The pause before the next attempt, or `None` once it would end past the window.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        if self.started.elapsed() + self.next > self.window {
            return None;
        }
        let half = self.next.as_millis() as u64 / 2;
        let delay = self.next + Duration::from_millis(rand::random::<u64>() % (half + 1));
        self.next = (self.next * 2).min(self.max);
        Some(delay)
    }
}

/// How a delivery to one webhook ended.
#[derive(Debug)]
pub(crate) enum Finished {
    Delivered,
    /// The app was deleted meanwhile: nothing to deliver to, nothing to keep.
    AppGone,
    /// Rejected (4xx) or still failing after the window: the caller dead-letters it, with
    /// this last error.
    GaveUp(String),
}

/// Sends the jobs' events in one body to `hook` until it is delivered, rejected, or the window is
/// spent. Returns only when the jobs need nothing more from this webhook.
pub(crate) async fn deliver(
    ctx: &Context,
    app_id: &str,
    hook: &Webhook,
    events: &[&WebhookJob],
    idempotency_key: &str,
) -> Finished {
    let mut backoff = Backoff::new(&ctx.config);
    let (first, count) = (events.first().map_or("", |j| j.event.name()), events.len());
    loop {
        // Looked up per attempt so retries are signed with the app's current secret.
        let outcome = match ctx.apps.by_id(app_id).await {
            Ok(Some(app)) => attempt(ctx, &app, hook, events, idempotency_key).await,
            Ok(None) => {
                tracing::warn!(%app_id, url = %loggable_url(&hook.url), event = first, count, "app no longer exists; webhook dropped");
                return Finished::AppGone;
            }
            Err(e) => Outcome::Retry(e.to_string()),
        };
        let reason = match outcome {
            Outcome::Delivered => return Finished::Delivered,
            Outcome::Rejected(status) => {
                tracing::warn!(%app_id, url = %loggable_url(&hook.url), %status, event = first, count, "webhook rejected; dead-lettered, not retried");
                return Finished::GaveUp(format!("receiver rejected the webhook: {status}"));
            }
            Outcome::Retry(reason) => reason,
        };
        let Some(delay) = backoff.next_delay() else {
            tracing::error!(%app_id, url = %loggable_url(&hook.url), %reason, event = first, count, "webhook dead-lettered: still failing after the retry window");
            return Finished::GaveUp(reason);
        };
        tracing::debug!(%app_id, url = %loggable_url(&hook.url), %reason, ?delay, "webhook will be retried");
        tokio::time::sleep(delay).await;
    }
}

/// One POST, holding a slot of this receiver and then one of the worker's request permits.
async fn attempt(
    ctx: &Context,
    app: &App,
    hook: &Webhook,
    events: &[&WebhookJob],
    idempotency_key: &str,
) -> Outcome {
    // The receiver's slot first: while it waits here, a slow receiver's backlog holds none of
    // the permits other receivers need.
    let Some(_slot) = ctx.receivers.acquire(&hook.url).await else {
        return Outcome::Retry("receiver limit closed".into());
    };
    let Ok(_permit) = ctx.permits.acquire().await else {
        return Outcome::Retry("worker permits closed".into());
    };
    // Stamped per attempt, after any wait: receivers (the Python SDK) reject bodies older
    // than 300 s.
    let body = Bytes::from(
        serde_json::json!({ "time_ms": now_ms(), "events": body_events(events) }).to_string(),
    );
    let span = attempt_span(app, hook, events.len());
    let outcome = deliver::post(
        app,
        hook,
        &body,
        idempotency_key,
        ctx.config.request_timeout,
    )
    .instrument(span.clone())
    .await;
    let (counted, code) = match &outcome {
        Outcome::Delivered => (WebhookOutcome::Delivered, "ok"),
        Outcome::Rejected(_) => (WebhookOutcome::Rejected, "error"),
        Outcome::Retry(_) => (WebhookOutcome::Failed, "error"),
    };
    span.record("otel.status_code", code);
    metrics::app(&app.id).webhook_attempt(counted);
    outcome
}

/// The body's event objects: each event as Pusher shapes it, with its stable `"id"` when the
/// job has one (an extra field the SDKs' webhook helpers pass through).
fn body_events(jobs: &[&WebhookJob]) -> Vec<serde_json::Value> {
    jobs.iter()
        .map(|job| {
            let mut event = serde_json::to_value(&job.event).unwrap_or_default();
            if let (Some(id), Some(object)) = (&job.id, event.as_object_mut()) {
                object.insert("id".into(), id.as_str().into());
            }
            event
        })
        .collect()
}

/// One POST's span: the receiver's host only (a URL's path and query may hold a token), never
/// the body. A root of its own, sampled by ratio: the trigger that caused it is long gone.
fn attempt_span(app: &App, hook: &Webhook, events: usize) -> Span {
    if !trace::enabled() {
        return Span::none();
    }
    let host = hook
        .url
        .parse::<hyper::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
        .unwrap_or_default();
    tracing::info_span!(
        "webhook.deliver",
        otel.kind = "client",
        otel.status_code = Empty,
        app_id = %app.id,
        server.address = host,
        webhook.events = events,
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_with_jitter_and_stops_at_the_window() {
        let config = WorkerConfig {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            retry_window: Duration::from_secs(2),
            ..WorkerConfig::default()
        };
        let mut backoff = Backoff::new(&config);
        let mut total = Duration::ZERO;
        let mut bases = Vec::new();
        while let Some(delay) = backoff.next_delay() {
            bases.push(delay);
            total += delay;
            tokio::time::advance(delay).await;
        }
        assert!(bases[0] >= Duration::from_millis(100) && bases[0] <= Duration::from_millis(150));
        assert!(bases[1] >= Duration::from_millis(200) && bases[1] <= Duration::from_millis(300));
        assert!(bases[2..]
            .iter()
            .all(|d| *d >= Duration::from_millis(400) && *d <= Duration::from_millis(600)));
        // The last pause starts before the window ends; nothing starts after it.
        assert!(total <= Duration::from_secs(2) + Duration::from_millis(600));
    }

    #[test]
    fn body_events_carry_a_stable_id_only_when_the_job_has_one() {
        let job = |id: Option<&str>| WebhookJob {
            app_id: "a".into(),
            event: crate::WebhookEvent::ChannelOccupied {
                channel: "c".into(),
            },
            time_ms: 1,
            only_url: None,
            id: id.map(str::to_owned),
        };
        let (with, without) = (job(Some("a:7:channel_occupied")), job(None));
        assert_eq!(
            body_events(&[&with, &without]),
            [
                serde_json::json!({"name": "channel_occupied", "channel": "c", "id": "a:7:channel_occupied"}),
                serde_json::json!({"name": "channel_occupied", "channel": "c"}),
            ]
        );
    }
}
