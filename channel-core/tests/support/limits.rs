//! Cases for `LimitStore`'s connection counts (and reaping a dead edge's share of them): one
//! count per app shared by every edge, decided atomically.

use channel_core::Holding;
use tokio::task::JoinSet;

use super::Store;

fn connections(app_id: &str) -> Holding {
    Holding::Connections {
        app_id: app_id.into(),
    }
}

/// Admits on `edge` until refused (at most `bound` times); how many were admitted.
async fn fill(s: &Store, app_id: &str, edge: &str, max: u64, bound: u64) -> u64 {
    for n in 0..bound {
        if !s.admit_connection(app_id, edge, max).await.expect("admit") {
            return n;
        }
    }
    bound
}

pub async fn admit_caps_at_max_across_edges(s: Store) {
    assert!(s.admit_connection("a", "e1", 3).await.expect("admit"));
    assert!(s.admit_connection("a", "e2", 3).await.expect("admit"));
    assert!(s.admit_connection("a", "e1", 3).await.expect("admit"));
    assert!(!s.admit_connection("a", "e2", 3).await.expect("admit"));
    assert!(
        !s.admit_connection("a", "e3", 3).await.expect("admit"),
        "the maximum is the app's, not the edge's"
    );
    assert!(
        s.admit_connection("b", "e1", 3).await.expect("admit"),
        "apps are counted apart"
    );
    assert!(
        s.admit_connection("a", "e1", 4).await.expect("admit"),
        "a raised maximum admits again"
    );
    assert!(!s.admit_connection("a", "e1", 4).await.expect("admit"));
    assert!(
        !s.admit_connection("a", "e1", 1).await.expect("admit"),
        "a lowered maximum refuses"
    );

    s.release_connection("a", "e2").await.expect("release");
    assert!(
        s.admit_connection("a", "e3", 4).await.expect("admit"),
        "a release frees a slot for any edge"
    );
    assert!(!s.admit_connection("a", "e3", 4).await.expect("admit"));
}

pub async fn max_zero_means_no_limit_but_still_counts(s: Store) {
    for i in 0..60 {
        let edge = format!("e{}", i % 3);
        assert!(s.admit_connection("a", &edge, 0).await.expect("admit"));
    }
    assert!(
        !s.admit_connection("a", "e0", 60).await.expect("admit"),
        "connections admitted without a limit count towards a later one"
    );
    assert!(s.admit_connection("a", "e0", 61).await.expect("admit"));
    assert!(s.admit_connection("a", "e0", 0).await.expect("admit"));
}

pub async fn release_never_goes_below_zero(s: Store) {
    s.release_connection("a", "e1").await.expect("release");
    s.release_connection("nobody", "e1").await.expect("release");
    assert_eq!(
        fill(&s, "a", "e1", 2, 10).await,
        2,
        "no credit from a release"
    );

    s.release_connection("a", "e1").await.expect("release");
    s.release_connection("a", "e1").await.expect("release");
    s.release_connection("a", "e1").await.expect("release");
    assert_eq!(fill(&s, "a", "e1", 2, 10).await, 2, "a count stops at zero");

    s.release_connection("a", "e1").await.expect("release");
    s.release_connection("a", "e1").await.expect("release");
    assert!(s.admit_connection("a", "e1", 1).await.expect("admit"));
    s.release_connection("a", "e2").await.expect("release");
    assert!(
        !s.admit_connection("a", "e2", 1).await.expect("admit"),
        "an edge with nothing releases nothing of another edge's share"
    );
}

pub async fn reap_connections_drops_only_the_dead_edge(s: Store) {
    for edge in ["e1", "e1", "e2", "e3"] {
        assert!(s.admit_connection("a", edge, 4).await.expect("admit"));
    }
    assert!(s.admit_connection("b", "e1", 4).await.expect("admit"));
    assert!(!s.admit_connection("a", "e2", 4).await.expect("admit"));

    s.reap_connections("a", "e1").await.expect("reap");
    assert_eq!(
        fill(&s, "a", "e4", 4, 10).await,
        2,
        "e1's two are gone, e2's and e3's stay"
    );
    s.reap_connections("a", "e1").await.expect("reap");
    s.reap_connections("a", "nobody").await.expect("reap");
    assert!(
        !s.admit_connection("a", "e4", 4).await.expect("admit"),
        "reaping again or an unknown edge changes nothing"
    );
    assert_eq!(
        fill(&s, "b", "e2", 2, 10).await,
        1,
        "another app's share of the dead edge stays until reaped"
    );

    s.reap_connections("a", "e4").await.expect("reap");
    s.release_connection("a", "e4").await.expect("release");
    assert_eq!(fill(&s, "a", "e5", 4, 10).await, 2, "nothing to release");
}

pub async fn connection_holdings_appear_in_edge_holdings(s: Store) {
    assert!(s.edge_holdings("e1").await.expect("holdings").is_empty());
    s.admit_connection("a", "e1", 0).await.expect("admit");
    s.admit_connection("a", "e1", 0).await.expect("admit");
    s.admit_connection("b", "e1", 10).await.expect("admit");
    s.admit_connection("a", "e2", 0).await.expect("admit");
    let e1 = s.edge_holdings("e1").await.expect("holdings");
    assert!(e1.contains(&connections("a")), "{e1:?}");
    assert!(e1.contains(&connections("b")), "{e1:?}");
    let e2 = s.edge_holdings("e2").await.expect("holdings");
    assert_eq!(e2, vec![connections("a")]);

    s.reap_connections("a", "e1").await.expect("reap");
    let e1 = s.edge_holdings("e1").await.expect("holdings");
    assert!(!e1.contains(&connections("a")), "reaped: {e1:?}");
    assert!(e1.contains(&connections("b")), "{e1:?}");
    let e2 = s.edge_holdings("e2").await.expect("holdings");
    assert_eq!(e2, vec![connections("a")], "another edge's share stays");
}

const EDGES: usize = 4;

/// Admits `n` connections at once over `EDGES` edges; the edges of those admitted.
async fn admit_at_once(s: &Store, n: usize, max: u64) -> Vec<String> {
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let s = s.clone();
        tasks.spawn(async move {
            let edge = format!("edge-{}", i % EDGES);
            let admitted = s.admit_connection("a", &edge, max).await.expect("admit");
            admitted.then_some(edge)
        });
    }
    let mut admitted = Vec::new();
    while let Some(done) = tasks.join_next().await {
        admitted.extend(done.expect("task"));
    }
    admitted
}

pub async fn concurrent_admits_never_exceed_max(s: Store) {
    const MAX: u64 = 7;
    let admitted = admit_at_once(&s, 40, MAX).await;
    assert_eq!(admitted.len() as u64, MAX, "{admitted:?}");

    // Every admitted connection released while others race to take the slots: whatever the
    // interleaving, the count ends exactly at the admits of this round.
    let mut releases = JoinSet::new();
    for edge in admitted {
        let s = s.clone();
        releases.spawn(async move { s.release_connection("a", &edge).await.expect("release") });
    }
    let again = admit_at_once(&s, 40, MAX).await;
    while let Some(done) = releases.join_next().await {
        done.expect("task");
    }
    let again = again.len() as u64;
    assert!(again <= MAX, "{again}");
    assert_eq!(fill(&s, "a", "edge-0", MAX, 100).await, MAX - again);
}
