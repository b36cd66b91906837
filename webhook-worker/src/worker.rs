//! The worker: pulls jobs, sends each to every matching webhook of its app (batched per app
//! when the app asks), and acks a job once every one of those deliveries has finished, or has
//! been given up and dead-lettered.

use std::sync::Arc;
use std::time::Duration;

use switchyard_apps::{App, AppStore, Webhook};
use switchyard_telemetry::{loggable_url, metrics};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::batch;
use crate::dead_letter::{DeadLetters, Failure};
use crate::depth;
use crate::receivers::Receivers;
use crate::retry::{self, Backoff, Finished};
use crate::{Leased, WebhookEvent, WebhookJob, WebhookQueue};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// HTTP requests in flight at once, across every receiver.
    pub concurrency: usize,
    /// HTTP requests in flight at once to one webhook URL, so a slow receiver cannot take
    /// every request permit.
    pub per_receiver_concurrency: usize,
    /// Jobs pulled and not yet acked. Bounds memory when the queue holds a large backlog;
    /// jobs waiting out a retry backoff count too.
    pub max_jobs_in_flight: usize,
    /// Jobs asked for per pull.
    pub pull_batch: usize,
    /// How long one pull waits for a job before asking again.
    pub pull_wait: Duration,
    /// How long a failing webhook is retried before it is given up (dead-lettered).
    pub retry_window: Duration,
    pub request_timeout: Duration,
    /// The first pause between attempts; it doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 64,
            per_receiver_concurrency: 8,
            max_jobs_in_flight: 4096,
            pull_batch: 64,
            pull_wait: Duration::from_secs(2),
            retry_window: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// What every job task shares.
pub(crate) struct Context {
    pub(crate) apps: Arc<dyn AppStore>,
    pub(crate) config: WorkerConfig,
    /// The worker-wide request permits (`concurrency`).
    pub(crate) permits: Semaphore,
    pub(crate) receivers: Receivers,
    pub(crate) dead_letters: Arc<dyn DeadLetters>,
}

/// Whether `hook` should receive `job`: its filters match and the job is not a replay aimed
/// at another webhook.
pub fn wants(hook: &Webhook, job: &WebhookJob) -> bool {
    matches(hook, &job.event) && job.only_url.as_ref().is_none_or(|url| *url == hook.url)
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
    let pattern = hook
        .filter
        .channel_pattern
        .as_deref()
        .is_none_or(|p| glob_matches(p, channel));
    wanted && prefix && suffix && pattern
}

/// Whether `text` matches the glob `pattern` as a whole, where `*` matches any run of
/// characters (possibly empty) and every other character matches only itself. Greedy with
/// backtracking to the last `*`: linear in practice, never exponential.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen, and where in `text` its run currently ends.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` swallow one more character and retry after it.
            star = Some((sp, st + 1));
            pi = sp + 1;
            ti = st + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Pulls and delivers until `shutdown`, keeping the jobs it gives up in `dead_letters`. Each
