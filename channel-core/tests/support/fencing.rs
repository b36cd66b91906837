//! Cases for fencing: once a reaper has claimed an edge, nothing the edge still writes may add
//! to what it holds, or the reap would leave it without an owner.

use std::time::Duration;

use channel_core::{CoreError, Holding};

use super::{member, Store};

const CLAIM: Duration = Duration::from_secs(60);

fn fenced<T: std::fmt::Debug>(result: Result<T, CoreError>, what: &str) {
    assert!(
        matches!(result, Err(CoreError::Fenced(ref edge)) if edge == "e1"),
        "{what}: {result:?}"
    );
}

/// e1 holds a presence connection, a count, a signed-in user and a connection in app `a`;
/// its lease lapses and a reaper claims and fences it.
async fn claimed_and_fenced(s: &Store) {
    s.touch_edge("e1", Duration::from_millis(50))
        .await
        .expect("touch");
    s.join("a", "presence-p", "e1", "1.1", member("u"), 10)
        .await
        .expect("join");
    s.set_edge_count("a", "c", "e1", 1).await.expect("count");
    s.user_connect("a", "u", "e1", "1.1").await.expect("user");
    s.admit_connection("a", "e1", 0).await.expect("admit");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let claimed = s.claim_expired_edge(CLAIM).await.expect("claim");
    assert_eq!(claimed.as_deref(), Some("e1"));
    s.fence_edge("e1").await.expect("fence");
}

pub async fn a_fenced_edge_cannot_add_but_can_remove(s: Store) {
    claimed_and_fenced(&s).await;
    let join = s
        .join("a", "presence-p", "e1", "1.2", member("v"), 10)
        .await;
    fenced(join, "a join");
    fenced(s.set_edge_count("a", "c", "e1", 2).await, "a count");
    fenced(
        s.set_edge_count("a", "d", "e1", 1).await,
        "a new channel's count",
    );
    fenced(s.user_connect("a", "v", "e1", "1.2").await, "a sign-in");
    fenced(s.admit_connection("a", "e1", 0).await, "a connection");
    // An app the edge never wrote to before is refused too.
    fenced(s.set_edge_count("b", "c", "e1", 1).await, "another app");

    // Removals still work, once each.
    let left = s
        .leave("a", "presence-p", "e1", "1.1")
        .await
        .expect("leave");
    assert!(left.is_some_and(|l| l.last));
    let t = s.set_edge_count("a", "c", "e1", 0).await.expect("count 0");
    assert!(t.vacated());
    assert!(s
        .user_disconnect("a", "u", "e1", "1.1")
        .await
        .expect("sign out"));

    // Other edges are untouched.
    s.touch_edge("e2", Duration::from_secs(60))
        .await
        .expect("touch");
    s.join("a", "presence-p", "e2", "2.1", member("w"), 10)
        .await
        .expect("e2 still joins");
    s.set_edge_count("b", "c", "e2", 1)
        .await
        .expect("e2 counts");
}

pub async fn a_reaped_edge_never_gets_a_lease_again(s: Store) {
    claimed_and_fenced(&s).await;
    for holding in s.edge_holdings("e1").await.expect("holdings") {
        if let Holding::Channel { app_id, channel } = holding {
            s.reap_channel(&app_id, &channel, "e1").await.expect("reap");
        }
    }
    s.forget_edge("e1").await.expect("forget");
    let live = s
        .touch_edge("e1", Duration::from_millis(50))
        .await
        .expect("touch");
    assert!(!live, "a reaped edge is told it lost its lease");
    fenced(
        s.join("a", "presence-p", "e1", "1.3", member("x"), 10)
            .await,
        "a join after the reap",
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        s.claim_expired_edge(CLAIM).await.expect("claim"),
        None,
        "the heartbeat of a dead edge made no lease to reap again"
    );
}

/// A new edge id writes before its first heartbeat lands (its clients reconnect at once): the
/// write gives it a lease, so a crash right then is still reaped, and the heartbeat still
/// counts as its first.
pub async fn a_write_before_the_first_beat_is_covered_by_a_lease(s: Store) {
    s.join("a", "presence-p", "fresh", "1.1", member("u"), 10)
        .await
        .expect("join");
    assert_eq!(
        s.claim_expired_edge(CLAIM).await.expect("claim"),
        None,
        "the provisional lease has not run out"
    );
    let live = s
        .touch_edge("fresh", Duration::from_secs(60))
        .await
        .expect("touch");
    assert!(!live, "still the edge's first heartbeat");
    let live = s
        .touch_edge("fresh", Duration::from_millis(50))
        .await
        .expect("touch");
    assert!(live, "and then its lease");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        s.claim_expired_edge(CLAIM).await.expect("claim").as_deref(),
        Some("fresh")
    );
}
