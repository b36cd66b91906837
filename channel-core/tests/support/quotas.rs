//! Cases for `LimitStore::take_quota`: a per-second allowance by the store's clock.
//!
//! The store owns the window (Redis: the current second of its clock; memory: one second from
//! the first take), so a case cannot place its takes in one window by the test's clock. Each
//! attempt therefore starts right after the store turned a window, which leaves it most of a
//! second, and a pattern broken by a window turning mid-attempt (a stall on a busy machine)
//! is retried in fresh buckets; a wrong store fails every attempt alike.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::Store;

const ATTEMPTS: usize = 4;
/// Far beyond a one-second window, however slow the machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// Waits until the store starts a new window for a probe bucket: a 1-per-second allowance,
/// taken once, is refused until the window turns.
async fn window_start(s: &Store, probe: &str) {
    assert!(
        s.take_quota("probe", probe, 1, 1).await.expect("take"),
        "a fresh bucket has its whole allowance"
    );
    let deadline = Instant::now() + PATIENCE;
    while !s.take_quota("probe", probe, 1, 1).await.expect("take") {
        assert!(Instant::now() < deadline, "the quota window never turned");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `attempt` (given a name for its buckets unique to the attempt) at the start of a
/// window until it sees `expected`, at most `ATTEMPTS` times.
async fn in_one_window<T, F, Fut>(s: &Store, expected: T, attempt: F)
where
    T: PartialEq + Debug,
    F: Fn(Store, String) -> Fut,
    Fut: Future<Output = T>,
{
    let mut seen = Vec::new();
    for n in 0..ATTEMPTS {
        window_start(s, &format!("probe-{n}")).await;
        let got = attempt(s.clone(), format!("try-{n}")).await;
        if got == expected {
            return;
        }
        seen.push(got);
    }
    panic!("expected {expected:?} in one window, got {seen:?}");
}

pub async fn take_quota_allows_exactly_per_second_and_a_refusal_takes_nothing(s: Store) {
    let expected = [true, false, true, false, false, true, false, true];
    in_one_window(&s, expected, |s, b| async move {
        [
            s.take_quota("a", &b, 3, 5).await.expect("take"),
            s.take_quota("a", &b, 3, 5).await.expect("take"),
            s.take_quota("a", &b, 2, 5).await.expect("take"),
            s.take_quota("a", &b, 1, 5).await.expect("take"),
            // More than the whole allowance at once: refused, and it takes nothing.
            s.take_quota("a", &format!("{b}-big"), 6, 5)
                .await
                .expect("take"),
            s.take_quota("a", &format!("{b}-big"), 5, 5)
                .await
                .expect("take"),
            s.take_quota("a", &format!("{b}-big"), 1, 5)
                .await
                .expect("take"),
            // Taking nothing never exceeds an allowance, even a used-up one.
            s.take_quota("a", &format!("{b}-big"), 0, 5)
                .await
                .expect("take"),
        ]
    })
    .await;
}

pub async fn quota_buckets_and_apps_are_apart(s: Store) {
    // Exhausting one (app, bucket) leaves every other pair its whole allowance, however the
    // names could run together.
    let pairs = [
        ("a", "x"),
        ("a", "y"),
        ("b", "x"),
        ("a:x", "y"),
        ("a", "x:y"),
    ];
    let expected = vec![(true, false); pairs.len()];
    in_one_window(&s, expected, |s, b| async move {
        let mut got = Vec::new();
        for (app, bucket) in pairs {
            let bucket = format!("{bucket}{b}");
            let all = s.take_quota(app, &bucket, 4, 4).await.expect("take");
            let more = s.take_quota(app, &bucket, 1, 4).await.expect("take");
            got.push((all, more));
        }
        got
    })
    .await;
}

pub async fn concurrent_takes_share_one_allowance(s: Store) {
    const PER_SECOND: u64 = 10;
    in_one_window(&s, PER_SECOND, |s, b| async move {
        let mut tasks = JoinSet::new();
        for _ in 0..40 {
            let (s, b) = (s.clone(), b.clone());
            tasks.spawn(async move { s.take_quota("a", &b, 1, PER_SECOND).await.expect("take") });
        }
        let mut taken = 0;
        while let Some(done) = tasks.join_next().await {
            taken += u64::from(done.expect("task"));
        }
        taken
    })
    .await;
}

pub async fn an_exhausted_quota_allows_again_in_a_later_window(s: Store) {
    assert!(s.take_quota("a", "q", 2, 2).await.expect("take"));
    let deadline = Instant::now() + PATIENCE;
    while !s.take_quota("a", "q", 2, 2).await.expect("take") {
        assert!(Instant::now() < deadline, "the allowance never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