/// app's share of a pull runs on its own task, so the pull loop never waits on a delivery,
/// only on a free job slot. At shutdown, jobs still in flight are abandoned un-acked; the
/// queue hands them out again (at least once).
pub async fn run_with_dead_letters(
    queue: Arc<dyn WebhookQueue>,
    apps: Arc<dyn AppStore>,
    dead_letters: Arc<dyn DeadLetters>,
    config: WorkerConfig,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.max_jobs_in_flight.max(1)));
    let ctx = Arc::new(Context {
        apps,
        permits: Semaphore::new(config.concurrency.max(1)),
        receivers: Receivers::new(config.per_receiver_concurrency),
        dead_letters,
        config,
    });
    tokio::spawn(depth::sample(queue.clone(), shutdown.clone()));
    let mut failing = PullBackoff::default();
    loop {
        let Some(mut held) = take_slots(&slots, ctx.config.pull_batch, &shutdown).await else {
            break;
        };
        let pulled = tokio::select! {
            () = shutdown.cancelled() => break,
            pulled = queue.pull(held.len(), ctx.config.pull_wait) => pulled,
        };
        match pulled {
            Ok(jobs) => {
                failing.reset();
                for group in batch::by_app(jobs) {
                    let group_slots = held.split_off(held.len().saturating_sub(group.len()));
                    let (queue, ctx, stop) = (queue.clone(), ctx.clone(), shutdown.clone());
                    tokio::spawn(handle_group(queue, ctx, group, group_slots, stop));
                }
            }
            Err(e) => {
                let pause = failing.next();
                tracing::warn!(error = %e, ?pause, "webhook queue pull failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Waits for one free job slot, then takes as many more as are free, up to `batch`.
async fn take_slots(
    slots: &Arc<Semaphore>,
    batch: usize,
    shutdown: &CancellationToken,
) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = tokio::select! {
        () = shutdown.cancelled() => return None,
        permit = slots.clone().acquire_owned() => permit.ok()?,
    };
    let mut held = vec![first];
    while held.len() < batch.max(1) {
        match slots.clone().try_acquire_owned() {
            Ok(permit) => held.push(permit),
            Err(_) => break,
        }
    }
    Some(held)
}

/// One app's jobs from one pull: the app is looked up once for all of them, then they go
/// out as one batch (when the app asks for batching) or each on its own task, as if pulled
/// alone. `slots` are the jobs' places in `max_jobs_in_flight`, freed as each job is done.
async fn handle_group(
    queue: Arc<dyn WebhookQueue>,
    ctx: Arc<Context>,
    group: Vec<Leased>,
    slots: Vec<OwnedSemaphorePermit>,
    shutdown: CancellationToken,
) {
    let Some(app_id) = group.first().map(|l| l.job.app_id.clone()) else {
        return;
    };
    let lookup = tokio::select! {
        // Abandoned, not acked: another pull hands them out again.
        () = shutdown.cancelled() => return,
        lookup = find_app(&ctx, &app_id) => lookup,
    };
    let app = match lookup {
        Lookup::Found(app) => app,
        Lookup::Unknown => {
            tracing::warn!(%app_id, jobs = group.len(), "webhook jobs for an unknown app dropped");
            return ack_all(&*queue, &group).await;
        }
        Lookup::Unavailable(error) => {
            tracing::error!(%app_id, %error, jobs = group.len(), "webhooks dead-lettered: app store unavailable for the retry window");
            give_up(&ctx, &group, None, &error).await;
            return ack_all(&*queue, &group).await;
        }
    };
    if app.webhook_batching && group.len() > 1 {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = batch::deliver(&ctx, &app, &group) => {}
        }
        return ack_all(&*queue, &group).await;
    }
    let mut slots = slots.into_iter();
    for leased in group {
        let (queue, ctx, app, stop) = (queue.clone(), ctx.clone(), app.clone(), shutdown.clone());
        tokio::spawn(handle(queue, ctx, app, leased, slots.next(), stop));
    }
}

/// One job, start to ack. `_slot` is the job's place in `max_jobs_in_flight`, freed on return.
async fn handle(
    queue: Arc<dyn WebhookQueue>,
    ctx: Arc<Context>,
    app: Arc<App>,
    leased: Leased,
    _slot: Option<OwnedSemaphorePermit>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        // Abandoned, not acked: another pull hands it out again.
        () = shutdown.cancelled() => return,
        () = process(&ctx, &app, &leased) => {}
    }
    ack_all(&*queue, std::slice::from_ref(&leased)).await;
}

/// Delivers to every matching webhook in parallel and returns once all have finished.
async fn process(ctx: &Arc<Context>, app: &App, leased: &Leased) {
    let mut deliveries = JoinSet::new();
    for (n, hook) in app.webhooks.iter().enumerate() {
        if !wants(hook, &leased.job) {
            continue;
        }
        let key = batch::idempotency_key(&leased.job.app_id, std::slice::from_ref(leased), n);
        let (ctx, hook, leased) = (ctx.clone(), hook.clone(), leased.clone());
        deliveries.spawn(async move {
            let job = &leased.job;
            let finished = retry::deliver(&ctx, &job.app_id, &hook, &[job], &key).await;
            if let Finished::GaveUp(error) = finished {
                give_up(&ctx, std::slice::from_ref(&leased), Some(&hook.url), &error).await;
            }
        });
    }
    while deliveries.join_next().await.is_some() {}
}

/// Dead-letters the jobs of `given_up`. They are acked regardless: an unacked Redis job stays
/// leased to this worker until it exits, so a store outage here would only delay the loss,
/// and the log line keeps what the store could not.
pub(crate) async fn give_up(ctx: &Context, given_up: &[Leased], url: Option<&str>, error: &str) {
    for Leased { job, .. } in given_up {
        metrics::app(&job.app_id).webhook_dead_letters.inc();
        let failure = Failure::now(job.clone(), url, error);
        if let Err(e) = ctx.dead_letters.record(failure).await {
            tracing::error!(app_id = %job.app_id, url = %loggable_url(url.unwrap_or("")), event = job.event.name(), channel = job.event.channel(), time_ms = job.time_ms, error = %e, "could not keep a dead letter; the webhook is lost");
        }
    }
}

async fn ack_all(queue: &dyn WebhookQueue, jobs: &[Leased]) {
    for leased in jobs {
        if let Err(e) = queue.ack(&leased.id).await {
            tracing::warn!(id = %leased.id, error = %e, "webhook job done but not acked; it may be delivered again");
        }
    }
}

enum Lookup {
    Found(Arc<App>),
    Unknown,
    /// The store stayed down for the whole retry window; its last error.
    Unavailable(String),
}

/// The jobs' app, retrying an unavailable store within the retry window.
async fn find_app(ctx: &Context, app_id: &str) -> Lookup {
    let mut backoff = Backoff::new(&ctx.config);
    loop {
        match ctx.apps.by_id(app_id).await {
            Ok(Some(app)) => return Lookup::Found(app),
            Ok(None) => return Lookup::Unknown,
            Err(e) => {
                let Some(delay) = backoff.next_delay() else {
                    return Lookup::Unavailable(format!("app store unavailable: {e}"));
                };
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Pause after failed pulls: 100 ms doubling up to 5 s, so a queue outage is neither hammered
/// nor waited out for long once it recovers.
#[derive(Default)]
struct PullBackoff {
    failures: u32,
}

impl PullBackoff {
    fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let ms = 100u64.saturating_mul(1 << self.failures.min(7).saturating_sub(1));
        Duration::from_millis(ms.min(5_000))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_apps::WebhookFilter;

    #[test]
    fn a_replayed_job_goes_only_to_the_webhook_that_failed() {
        let hook = |url: &str| Webhook {
            url: url.into(),
            event_types: Vec::new(),
            filter: WebhookFilter::default(),
            headers: Default::default(),
        };
        let mut job = WebhookJob {
            app_id: "a".into(),
            event: WebhookEvent::CacheMiss {
                channel: "cache-x".into(),
            },
            time_ms: 1,
            only_url: None,
            id: None,
        };
        assert!(wants(&hook("http://a"), &job) && wants(&hook("http://b"), &job));
        job.only_url = Some("http://b".into());
        assert!(!wants(&hook("http://a"), &job));
        assert!(wants(&hook("http://b"), &job));
    }

    #[test]
    fn filters_by_type_and_channel() {
        let mut hook = Webhook {
            url: "http://x".into(),
            event_types: vec!["channel_occupied".into()],
            filter: WebhookFilter {
                channel_prefix: Some("private-".into()),
                channel_suffix: None,
                channel_pattern: None,
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

    #[test]
    fn glob_star_matches_any_run_of_characters() {
        for (pattern, text) in [
            ("*", ""),
            ("*", "anything"),
            ("room-*", "room-"),
            ("room-*", "room-42"),
            ("*-eu", "orders-eu"),
            ("presence-*-eu-*", "presence-team-eu-7"),
            ("a*b*c", "abc"),
            ("a*b*c", "aXbYbZc"),
            ("**x", "x"),
            ("exact", "exact"),
            ("é*ü", "éaü"),
        ] {
            assert!(
                glob_matches(pattern, text),
                "{pattern:?} should match {text:?}"
            );
        }
        for (pattern, text) in [
            ("", "x"),
            ("room-*", "room"),
            ("room-*", "private-room-1"),
            ("*-eu", "orders-eu-1"),
            ("a*b*c", "acb"),
            ("exact", "exactly"),
            ("exact", "exac"),
            ("a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ] {
            assert!(
                !glob_matches(pattern, text),
                "{pattern:?} should not match {text:?}"
            );
        }
    }

    #[test]
    fn filters_by_channel_pattern_alongside_prefix_and_suffix() {
        let mut hook = Webhook {
            url: "http://x".into(),
            event_types: Vec::new(),
            filter: WebhookFilter {
                channel_prefix: None,
                channel_suffix: None,
                channel_pattern: Some("presence-*-eu-*".into()),
            },
            headers: Default::default(),
        };
        let occupied = |c: &str| WebhookEvent::ChannelOccupied { channel: c.into() };
        assert!(matches(&hook, &occupied("presence-team-eu-1")));
        assert!(!matches(&hook, &occupied("presence-team-us-1")));
        assert!(!matches(&hook, &occupied("private-team-eu-1")));
        // Every filter set must hold.
        hook.filter.channel_suffix = Some("-1".into());
        assert!(matches(&hook, &occupied("presence-team-eu-1")));
        assert!(!matches(&hook, &occupied("presence-team-eu-2")));
    }

    #[test]
    fn a_channel_pattern_is_read_from_config() {
        let filter: WebhookFilter =
            serde_json::from_str(r#"{"channel_pattern":"room-*"}"#).expect("filter");
        assert_eq!(filter.channel_pattern.as_deref(), Some("room-*"));
        assert!(filter.channel_prefix.is_none() && filter.channel_suffix.is_none());
    }

    #[test]
    fn pull_backoff_grows_and_resets() {
        let mut b = PullBackoff::default();
        let pauses: Vec<u64> = (0..8).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(100));
    }
}
