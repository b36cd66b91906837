//! The worker: takes jobs, sends each to every matching webhook of its app, retries with
//! exponential backoff and jitter for the retry window.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use switchyard_apps::{AppStore, Webhook};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::deliver::{self, Outcome};
use crate::{WebhookEvent, WebhookJob};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How long a failing webhook is retried before it is given up.
    pub retry_window: Duration,
    pub request_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 64,
            retry_window: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Whether `hook` wants `event`.
pub fn matches(hook: &Webhook, event: &WebhookEvent) -> bool {
    let wanted = hook.event_types.is_empty() || hook.event_types.iter().any(|t| t == event.name());
    let channel = event.channel();
    let prefix = hook
        .filter
        .channel_prefix
        .as_deref()
        .is_none_or(|p| channel.starts_with(p));
    let suffix = hook
        .filter
        .channel_suffix
        .as_deref()
        .is_none_or(|s| channel.ends_with(s));
    wanted && prefix && suffix
}

/// Drains `jobs` until `shutdown`; each delivery runs on its own task.
pub async fn run(
    mut jobs: mpsc::UnboundedReceiver<WebhookJob>,
    apps: Arc<dyn AppStore>,
    config: WorkerConfig,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut next_id: u64 = rand::random::<u32>() as u64;
    loop {
        let job = tokio::select! {
            () = shutdown.cancelled() => break,
            job = jobs.recv() => match job { Some(job) => job, None => break },
        };
        let app = match apps.by_id(&job.app_id).await {
            Ok(Some(app)) => app,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(app_id = %job.app_id, error = %e, "webhook dropped: app store unavailable");
                continue;
            }
        };
        for hook in app.webhooks.iter().filter(|h| matches(h, &job.event)) {
            next_id += 1;
            let key = format!("{}-{}-{next_id}", job.app_id, job.time_ms);
            let (app, hook, event, config) =
                (app.clone(), hook.clone(), job.event.clone(), config.clone());
            let permits = permits.clone();
            tokio::spawn(async move {
                deliver_with_retries(&app, &hook, &event, &key, &config, &permits).await;
            });
        }
    }
}

async fn deliver_with_retries(
    app: &switchyard_apps::App,
    hook: &Webhook,
    event: &WebhookEvent,
    key: &str,
    config: &WorkerConfig,
    permits: &Semaphore,
) {
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(500);
    loop {
        // Stamped per attempt: receivers (the Python SDK) reject bodies older than 300 s.
        let body =
            Bytes::from(serde_json::json!({ "time_ms": now_ms(), "events": [event] }).to_string());
        let outcome = {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            deliver::post(app, hook, &body, key, config.request_timeout).await
        };
        match outcome {
            Outcome::Delivered => return,
            Outcome::Rejected(status) => {
                tracing::warn!(app_id = %app.id, url = %hook.url, %status, event = event.name(), "webhook rejected; not retried");
                return;
            }
            Outcome::Retry(reason) => {
                if started.elapsed() + backoff > config.retry_window {
                    tracing::error!(app_id = %app.id, url = %hook.url, %reason, event = event.name(), "webhook given up after the retry window");
                    return;
                }
                tracing::debug!(app_id = %app.id, url = %hook.url, %reason, "webhook will be retried");
                let jitter = Duration::from_millis(
                    rand::random::<u64>() % (backoff.as_millis() as u64 / 2 + 1),
                );
                tokio::time::sleep(backoff + jitter).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_apps::WebhookFilter;

    #[test]
    fn filters_by_type_and_channel() {
        let mut hook = Webhook {
            url: "http://x".into(),
            event_types: vec!["channel_occupied".into()],
            filter: WebhookFilter {
                channel_prefix: Some("private-".into()),
                channel_suffix: None,
            },
            headers: Default::default(),
        };
        let occupied = |c: &str| WebhookEvent::ChannelOccupied { channel: c.into() };
        assert!(matches(&hook, &occupied("private-a")));
        assert!(!matches(&hook, &occupied("public")));
        assert!(!matches(
            &hook,
            &WebhookEvent::ChannelVacated {
                channel: "private-a".into()
            }
        ));
        hook.event_types.clear();
        hook.filter = WebhookFilter::default();
        assert!(matches(
            &hook,
            &WebhookEvent::ChannelVacated {
                channel: "any".into()
            }
        ));
    }
}
