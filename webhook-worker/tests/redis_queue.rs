//! What only the Redis queue promises: redelivery after a worker dies, no redelivery while it
//! lives or after an ack, tolerance of foreign entries, and failing fast when Redis is away.

mod fixtures;

use std::time::{Duration, Instant};

use webhook_worker::{QueueError, RedisQueue};

use fixtures::{job, Stream};

/// Longer than the fixtures' 500 ms reclaim timeout.
const PAST_RECLAIM: Duration = Duration::from_millis(800);

#[tokio::test]
async fn a_dead_workers_job_goes_to_another_worker() {
    let stream = Stream::new("dead-worker").await;
    let a = stream.queue("a").await;
    let b = stream.queue("b").await;
    a.push(job("app-1", 1)).await.expect("push");
    let taken = a.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(taken.len(), 1);
    drop(a);

    let early = b.pull(10, Duration::ZERO).await.expect("pull");
    assert!(
        early.is_empty(),
        "not before the reclaim timeout: {early:?}"
    );
    tokio::time::sleep(PAST_RECLAIM).await;
    let again = b.pull(10, Duration::ZERO).await.expect("pull");
    assert_eq!(again, taken, "same entry, same lease id");
    b.ack(&again[0].id).await.expect("ack");
    assert_eq!(stream.len().await, 0);
    assert_eq!(stream.pending().await, 0);
    stream.delete().await;
}

#[tokio::test]
async fn a_live_worker_keeps_its_lease_past_the_reclaim_timeout() {
    let stream = Stream::new("live-worker").await;
    let a = stream.queue("a").await;
    let b = stream.queue("b").await;
    a.push(job("app-1", 1)).await.expect("push");
    let taken = a.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(taken.len(), 1);
    tokio::time::sleep(PAST_RECLAIM * 2).await;
    let stolen = b.pull(10, Duration::ZERO).await.expect("pull");
    assert!(
        stolen.is_empty(),
        "a renewed lease is not reclaimed: {stolen:?}"
    );
    a.ack(&taken[0].id).await.expect("ack");
    stream.delete().await;
}

#[tokio::test]
async fn an_acked_job_is_never_handed_out_again() {
    let stream = Stream::new("acked").await;
    let a = stream.queue("a").await;
    a.push(job("app-1", 1)).await.expect("push");
    let taken = a.pull(10, Duration::from_secs(2)).await.expect("pull");
    a.ack(&taken[0].id).await.expect("ack");
    drop(a);
    tokio::time::sleep(PAST_RECLAIM).await;
    let b = stream.queue("b").await;
    assert!(b.pull(10, Duration::ZERO).await.expect("pull").is_empty());
    assert_eq!(stream.len().await, 0, "ack deletes the entry");
    assert_eq!(stream.pending().await, 0);
    stream.delete().await;
}

#[tokio::test]
async fn malformed_entries_are_dropped_without_stopping_the_queue() {
    let stream = Stream::new("malformed").await;
    let queue = stream.queue("a").await;
    stream
        .cmd::<String>(
            redis::cmd("XADD")
                .arg(&stream.key)
                .arg("*")
                .arg("job")
                .arg("{not json"),
        )
        .await;
    stream
        .cmd::<String>(
            redis::cmd("XADD")
                .arg(&stream.key)
                .arg("*")
                .arg("other")
                .arg("x"),
        )
        .await;
    queue.push(job("app-1", 3)).await.expect("push");
    let got = queue.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].job, job("app-1", 3));
    assert_eq!(
        stream.len().await,
        1,
        "the malformed entries were acked and deleted"
    );
    queue.ack(&got[0].id).await.expect("ack");
    assert_eq!(stream.len().await, 0);
    assert_eq!(stream.pending().await, 0);
    stream.delete().await;
}

#[tokio::test]
async fn a_deleted_stream_is_recreated_with_its_group() {
    let stream = Stream::new("deleted").await;
    let queue = stream.queue("a").await;
    stream.cmd::<i64>(redis::cmd("DEL").arg(&stream.key)).await;
    queue.push(job("app-1", 4)).await.expect("push");
    let got = queue.pull(10, Duration::from_secs(2)).await.expect("pull");
    assert_eq!(got.len(), 1, "{got:?}");
    queue.ack(&got[0].id).await.expect("ack");
    stream.delete().await;
}

#[tokio::test]
async fn connecting_to_nothing_fails_within_seconds() {
    let started = Instant::now();
    let result = RedisQueue::connect("redis://127.0.0.1:1", "k", "g", "c").await;
    assert!(
        matches!(result, Err(QueueError::Unavailable(_))),
        "expected Unavailable"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
