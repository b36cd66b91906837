//! Per-app batching: jobs of a `webhook_batching` app pulled together go out in fewer POSTs,
//! each event exactly once; other apps keep one event per POST.

mod fixtures;
mod receiver;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_apps::App;
use webhook_worker::{
    DeadLetters, MemoryDeadLetters, MemoryQueue, WebhookEvent, WebhookJob, WebhookQueue,
    WorkerConfig,
};

use fixtures::{app, fast_retries, hook, job, wait_for_letters, Stream, Worker, SECRET, SOON};
use receiver::Receiver;

const JOBS: u64 = 12;

fn batching(mut app: App) -> App {
    app.webhook_batching = true;
    app
}

/// Receives POSTs until `events` events have arrived; returns the events and the POST count.
async fn receive_events(receiver: &mut Receiver, key: &str, events: usize) -> (Vec<Value>, usize) {
    let (mut seen, mut posts) = (Vec::new(), 0);
    while seen.len() < events {
        seen.extend(receiver.next(SOON).await.verified_events(key, SECRET));
        posts += 1;
    }
    receiver.assert_quiet(Duration::from_millis(300)).await;
    (seen, posts)
}

/// Each event of `jobs` exactly once, whatever the order.
fn assert_each_once(seen: &[Value], jobs: &[WebhookJob]) {
    let mut counts: HashMap<String, i32> = HashMap::new();
    for event in seen {
        *counts.entry(event.to_string()).or_default() += 1;
    }
    for j in jobs {
        let n = counts.remove(&json!(j.event).to_string());
        assert_eq!(n, Some(1), "{:?}", j.event);
    }
    assert!(counts.is_empty(), "unexpected events {counts:?}");
}

/// Queues every job before the worker starts, so one pull takes them together.
async fn start_with_backlog(
    queue: Arc<dyn WebhookQueue>,
    apps: Vec<App>,
    jobs: &[WebhookJob],
) -> Worker {
    for j in jobs {
        queue.push(j.clone()).await.expect("push");
    }
    let letters = Arc::new(MemoryDeadLetters::default());
    Worker::start(queue, letters, apps, fast_retries())
}

async fn a_batching_app_gets_fewer_posts(queue: Arc<dyn WebhookQueue>) {
    let mut receiver = Receiver::start(&[], 200).await;
    let jobs: Vec<_> = (0..JOBS).map(|n| job("app-1", n)).collect();
    let apps = vec![batching(app("app-1", vec![hook(&receiver.url)]))];
    let worker = start_with_backlog(queue, apps, &jobs).await;
    let (seen, posts) = receive_events(&mut receiver, "key-app-1", jobs.len()).await;
    assert!(
        posts < jobs.len(),
        "{posts} POSTs for {} events",
        jobs.len()
    );
    assert_each_once(&seen, &jobs);
    worker.stop().await;
}

async fn without_batching_each_event_has_its_own_post(queue: Arc<dyn WebhookQueue>) {
    let mut receiver = Receiver::start(&[], 200).await;
    let jobs: Vec<_> = (0..JOBS).map(|n| job("app-1", n)).collect();
    let apps = vec![app("app-1", vec![hook(&receiver.url)])];
    let worker = start_with_backlog(queue, apps, &jobs).await;
    let (seen, posts) = receive_events(&mut receiver, "key-app-1", jobs.len()).await;
    assert_eq!(posts, jobs.len());
    assert_each_once(&seen, &jobs);
    worker.stop().await;
}

/// Each webhook gets a batch of the events it matches; another app pulled alongside is not
/// batched with it.
async fn batches_follow_each_webhooks_filter(queue: Arc<dyn WebhookQueue>) {
    let mut all = Receiver::start(&[], 200).await;
    let mut members = Receiver::start(&[], 200).await;
    let mut other = Receiver::start(&[], 200).await;
    let mut only_members = hook(&members.url);
    only_members.event_types = vec!["member_added".into()];
    let added = |n: u64| WebhookJob {
        app_id: "app-1".into(),
        event: WebhookEvent::MemberAdded {
            channel: "presence-room".into(),
            user_id: format!("u{n}"),
        },
        time_ms: n,
        only_url: None,
        id: None,
    };
    let mut jobs: Vec<_> = (0..4).map(|n| job("app-1", n)).collect();
    jobs.extend((0..3).map(added));
    let others: Vec<_> = (0..3).map(|n| job("app-2", n)).collect();
    let apps = vec![
        batching(app("app-1", vec![hook(&all.url), only_members])),
        app("app-2", vec![hook(&other.url)]),
    ];
    let backlog: Vec<_> = jobs.iter().chain(&others).cloned().collect();
    let worker = start_with_backlog(queue, apps, &backlog).await;

    let (seen, posts) = receive_events(&mut all, "key-app-1", jobs.len()).await;
    assert!(posts < jobs.len());
    assert_each_once(&seen, &jobs);
    let (seen, _) = receive_events(&mut members, "key-app-1", 3).await;
    assert_each_once(&seen, &jobs[4..]);
    let (seen, posts) = receive_events(&mut other, "key-app-2", others.len()).await;
    assert_eq!(posts, others.len(), "app-2 does not batch");
    assert_each_once(&seen, &others);
    worker.stop().await;
}

/// A batch given up is dead-lettered job by job, so each can be replayed on its own.
async fn a_failed_batch_is_dead_lettered_per_job(queue: Arc<dyn WebhookQueue>) {
    let mut receiver = Receiver::start(&[], 400).await;
    let jobs: Vec<_> = (0..4).map(|n| job("app-1", n)).collect();
    for j in &jobs {
        queue.push(j.clone()).await.expect("push");
    }
    let letters: Arc<dyn DeadLetters> = Arc::new(MemoryDeadLetters::default());
    let apps = vec![batching(app("app-1", vec![hook(&receiver.url)]))];
    let config = WorkerConfig {
        retry_window: Duration::from_millis(300),
        ..fast_retries()
    };
    let worker = Worker::start(queue, letters.clone(), apps, config);
    let listed = wait_for_letters(&*letters, jobs.len()).await;
    let mut kept: Vec<_> = listed.into_iter().map(|l| l.failure.job).collect();
    kept.reverse();
    assert_eq!(kept, jobs);
    assert!(receiver.drain() < jobs.len(), "sent as a batch");
    worker.stop().await;
}

macro_rules! batching_suite {
    ($($name:ident),*) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(Arc::new(MemoryQueue::new())).await;
                }
            )*
        }

        mod redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let stream = Stream::new(stringify!($name)).await;
                    super::$name(stream.queue("worker-1").await).await;
                    stream.delete().await;
                }
            )*
        }
    };
}

batching_suite!(
    a_batching_app_gets_fewer_posts,
    without_batching_each_event_has_its_own_post,
    batches_follow_each_webhooks_filter,
    a_failed_batch_is_dead_lettered_per_job
);
