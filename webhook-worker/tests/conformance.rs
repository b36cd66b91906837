//! One suite for the `WebhookQueue` contract, run against every backend: memory, Redis at
//! 127.0.0.1:6379 and SQS (an SQS-compatible server at 127.0.0.1:9324).

mod fixtures;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use webhook_worker::{MemoryQueue, WebhookQueue};

use fixtures::{job, Stream};

async fn push_then_pull_returns_the_same_job(queue: Arc<dyn WebhookQueue>) {
    let sent = job("app-1", 1);
    queue.push(sent.clone()).await.expect("push");
    let got = queue.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job, sent);
    queue.ack(&got[0].id).await.expect("ack");
}

async fn pull_waits_at_most_wait_when_empty(queue: Arc<dyn WebhookQueue>) {
    let started = Instant::now();
    let got = queue
        .pull(10, Duration::from_millis(300))
        .await
        .expect("pull");
    let waited = started.elapsed();
    assert!(got.is_empty());
    assert!(
        waited >= Duration::from_millis(250),
        "returned early: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(1500),
        "waited too long: {waited:?}"
    );
}

async fn several_jobs_come_out_in_push_order(queue: Arc<dyn WebhookQueue>) {
    for n in 0..5 {
        queue.push(job("app-1", n)).await.expect("push");
    }
    let mut got = queue.pull(3, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(got.len(), 3, "pull returns at most `max`");
    got.extend(queue.pull(10, Duration::from_secs(2)).await.expect("pull"));
    let times: Vec<u64> = got
        .iter()
        .map(|l| l.job.time_ms - 1_700_000_000_000)
        .collect();
    assert_eq!(times, [0, 1, 2, 3, 4]);
    let ids: HashSet<_> = got.iter().map(|l| l.id.clone()).collect();
    assert_eq!(ids.len(), 5, "each lease has its own id");
    for leased in &got {
        queue.ack(&leased.id).await.expect("ack");
    }
}

async fn acked_jobs_are_gone(queue: Arc<dyn WebhookQueue>) {
    queue.push(job("app-1", 7)).await.expect("push");
    let got = queue.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(got.len(), 1);
    queue.ack(&got[0].id).await.expect("ack");
    queue
        .ack(&got[0].id)
        .await
        .expect("a second ack is harmless");
    let again = queue
        .pull(10, Duration::from_millis(100))
        .await
        .expect("pull");
    assert!(again.is_empty(), "{again:?}");
}

macro_rules! conformance {
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

        mod sqs {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let queue = fixtures::sqs::TestQueue::new(stringify!($name));
                    super::$name(queue.queue().await).await;
                    queue.delete().await;
                }
            )*
        }
    };
}

conformance!(
    push_then_pull_returns_the_same_job,
    pull_waits_at_most_wait_when_empty,
    several_jobs_come_out_in_push_order,
    acked_jobs_are_gone
);
