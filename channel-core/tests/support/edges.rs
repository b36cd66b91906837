//! Cases for edge leases, what an edge holds, and reaping a dead edge.

use std::collections::HashSet;
use std::time::Duration;

use channel_core::{CountTransition, Holding};
use tokio::task::JoinSet;

use super::{member, sorted, Store};

fn channel(app_id: &str, channel: &str) -> Holding {
    Holding::Channel {
        app_id: app_id.into(),
        channel: channel.into(),
    }
}

fn user(app_id: &str, user_id: &str) -> Holding {
    Holding::User {
        app_id: app_id.into(),
        user_id: user_id.into(),
    }
}

/// Long enough that no claim in these tests lapses unless a test waits for it.
const CLAIM: Duration = Duration::from_secs(60);

pub async fn leases_are_claimed_only_after_expiry(s: Store) {
    assert_eq!(s.claim_expired_edge(CLAIM).await.expect("claim"), None);
    let first = s
        .touch_edge("live", Duration::from_secs(60))
        .await
        .expect("touch");
    assert!(!first, "a first heartbeat finds no live lease");
    let again = s
        .touch_edge("live", Duration::from_secs(60))
        .await
        .expect("touch");
    assert!(again, "a renewal finds the live lease");
    s.touch_edge("short", Duration::from_millis(100))
        .await
        .expect("touch");
    s.touch_edge("renewed", Duration::from_millis(100))
        .await
        .expect("touch");
    s.touch_edge("renewed", Duration::from_secs(60))
        .await
        .expect("touch");
    assert_eq!(s.claim_expired_edge(CLAIM).await.expect("claim"), None);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let claimed = s.claim_expired_edge(CLAIM).await.expect("claim");
    assert_eq!(claimed.as_deref(), Some("short"));
    assert_eq!(s.claim_expired_edge(CLAIM).await.expect("claim"), None);

    s.touch_edge("dead", Duration::ZERO).await.expect("touch");
    let claimed = s.claim_expired_edge(CLAIM).await.expect("claim");
    assert_eq!(claimed.as_deref(), Some("dead"));
    assert_eq!(s.claim_expired_edge(CLAIM).await.expect("claim"), None);
}

pub async fn expired_edges_go_to_exactly_one_claimer(s: Store) {
    let edges: Vec<String> = (0..50).map(|i| format!("edge-{i}")).collect();
    for edge in &edges {
        s.touch_edge(edge, Duration::ZERO).await.expect("touch");
    }
    s.touch_edge("alive", Duration::from_secs(60))
        .await
        .expect("touch");
    let mut claimers = JoinSet::new();
    for _ in 0..10 {
        let s = s.clone();
        claimers.spawn(async move {
            let mut mine = Vec::new();
            while let Some(edge) = s.claim_expired_edge(CLAIM).await.expect("claim") {
                mine.push(edge);
                tokio::task::yield_now().await;
            }
            mine
        });
    }
    let mut claimed = Vec::new();
    while let Some(mine) = claimers.join_next().await {
        claimed.extend(mine.expect("claimer"));
    }
    assert_eq!(sorted(claimed), sorted(edges), "each edge exactly once");
}

pub async fn edge_holdings_follow_counts_joins_and_users(s: Store) {
    assert!(s.edge_holdings("e1").await.expect("holdings").is_empty());
    s.set_edge_count("a", "public", "e1", 3)
        .await
        .expect("count");
    s.set_edge_count("a", "public", "e2", 1)
        .await
        .expect("count");
    s.join("a", "presence-p", "e1", "1.1", member("u"), 10)
        .await
        .expect("join");
    s.join("b", "presence-q", "e1", "1.2", member("v"), 10)
        .await
        .expect("join");
    s.join("b", "presence-q", "e2", "2.1", member("w"), 10)
        .await
        .expect("join");
    s.user_connect("b", "u", "e1", "1.1")
        .await
        .expect("connect");
    s.user_connect("a", "z", "e2", "2.1")
        .await
        .expect("connect");

    // Both backends know exactly what an edge holds, though the contract allows a superset.
    let e1 = vec![
        channel("a", "presence-p"),
        channel("a", "public"),
        channel("b", "presence-q"),
        user("b", "u"),
    ];
    assert_eq!(sorted(s.edge_holdings("e1").await.expect("holdings")), e1);
    let e2 = vec![
        channel("a", "public"),
        channel("b", "presence-q"),
        user("a", "z"),
    ];
    assert_eq!(sorted(s.edge_holdings("e2").await.expect("holdings")), e2);

    s.set_edge_count("a", "public", "e1", 0)
        .await
        .expect("count");
    s.leave("a", "presence-p", "e1", "1.1")
        .await
        .expect("leave");
    s.user_disconnect("b", "u", "e1", "1.1")
        .await
        .expect("disconnect");
    let e1 = vec![channel("b", "presence-q")];
    assert_eq!(sorted(s.edge_holdings("e1").await.expect("holdings")), e1);
    s.leave("b", "presence-q", "e1", "1.2")
        .await
        .expect("leave");
    assert!(s.edge_holdings("e1").await.expect("holdings").is_empty());
}

