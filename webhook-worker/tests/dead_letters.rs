//! Dead letters: the store's contract on every backend, and the worker keeping what it gives
//! up so that a replay delivers it once the receiver is fixed.

mod fixtures;
mod receiver;

use std::sync::Arc;
use std::time::Duration;

use webhook_worker::{
    replay, DeadLetterError, DeadLetters, Failure, MemoryDeadLetters, MemoryQueue, Replay,
    WebhookJob, WebhookQueue, WorkerConfig,
};

use fixtures::{app, fast_retries, hook, job, wait_for_letters, Stream, Worker, SECRET, SOON};
use receiver::Receiver;

fn failure(n: u64) -> Failure {
    Failure::now(job("app-1", n), Some("http://127.0.0.1:1/hooks"), "boom")
}

async fn letters_list_newest_first_and_are_capped(letters: Arc<dyn DeadLetters>) {
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(letters.record(failure(n)).await.expect("record"));
    }
    let listed = letters.list(10).await.expect("list");
    let ns: Vec<u64> = listed
        .iter()
        .map(|l| l.failure.job.time_ms - 1_700_000_000_000)
        .collect();
    assert_eq!(ns, [4, 3, 2], "the cap (3) drops the oldest");
    assert_eq!(listed[0].id, ids[3]);
    assert_eq!(listed[0].failure.job, job("app-1", 4));
    assert_eq!(
        listed[0].failure.url.as_deref(),
        Some("http://127.0.0.1:1/hooks")
    );
    assert_eq!(listed[0].failure.error, "boom");
    assert!(listed[0].failure.failed_at_ms > 1_700_000_000_000);
    assert_eq!(letters.list(2).await.expect("list").len(), 2);
    assert!(letters.list(0).await.expect("list").is_empty());
    assert_eq!(letters.get(&ids[0]).await.expect("get"), None, "trimmed");
}

async fn get_and_remove_by_id(letters: Arc<dyn DeadLetters>) {
    let a = letters.record(failure(1)).await.expect("record");
    let b = letters.record(failure(2)).await.expect("record");
    assert_ne!(a, b);
    let got = letters.get(&a).await.expect("get").expect("present");
    assert_eq!(got.failure.job, job("app-1", 1));
    assert!(letters.remove(&a).await.expect("remove"));
    assert!(!letters.remove(&a).await.expect("remove again is harmless"));
    assert_eq!(letters.get(&a).await.expect("get"), None);
    for unknown in ["nope", "99-99", ""] {
        assert_eq!(
            letters.get(unknown).await.expect("get"),
            None,
            "{unknown:?}"
        );
        assert!(!letters.remove(unknown).await.expect("remove"));
    }
    assert_eq!(letters.list(10).await.expect("list")[0].id, b);
}

async fn replay_all_pushes_oldest_first(letters: Arc<dyn DeadLetters>) {
    let queue = MemoryQueue::new();
    for n in 1..=3 {
        letters.record(failure(n)).await.expect("record");
    }
    let replayed = replay(&*letters, &queue, &Replay::All)
        .await
        .expect("replay");
    assert_eq!(replayed.len(), 3);
    assert!(letters.list(10).await.expect("list").is_empty());
    let pushed = queue.pull(10, Duration::ZERO).await.expect("pull");
    let jobs: Vec<_> = pushed.into_iter().map(|l| l.job).collect();
    // A replay is aimed at the webhook that failed, and only at it.
    let aimed = |n| WebhookJob {
        only_url: Some("http://127.0.0.1:1/hooks".into()),
        id: None,
        ..job("app-1", n)
    };
    assert_eq!(jobs, [aimed(1), aimed(2), aimed(3)]);
    let missing = replay(&*letters, &queue, &Replay::One(replayed[0].clone())).await;
    assert!(
        matches!(missing, Err(DeadLetterError::NotFound(_))),
        "{missing:?}"
    );
}

/// A receiver that keeps answering `status` gets the job dead-lettered with that error;
/// once it answers 200, a replay delivers the job and the letter is gone.
async fn given_up_then_replayed(
    queue: Arc<dyn WebhookQueue>,
    letters: Arc<dyn DeadLetters>,
    status: u16,
) {
    let mut receiver = Receiver::start(&[], status).await;
    let config = WorkerConfig {
        retry_window: Duration::from_millis(300),
        ..fast_retries()
    };
    let apps = vec![app("app-1", vec![hook(&receiver.url)])];
    let worker = Worker::start(queue.clone(), letters.clone(), apps, config);
    queue.push(job("app-1", 1)).await.expect("push");

    let listed = wait_for_letters(&*letters, 1).await;
    let letter = &listed[0];
    assert_eq!(letter.failure.job, job("app-1", 1));
    assert_eq!(letter.failure.url.as_deref(), Some(receiver.url.as_str()));
    assert!(
        letter.failure.error.contains(&status.to_string()),
        "{}",
        letter.failure.error
    );
    let attempts = receiver.drain();
    if status >= 500 {
        assert!(attempts >= 2, "retried before giving up: {attempts}");
    } else {
        assert_eq!(attempts, 1, "a rejection is not retried");
    }

    receiver.answer_from_now(200);
    let replayed = replay(&*letters, &*queue, &Replay::One(letter.id.clone()))
        .await
        .expect("replay");
    assert_eq!(replayed, std::slice::from_ref(&letter.id));
    let events = receiver
        .next(SOON)
        .await
        .verified_events("key-app-1", SECRET);
    assert_eq!(events, [serde_json::json!(job("app-1", 1).event)]);
    receiver.assert_quiet(Duration::from_millis(300)).await;
    assert!(letters.list(10).await.expect("list").is_empty());
    worker.stop().await;
}

async fn server_errors_until_the_window_ends(
    queue: Arc<dyn WebhookQueue>,
    letters: Arc<dyn DeadLetters>,
) {
    given_up_then_replayed(queue, letters, 500).await;
}

async fn client_error_rejections(queue: Arc<dyn WebhookQueue>, letters: Arc<dyn DeadLetters>) {
    given_up_then_replayed(queue, letters, 422).await;
}

macro_rules! store_suite {
    ($($name:ident),*) => {
        mod store_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(Arc::new(MemoryDeadLetters::new(3))).await;
                }
            )*
        }

        mod store_redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let stream = Stream::new(stringify!($name)).await;
                    super::$name(stream.dead_letters(3).await).await;
                    stream.delete().await;
                }
            )*
        }
    };
}

store_suite!(
    letters_list_newest_first_and_are_capped,
    get_and_remove_by_id,
    replay_all_pushes_oldest_first
);

macro_rules! worker_suite {
    ($($name:ident),*) => {
        mod worker_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let letters = Arc::new(MemoryDeadLetters::default());
                    super::$name(Arc::new(MemoryQueue::new()), letters).await;
                }
            )*
        }

        mod worker_redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let stream = Stream::new(stringify!($name)).await;
                    let queue = stream.queue("worker-1").await;
                    super::$name(queue, stream.dead_letters(100).await).await;
                    assert_eq!(stream.len().await, 0, "every job acked");
                    stream.delete().await;
                }
            )*
        }
    };
}

worker_suite!(server_errors_until_the_window_ends, client_error_rejections);
