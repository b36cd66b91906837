//! Cases for `HoldStore`: held leaving webhooks, sent at most once per claim and never after
//! a cancel.
//!
//! Timing is only ever asserted one way: a hold or claim of `LONG` has clearly not run out
//! while a case runs, and one that runs out is waited for by polling with a generous bound.

use std::time::{Duration, Instant};

use channel_core::DueHold;
use tokio::task::JoinSet;

use super::{sorted, Store};

/// A hold or claim that does not run out while a case runs.
const LONG: Duration = Duration::from_secs(60);
/// A hold or claim a case waits out.
const SHORT: Duration = Duration::from_millis(300);
/// How much earlier than `SHORT` a backend may see it run out: Redis counts whole
/// milliseconds of its own clock.
const SLACK: Duration = Duration::from_millis(20);
/// Far beyond `SHORT`, however slow the machine.
const PATIENCE: Duration = Duration::from_secs(10);

fn due(app_id: &str, key: &str, job: &str) -> DueHold {
    DueHold {
        app_id: app_id.into(),
        key: key.into(),
        job: job.into(),
    }
}

fn by_key(holds: Vec<DueHold>) -> Vec<(String, String, String)> {
    sorted(
        holds
            .into_iter()
            .map(|h| (h.app_id, h.key, h.job))
            .collect(),
    )
}

async fn claim(s: &Store, claim: Duration) -> Vec<DueHold> {
    s.claim_due_holds(claim, 100).await.expect("claim")
}

/// Claims (for `LONG`) until something is due.
async fn wait_for_due(s: &Store) -> Vec<DueHold> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let due = claim(s, LONG).await;
        if !due.is_empty() {
            return due;
        }
        assert!(Instant::now() < deadline, "nothing came due");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn holds_come_due_only_after_their_time(s: Store) {
    assert!(claim(&s, LONG).await.is_empty());
    // Jobs are handed back byte for byte.
    let job = "{\"event\":\"channel_vacated\",\"channel\":\"presence-ü:{x}\"}\n";
    let started = Instant::now();
    s.hold("a", "late", "late".into(), LONG)
        .await
        .expect("hold");
    s.hold("a", "soon", job.into(), SHORT).await.expect("hold");
    let got = wait_for_due(&s).await;
    let waited = started.elapsed();
    assert_eq!(got, vec![due("a", "soon", job)]);
    assert!(waited + SLACK >= SHORT, "due after {waited:?}");
    assert!(claim(&s, LONG).await.is_empty(), "late is not due yet");

    s.hold("a", "now", "now".into(), Duration::ZERO)
        .await
        .expect("hold");
    assert_eq!(claim(&s, LONG).await, vec![due("a", "now", "now")]);
}

pub async fn cancel_is_true_only_while_a_hold_is_pending(s: Store) {
    assert!(!s.cancel_hold("a", "k").await.expect("cancel"));
    s.hold("a", "k", "j".into(), LONG).await.expect("hold");
    assert!(
        !s.cancel_hold("b", "k").await.expect("cancel"),
        "apps apart"
    );
    assert!(!s.cancel_hold("a", "other").await.expect("cancel"));
    assert!(s.cancel_hold("a", "k").await.expect("cancel"));
    assert!(!s.cancel_hold("a", "k").await.expect("cancel"), "dropped");

    s.hold("a", "due", "j".into(), Duration::ZERO)
        .await
        .expect("hold");
    assert!(
        s.cancel_hold("a", "due").await.expect("cancel"),
        "due but not yet claimed is still pending"
    );

    // A cancelled hold never comes due, not even after its time.
    s.hold("a", "gone", "j".into(), SHORT).await.expect("hold");
    assert!(s.cancel_hold("a", "gone").await.expect("cancel"));
    tokio::time::sleep(SHORT * 2).await;
    s.hold("a", "witness", "w".into(), Duration::ZERO)
        .await
        .expect("hold");
    let got = claim(&s, LONG).await;
    assert_eq!(got, vec![due("a", "witness", "w")]);

    s.forget_hold(&got[0]).await.expect("forget");
    assert!(
        !s.cancel_hold("a", "witness").await.expect("cancel"),
        "a sent hold is no longer pending"
    );
}

/// A hold a replica claimed is being sent: cancelling it would drop the return while the leave
/// still goes out, so it is not cancelled and the return is sent too.
pub async fn a_claimed_hold_cannot_be_cancelled(s: Store) {
    s.hold("a", "k", "j".into(), Duration::ZERO)
        .await
        .expect("hold");
    let got = claim(&s, LONG).await;
    assert_eq!(got, vec![due("a", "k", "j")]);
    assert!(
        !s.cancel_hold("a", "k").await.expect("cancel"),
        "being sent"
    );
    s.forget_hold(&got[0]).await.expect("forget");
    s.hold("a", "k", "j2".into(), LONG).await.expect("hold");
    assert!(
        s.cancel_hold("a", "k").await.expect("cancel"),
        "a new hold of the key starts unclaimed"
    );
}

