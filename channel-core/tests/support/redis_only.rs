//! Redis-only cases: unreachable servers and keys left behind mean nothing for memory.

use std::time::{Duration, Instant};

use channel_core::{
    CoreError, CountStore, Holding, LeaseStore, OutboxStore, PresenceStore, RedisStore, UserStore,
};

use super::member;

/// only Redis can be unreachable.
#[tokio::test]
async fn unreachable_is_unavailable_quickly() {
    let started = Instant::now();
    let result = RedisStore::connect("redis://127.0.0.1:1", "sytest:unreachable").await;
    assert!(
        matches!(result, Err(CoreError::Unavailable(_))),
        "{:?}",
        result.err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// a Redis that accepts connections but never answers (a hung
/// server, a black-holed network) must not hang callers either.
#[tokio::test]
async fn that_never_answers_is_unavailable_quickly() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let result = RedisStore::connect(&format!("redis://{addr}"), "sytest:silent").await;
    assert!(
        matches!(result, Err(CoreError::Unavailable(_))),
        "{:?}",
        result.err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    silent.abort();
}

/// Redis must not keep keys for state that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leaves_no_keys_behind() {
    let ns = super::namespace("no_keys_behind");
    let s = super::redis_store(&ns).await;
    let outcome = tokio::spawn(async move {
        s.set_edge_count("a", "c", "e1", 2).await.expect("count");
        s.join("a", "presence-p", "e1", "1.1", member("u"), 10)
            .await
            .expect("join");
        s.join("a", "presence-p", "e2", "2.1", member("v"), 10)
            .await
            .expect("join");
        s.user_connect("a", "u", "e1", "1.1")
            .await
            .expect("connect");
        s.user_connect("a", "u", "e2", "2.1")
            .await
            .expect("connect");
        s.set_edge_count("a", "c", "e1", 0).await.expect("count");
        s.leave("a", "presence-p", "e1", "1.1")
            .await
            .expect("leave");
        s.user_disconnect("a", "u", "e1", "1.1")
            .await
            .expect("disconnect");
        s.reap_channel("a", "presence-p", "e2").await.expect("reap");
        s.reap_user("a", "u", "e2").await.expect("reap");
        s.forget_edge("e1").await.expect("forget");
        s.forget_edge("e2").await.expect("forget");
        // A relay carries out the effects and forgets them; an empty outbox is unlisted.
        let claim = Duration::from_secs(60);
        for effect in s.claim_effects(claim, 100).await.expect("claim") {
            s.forget_effect(&effect).await.expect("forget");
        }
        assert!(s.claim_effects(claim, 100).await.expect("claim").is_empty());
    })
    .await;
    // The edges wrote before any heartbeat, so they got provisional leases, which this test
    // never lets run out and be reaped: lease bookkeeping, not channel state.
    let leases = [
        format!("{ns}:{{edges}}:live"),
        format!("{ns}:{{edges}}:provisional"),
    ];
    let left: Vec<String> = super::keys_of(&ns)
        .await
        .into_iter()
        .filter(|k| !leases.contains(k))
        .collect();
    // The record of dead edges stays, for an hour: it is what keeps them fenced.
    let dead = format!("{ns}:{{edges}}:dead");
    let mut con = super::redis_connection().await;
    let dead_ttl: i64 = redis::cmd("PTTL")
        .arg(&dead)
        .query_async(&mut con)
        .await
        .expect("pttl");
    let mseq = format!("{ns}:{{a}}:mseq:presence-p");
    let mseq_ttl: i64 = redis::cmd("PTTL")
        .arg(&mseq)
        .query_async(&mut con)
        .await
        .expect("pttl");
    super::delete_namespace(&ns).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    // So does each app's effect id counter (one small key per app, so ids never repeat), and
    // for an hour the membership number of a presence channel that emptied.
    assert_eq!(left, vec![format!("{ns}:{{a}}:fx-seq"), mseq, dead]);
    assert!(
        (1..=3_600_000).contains(&mseq_ttl),
        "an empty channel's number expires: {mseq_ttl}"
    );
    assert!(
        (1..=3_600_000).contains(&dead_ttl),
        "the dead edges expire: {dead_ttl}"
    );
}

/// Redis without persistence loses every key when it restarts. An edge's next write must
/// register it again, so a reaper still finds what it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_after_redis_lost_its_keys_are_indexed_again() {
    let ns = super::namespace("lost_keys");
    let s = super::redis_store(&ns).await;
    let case_ns = ns.clone();
    let outcome = tokio::spawn(async move {
        s.touch_edge("e1", Duration::from_secs(60))
            .await
            .expect("touch");
        s.join("a", "presence-p", "e1", "1.1", member("u"), 10)
            .await
            .expect("join");
        super::delete_namespace(&case_ns).await;
        s.join("a", "presence-p", "e1", "1.2", member("v"), 10)
            .await
            .expect("join after the loss");
        s.user_connect("b", "v", "e1", "1.2")
            .await
            .expect("sign-in after the loss");
        let held = super::sorted(s.edge_holdings("e1").await.expect("holdings"));
        assert_eq!(
            held,
            vec![
                Holding::Channel {
                    app_id: "a".into(),
                    channel: "presence-p".into()
                },
                Holding::User {
                    app_id: "b".into(),
                    user_id: "v".into()
                },
            ]
        );
    })
    .await;
    super::delete_namespace(&ns).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