pub async fn reap_channel_removes_only_the_dead_edge(s: Store) {
    let ch = "presence-r";
    s.set_edge_count("a", ch, "e1", 2).await.expect("count");
    s.set_edge_count("a", ch, "e2", 3).await.expect("count");
    let joins = [
        ("e1", "1.1", "only-e1"),
        ("e1", "1.2", "both"),
        ("e2", "2.1", "both"),
        ("e2", "2.2", "only-e2"),
        ("e1", "1.3", "twice-on-e1"),
        ("e1", "1.4", "twice-on-e1"),
    ];
    for (edge, socket, user) in joins {
        s.join("a", ch, edge, socket, member(user), 100)
            .await
            .expect("join");
    }

    let r = s.reap_channel("a", ch, "e1").await.expect("reap");
    assert_eq!(
        r.transition,
        CountTransition {
            before: 5,
            after: 3
        }
    );
    assert_eq!(sorted(r.users_left), ["only-e1", "twice-on-e1"]);
    let members = s.members("a", ch).await.expect("members");
    assert_eq!(members, vec![member("both"), member("only-e2")]);
    assert_eq!(s.leave("a", ch, "e1", "1.2").await.expect("leave"), None);
    assert!(!s
        .edge_holdings("e1")
        .await
        .expect("holdings")
        .contains(&channel("a", ch)));

    let again = s.reap_channel("a", ch, "e1").await.expect("reap");
    assert_eq!(
        again.transition,
        CountTransition {
            before: 3,
            after: 3
        }
    );
    assert!(again.users_left.is_empty(), "reaping twice changes nothing");

    let r = s.reap_channel("a", ch, "e2").await.expect("reap");
    assert!(r.transition.vacated());
    assert_eq!(sorted(r.users_left), ["both", "only-e2"]);
    assert!(s.members("a", ch).await.expect("members").is_empty());
    assert!(s.occupied("a", "").await.expect("occupied").is_empty());

    let nothing = s
        .reap_channel("a", "presence-none", "e1")
        .await
        .expect("reap");
    assert_eq!(
        nothing.transition,
        CountTransition {
            before: 0,
            after: 0
        }
    );
    assert!(nothing.users_left.is_empty());
}

pub async fn reap_user_removes_only_the_dead_edge(s: Store) {
    s.user_connect("a", "u", "e1", "1.1")
        .await
        .expect("connect");
    s.user_connect("a", "u", "e1", "1.2")
        .await
        .expect("connect");
    s.user_connect("a", "u", "e2", "2.1")
        .await
        .expect("connect");
    s.user_connect("a", "v", "e1", "1.3")
        .await
        .expect("connect");
    let ids: Vec<String> = ["u", "v"].map(String::from).into();

    assert!(
        !s.reap_user("a", "u", "e1").await.expect("reap"),
        "u is still on e2"
    );
    assert_eq!(s.users_online("a", &ids).await.expect("online"), ["u", "v"]);
    assert!(s.reap_user("a", "v", "e1").await.expect("reap"));
    assert!(
        !s.reap_user("a", "v", "e1").await.expect("reap"),
        "reaping twice"
    );
    assert!(s.reap_user("a", "u", "e2").await.expect("reap"));
    assert!(s.users_online("a", &ids).await.expect("online").is_empty());
    assert!(!s.reap_user("a", "nobody", "e1").await.expect("reap"));
    assert!(s.edge_holdings("e1").await.expect("holdings").is_empty());
}

pub async fn forget_edge_ends_the_claim(s: Store) {
    s.touch_edge("gone", Duration::ZERO).await.expect("touch");
    s.touch_edge("kept", Duration::ZERO).await.expect("touch");
    let short = Duration::from_millis(100);
    let mut claimed = HashSet::new();
    while let Some(edge) = s.claim_expired_edge(short).await.expect("claim") {
        claimed.insert(edge);
    }
    assert_eq!(claimed.len(), 2);
    s.forget_edge("gone").await.expect("forget");
    s.forget_edge("never-seen").await.expect("forget");
    // "kept" was claimed but never forgotten: its reaper died, so it is claimable again.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut again = HashSet::new();
    while let Some(edge) = s.claim_expired_edge(CLAIM).await.expect("claim") {
        again.insert(edge);
    }
    assert_eq!(again, HashSet::from(["kept".to_string()]));
}

pub async fn an_expired_but_unclaimed_lease_is_still_intact(s: Store) {
    s.touch_edge("late", Duration::ZERO).await.expect("touch");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let live = s
        .touch_edge("late", Duration::from_secs(60))
        .await
        .expect("touch");
    assert!(live, "nobody reaped it, so its state is intact");
    assert_eq!(s.claim_expired_edge(CLAIM).await.expect("claim"), None);
}

pub async fn a_reaped_edge_learns_it_lost_its_lease(s: Store) {
    s.touch_edge("zombie", Duration::from_secs(60))
        .await
        .expect("touch");
    s.touch_edge("zombie", Duration::ZERO).await.expect("touch");
    let claimed = s.claim_expired_edge(CLAIM).await.expect("claim");
    assert_eq!(claimed.as_deref(), Some("zombie"));
    let live = s
        .touch_edge("zombie", Duration::from_secs(60))
        .await
        .expect("touch");
    assert!(
        !live,
        "the heartbeat after a reap must report the lease as lost"
    );
}