pub async fn a_newer_hold_replaces_the_older(s: Store) {
    s.hold("a", "k", "old".into(), LONG).await.expect("hold");
    s.hold("a", "k", "new".into(), Duration::ZERO)
        .await
        .expect("hold");
    assert_eq!(
        claim(&s, LONG).await,
        vec![due("a", "k", "new")],
        "one hold per key, with the newer job and time"
    );

    s.hold("a", "k2", "old".into(), Duration::ZERO)
        .await
        .expect("hold");
    s.hold("a", "k2", "new".into(), LONG).await.expect("hold");
    assert!(
        claim(&s, LONG).await.is_empty(),
        "the newer hold's time counts"
    );
    assert!(s.cancel_hold("a", "k2").await.expect("cancel"));
    assert!(!s.cancel_hold("a", "k2").await.expect("cancel"));
}

pub async fn a_claimed_hold_comes_due_again_only_after_the_claim(s: Store) {
    s.hold("a", "k", "j".into(), Duration::ZERO)
        .await
        .expect("hold");
    assert_eq!(claim(&s, LONG).await, vec![due("a", "k", "j")]);
    assert!(
        claim(&s, LONG).await.is_empty(),
        "not handed to a second claimer within the claim"
    );

    // A claim not ended by forget_hold (its claimer died) runs out, and the hold comes due
    // again for another claimer.
    s.hold("a", "dies", "d".into(), Duration::ZERO)
        .await
        .expect("hold");
    let started = Instant::now();
    assert_eq!(claim(&s, SHORT).await, vec![due("a", "dies", "d")]);
    let again = wait_for_due(&s).await;
    let waited = started.elapsed();
    assert_eq!(again, vec![due("a", "dies", "d")]);
    assert!(waited + SLACK >= SHORT, "claimed again after {waited:?}");

    // Forgotten after it was sent: gone for good, even once its claim would have run out.
    s.hold("a", "sent", "s".into(), Duration::ZERO)
        .await
        .expect("hold");
    let sent = claim(&s, SHORT).await;
    assert_eq!(sent, vec![due("a", "sent", "s")]);
    s.forget_hold(&sent[0]).await.expect("forget");
    s.forget_hold(&again[0]).await.expect("forget");
    tokio::time::sleep(SHORT * 2).await;
    assert!(claim(&s, LONG).await.is_empty());
    assert!(!s.cancel_hold("a", "sent").await.expect("cancel"));
}

pub async fn forget_keeps_a_newer_hold_of_the_same_key(s: Store) {
    s.hold("a", "k", "v1".into(), Duration::ZERO)
        .await
        .expect("hold");
    let first = claim(&s, LONG).await;
    assert_eq!(first, vec![due("a", "k", "v1")]);
    // The channel came back and left again while v1 was being sent.
    s.hold("a", "k", "v2".into(), Duration::ZERO)
        .await
        .expect("hold");
    s.forget_hold(&first[0]).await.expect("forget");
    s.forget_hold(&due("b", "k", "v2")).await.expect("forget");
    let second = claim(&s, LONG).await;
    assert_eq!(
        second,
        vec![due("a", "k", "v2")],
        "forgetting v1 or another app's hold keeps v2"
    );
    s.forget_hold(&second[0]).await.expect("forget");
    assert!(!s.cancel_hold("a", "k").await.expect("cancel"));
    s.forget_hold(&second[0]).await.expect("forget twice");
}

/// Every (app, key) pair, with names that could run together.
fn many_holds(apps: &[&str], keys: usize) -> Vec<DueHold> {
    let mut all = Vec::new();
    for app in apps {
        for k in 0..keys {
            let key = if k % 2 == 0 {
                format!("b:{k}")
            } else {
                format!("{k}")
            };
            all.push(due(app, &key, &format!("{app}|{key}")));
        }
    }
    all
}

async fn hold_all(s: &Store, all: &[DueHold]) {
    for h in all {
        s.hold(&h.app_id, &h.key, h.job.clone(), Duration::ZERO)
            .await
            .expect("hold");
    }
}

pub async fn claims_respect_the_limit_and_hand_out_each_hold_once(s: Store) {
    let all = many_holds(&["a", "a:b", "b", "a:b:0"], 3);
    hold_all(&s, &all).await;
    assert!(s.claim_due_holds(LONG, 0).await.expect("claim").is_empty());
    let mut claimed = Vec::new();
    for _ in 0..all.len() {
        let batch = s.claim_due_holds(LONG, 5).await.expect("claim");
        assert!(batch.len() <= 5, "{batch:?}");
        if batch.is_empty() {
            break;
        }
        claimed.extend(batch);
    }
    assert_eq!(by_key(claimed), by_key(all));
    assert!(claim(&s, LONG).await.is_empty());
}

pub async fn concurrent_claimers_get_each_hold_once(s: Store) {
    let all = many_holds(&["a", "b", "c", "d"], 15);
    hold_all(&s, &all).await;
    let mut claimers = JoinSet::new();
    for _ in 0..8 {
        let (s, bound) = (s.clone(), all.len());
        claimers.spawn(async move {
            // Bounded, so a store that hands holds out again fails instead of looping.
            let mut mine = Vec::new();
            while mine.len() <= bound {
                let batch = s.claim_due_holds(LONG, 3).await.expect("claim");
                if batch.is_empty() {
                    break;
                }
                mine.extend(batch);
                tokio::task::yield_now().await;
            }
            mine
        });
    }
    let mut claimed = Vec::new();
    while let Some(mine) = claimers.join_next().await {
        claimed.extend(mine.expect("claimer"));
    }
    assert_eq!(by_key(claimed), by_key(all), "each hold exactly once");
}
