//! What only the SQS queue promises: redelivery after the visibility timeout once a worker dies,
//! none while it lives, dead-lettering of jobs whose workers keep dying, tolerance of foreign
//! messages, and failing fast when SQS is away. Runs against the SQS-compatible server that
//! `scripts/services` starts on 127.0.0.1:9324.

mod fixtures;

use std::time::{Duration, Instant};

use webhook_worker::{QueueError, SqsQueue, SqsQueueConfig, WebhookQueue, WebhookSink};

use fixtures::job;
use fixtures::sqs::TestQueue;

/// Longer than the fixtures' one-second visibility timeout.
const PAST_VISIBILITY: Duration = Duration::from_millis(1300);

#[tokio::test]
async fn a_dead_workers_job_goes_to_another_worker() {
    let sqs = TestQueue::new("dead_worker");
    let a = sqs.queue().await;
    let b = sqs.queue().await;
    a.push(job("app-1", 1)).await.expect("push");
    let taken = a.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(taken.len(), 1);
    drop(a);

    let early = b.pull(10, Duration::ZERO).await.expect("pull");
    assert!(
        early.is_empty(),
        "not before the visibility timeout: {early:?}"
    );
    tokio::time::sleep(PAST_VISIBILITY).await;
    let again = b.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(again, taken, "same job, same lease id");
    b.ack(&again[0].id).await.expect("ack");
    assert_eq!(sqs.count(&sqs.name).await, 0);
    sqs.delete().await;
}

#[tokio::test]
async fn a_live_worker_keeps_its_lease_past_the_visibility_timeout() {
    let sqs = TestQueue::new("live_worker");
    let a = sqs.queue().await;
    let b = sqs.queue().await;
    a.push(job("app-1", 1)).await.expect("push");
    let taken = a.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(taken.len(), 1);
    tokio::time::sleep(PAST_VISIBILITY * 2).await;
    let stolen = b.pull(10, Duration::ZERO).await.expect("pull");
    assert!(stolen.is_empty(), "an extended lease stays: {stolen:?}");
    a.ack(&taken[0].id).await.expect("ack");
    assert_eq!(sqs.count(&sqs.name).await, 0, "ack deletes the message");
    sqs.delete().await;
}

#[tokio::test]
async fn a_job_whose_workers_keep_dying_is_dead_lettered() {
    let sqs = TestQueue::new("dead_letters");
    // The queue exists, without a redrive policy, before one is asked for.
    drop(sqs.queue().await);
    let mut config = sqs.config();
    config.dead_letter_queue = Some(sqs.dead_letters.clone());
    config.max_receive_count = 1;
    let a = sqs.sqs_queue(config.clone()).await;
    let b = sqs.sqs_queue(config).await;
    a.push(job("app-1", 1)).await.expect("push");
    let taken = a.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(taken.len(), 1);
    drop(a);

    tokio::time::sleep(PAST_VISIBILITY).await;
    let again = b.pull(10, Duration::from_secs(1)).await.expect("pull");
    assert!(again.is_empty(), "received once already: {again:?}");
    assert_eq!(sqs.count(&sqs.name).await, 0);
    assert_eq!(sqs.count(&sqs.dead_letters).await, 1);
    sqs.delete().await;
}

#[tokio::test]
async fn malformed_messages_are_dropped_without_stopping_the_queue() {
    let sqs = TestQueue::new("malformed");
    let queue = sqs.queue().await;
    sqs.send_raw("{not json").await;
    sqs.send_raw(r#"{"app_id":"a"}"#).await;
    queue.push(job("app-1", 3)).await.expect("push");
    let got = queue.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].job, job("app-1", 3));
    assert_eq!(
        sqs.count(&sqs.name).await,
        1,
        "the malformed messages were deleted"
    );
    queue.ack(&got[0].id).await.expect("ack");
    assert_eq!(sqs.count(&sqs.name).await, 0);
    sqs.delete().await;
}

#[tokio::test]
async fn an_existing_queue_is_used_by_url() {
    let sqs = TestQueue::new("by_url");
    let first = sqs.queue().await;
    let mut config = sqs.config();
    config.queue_url = Some(sqs.url(&sqs.name).await);
    config.queue_name = "unused".into();
    let second = sqs.sqs_queue(config).await;
    first.push(job("app-1", 5)).await.expect("push");
    let got = second.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(got.len(), 1, "{got:?}");
    second.ack(&got[0].id).await.expect("ack");
    sqs.delete().await;
}

#[tokio::test]
async fn connecting_to_nothing_fails_within_seconds() {
    let mut config = SqsQueueConfig::new("nothing", "us-east-1");
    config.endpoint_url = Some("http://127.0.0.1:1".into());
    config.command_timeout = Duration::from_secs(3);
    let started = Instant::now();
    let Err(QueueError::Unavailable(reason)) = SqsQueue::connect(config).await else {
        panic!("expected Unavailable");
    };
    assert!(reason.starts_with("sqs CreateQueue"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
