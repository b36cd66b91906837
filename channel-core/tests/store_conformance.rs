//! One conformance suite for every `ChannelStore` backend: each case runs against the memory
//! store and against Redis at 127.0.0.1:6379, and both must behave the same.
//!
//! Every method of every store trait is in at least one case:
//!
//! | trait | cases |
//! |---|---|
//! | `CountStore` | `counts_*`, `occupied_*`, `names_*` here; `support/concurrency.rs` |
//! | `PresenceStore` | `presence_*`, `members_*`, `member_*`, `leave_*`; `support/concurrency.rs` |
//! | `CacheStore` | `cache_*` here |
//! | `UserStore` | `users_online_*` here |
//! | `LeaseStore` | `support/edges.rs`, `support/fencing.rs`; `reap_connections` in `support/limits.rs` |
//! | `LimitStore` | connections in `support/limits.rs`, `take_quota` in `support/quotas.rs` |
//! | `HoldStore` | `support/holds.rs` |
//! | `OutboxStore` | `support/outbox.rs` |

mod support;

use std::time::Duration;

use channel_core::{ChannelCounts, CoreError, CountTransition, LeaveResult};
use support::concurrency::*;
use support::edges::*;
use support::fencing::*;
use support::holds::*;
use support::limits::*;
use support::outbox::*;
use support::quotas::*;
use support::{member, Store};

conformance!(
    counts_sum_across_edges,
    presence_first_and_last_across_edges_and_sockets,
    members_keep_join_order_and_first_user_info,
    membership_numbers_count_each_change_and_outlive_the_channel,
    member_limit_refuses_only_new_users,
    leave_of_a_non_member_is_none,
    occupied_filters_by_prefix_with_user_counts,
    names_with_separators_stay_apart,
    cache_keeps_frame_until_ttl,
    users_online_first_and_last,
    leases_are_claimed_only_after_expiry,
    expired_edges_go_to_exactly_one_claimer,
    edge_holdings_follow_counts_joins_and_users,
    reap_channel_removes_only_the_dead_edge,
    reap_user_removes_only_the_dead_edge,
    forget_edge_ends_the_claim,
    a_reaped_edge_learns_it_lost_its_lease,
    a_fenced_edge_cannot_add_but_can_remove,
    a_reaped_edge_never_gets_a_lease_again,
    a_write_before_the_first_beat_is_covered_by_a_lease,
    an_expired_but_unclaimed_lease_is_still_intact,
    concurrent_joins_and_leaves_decide_once,
    concurrent_count_reports_occupy_and_vacate_once,
    admit_caps_at_max_across_edges,
    max_zero_means_no_limit_but_still_counts,
    release_never_goes_below_zero,
    reap_connections_drops_only_the_dead_edge,
    connection_holdings_appear_in_edge_holdings,
    concurrent_admits_never_exceed_max,
    take_quota_allows_exactly_per_second_and_a_refusal_takes_nothing,
    quota_buckets_and_apps_are_apart,
    concurrent_takes_share_one_allowance,
    an_exhausted_quota_allows_again_in_a_later_window,
    holds_come_due_only_after_their_time,
    cancel_is_true_only_while_a_hold_is_pending,
    a_claimed_hold_cannot_be_cancelled,
    a_newer_hold_replaces_the_older,
    a_claimed_hold_comes_due_again_only_after_the_claim,
    forget_keeps_a_newer_hold_of_the_same_key,
    claims_respect_the_limit_and_hand_out_each_hold_once,
    concurrent_claimers_get_each_hold_once,
    changes_write_their_effects_in_order,
    reaping_writes_the_removals_and_the_count,
    an_unforgotten_effect_comes_back_after_its_claim,
);

fn counts(subscription_count: u64, user_count: u64) -> ChannelCounts {
    ChannelCounts {
        subscription_count,
        user_count,
    }
}

async fn counts_sum_across_edges(s: Store) {
    let t = s.set_edge_count("a", "c", "e1", 2).await.expect("count");
    assert_eq!(
        t,
        CountTransition {
            before: 0,
            after: 2
        }
    );
    assert!(t.occupied());
    let t = s.set_edge_count("a", "c", "e2", 3).await.expect("count");
    assert_eq!((t.before, t.after), (2, 5));
    let t = s.set_edge_count("a", "c", "e1", 1).await.expect("count");
    assert_eq!((t.before, t.after), (5, 4));
    assert_eq!(s.counts("a", "c").await.expect("counts"), counts(4, 0));
    assert_eq!(s.counts("b", "c").await.expect("counts"), counts(0, 0));
    let t = s.set_edge_count("a", "c", "e1", 0).await.expect("count");
    assert_eq!((t.before, t.after), (4, 3));
    let t = s.set_edge_count("a", "c", "e1", 0).await.expect("count");
    assert_eq!(
        (t.before, t.after),
        (3, 3),
        "a repeated report changes nothing"
    );
    let t = s.set_edge_count("a", "c", "e2", 0).await.expect("count");
    assert!(t.vacated());
    assert_eq!(s.counts("a", "c").await.expect("counts"), counts(0, 0));
    assert!(s.occupied("a", "").await.expect("occupied").is_empty());
}

async fn presence_first_and_last_across_edges_and_sockets(s: Store) {
    let ch = "presence-room";
    let j = s.join("a", ch, "e1", "1.1", member("u"), 100).await;
    assert!(j.expect("join").first);
    let j = s.join("a", ch, "e1", "1.1", member("u"), 100).await;
    assert!(
        !j.expect("join").first,
        "the same socket again is no new user"
    );
    let j = s.join("a", ch, "e1", "1.2", member("u"), 100).await;
    assert!(!j.expect("join").first);
    let j = s.join("a", ch, "e2", "1.1", member("u"), 100).await;
    let j = j.expect("join");
    assert!(
        !j.first,
        "the same socket id on another edge is another connection"
    );
    assert_eq!(j.members, vec![member("u")]);
    assert_eq!(s.counts("a", ch).await.expect("counts"), counts(0, 1));

    let not_last = Some(LeaveResult {
        user_id: "u".into(),
        last: false,
        seq: 1,
    });
    assert_eq!(
        s.leave("a", ch, "e1", "1.1").await.expect("leave"),
        not_last
    );
    assert_eq!(
        s.leave("a", ch, "e1", "1.2").await.expect("leave"),
        not_last
    );
    let last = s.leave("a", ch, "e2", "1.1").await.expect("leave");
    assert_eq!(last.map(|l| l.last), Some(true));
    assert_eq!(s.leave("a", ch, "e2", "1.1").await.expect("leave"), None);
    assert!(s.members("a", ch).await.expect("members").is_empty());
    assert_eq!(s.counts("a", ch).await.expect("counts"), counts(0, 0));

    let j = s.join("a", ch, "e1", "1.1", member("u"), 100).await;
    assert!(j.expect("join").first, "a user who left is new again");
}

async fn membership_numbers_count_each_change_and_outlive_the_channel(s: Store) {
    let ch = "presence-seq";
    let seq = |j: Result<channel_core::JoinResult, CoreError>| j.expect("join").seq;
    assert_eq!(seq(s.join("a", ch, "e1", "1.1", member("u"), 10).await), 1);
    assert_eq!(seq(s.join("a", ch, "e1", "1.2", member("v"), 10).await), 2);
    assert_eq!(
        seq(s.join("a", ch, "e2", "2.1", member("u"), 10).await),
        2,
        "a further connection of a member changes nothing"
    );
    let left = s.leave("a", ch, "e1", "1.1").await.expect("leave");
    assert_eq!(left.map(|l| (l.last, l.seq)), Some((false, 2)));
    let left = s.leave("a", ch, "e2", "2.1").await.expect("leave");
    assert_eq!(left.map(|l| (l.last, l.seq)), Some((true, 3)));
    let now = s.presence("a", ch).await.expect("presence");
    assert_eq!((now.members, now.seq), (vec![member("v")], 3));

    let reaped = s.reap_channel("a", ch, "e1").await.expect("reap");
    assert_eq!((reaped.users_left, reaped.seq), (vec!["v".to_owned()], 4));
    let now = s.presence("a", ch).await.expect("presence");
    assert_eq!(
        (now.members.len(), now.seq),
        (0, 4),
        "empty keeps its number"
    );
    assert_eq!(
        seq(s.join("a", ch, "e1", "1.3", member("w"), 10).await),
        5,
        "a channel that fills again counts on, so no edge takes a new event for an old one"
    );
}

async fn members_keep_join_order_and_first_user_info(s: Store) {
    let ch = "presence-order";
    for (i, user) in ["carol", "alice", "bob"].iter().enumerate() {
        let socket = format!("1.{i}");
        s.join("a", ch, "e", &socket, member(user), 100)
            .await
            .expect("join");
    }
    let renamed = switchyard_protocol::presence::Member {
        user_id: "alice".into(),
        user_info: "{\"name\":\"other\"}".into(),
    };
    let j = s
        .join("a", ch, "e", "1.9", renamed, 100)
        .await
        .expect("join");
    let expected = vec![member("carol"), member("alice"), member("bob")];
    assert_eq!(j.members, expected, "join order; the first user_info stays");
    assert_eq!(s.members("a", ch).await.expect("members"), expected);

    s.leave("a", ch, "e", "1.0").await.expect("leave");
    let j = s.join("a", ch, "e", "2.0", member("carol"), 100).await;
    let expected = vec![member("alice"), member("bob"), member("carol")];
    assert_eq!(
        j.expect("join").members,
        expected,
        "a returning user joins last"
    );
    assert_eq!(s.members("a", ch).await.expect("members"), expected);
    assert!(s
        .members("a", "presence-none")
        .await
        .expect("members")
        .is_empty());
}

async fn member_limit_refuses_only_new_users(s: Store) {
    let ch = "presence-small";
    s.join("a", ch, "e1", "1.1", member("u1"), 2)
        .await
        .expect("join");
    s.join("a", ch, "e1", "1.2", member("u2"), 2)
        .await
        .expect("join");
    let full = s.join("a", ch, "e2", "2.1", member("u3"), 2).await;
    assert!(matches!(full, Err(CoreError::PresenceFull(2))), "{full:?}");
    let j = s.join("a", ch, "e2", "2.2", member("u1"), 2).await;
    let j = j.expect("an existing user's further connection is never refused");
    assert_eq!(j.members, vec![member("u1"), member("u2")]);
    assert_eq!(s.counts("a", ch).await.expect("counts"), counts(0, 2));

    s.leave("a", ch, "e1", "1.2").await.expect("leave");
    let j = s
        .join("a", ch, "e2", "2.1", member("u3"), 2)
        .await
        .expect("join");
    assert!(j.first);
    assert_eq!(j.members, vec![member("u1"), member("u3")]);

    let none = s
        .join("a", "presence-zero", "e1", "1.1", member("u"), 0)
        .await;
    assert!(matches!(none, Err(CoreError::PresenceFull(0))));
    assert!(s
        .members("a", "presence-zero")
        .await
        .expect("members")
        .is_empty());
}

async fn leave_of_a_non_member_is_none(s: Store) {
    let ch = "presence-x";
    assert_eq!(s.leave("a", ch, "e", "1.1").await.expect("leave"), None);
    s.join("a", ch, "e", "1.1", member("u"), 10)
        .await
        .expect("join");
    assert_eq!(s.leave("a", ch, "e", "1.2").await.expect("leave"), None);
    assert_eq!(s.leave("a", ch, "other", "1.1").await.expect("leave"), None);
    assert_eq!(s.leave("b", ch, "e", "1.1").await.expect("leave"), None);
    assert_eq!(
        s.leave("a", "presence-y", "e", "1.1").await.expect("leave"),
        None
    );
    assert_eq!(
        s.members("a", ch).await.expect("members"),
        vec![member("u")]
    );
}

async fn occupied_filters_by_prefix_with_user_counts(s: Store) {
    for (ch, n) in [
        ("presence-b", 2),
        ("private-a", 1),
        ("presence-a", 3),
        ("public", 4),
        ("presence", 1),
    ] {
        s.set_edge_count("app", ch, "e", n).await.expect("count");
    }
    s.set_edge_count("other-app", "presence-c", "e", 1)
        .await
        .expect("count");
    for (socket, user) in [("1.1", "u1"), ("1.2", "u2"), ("1.3", "u2")] {
        s.join("app", "presence-a", "e", socket, member(user), 100)
            .await
            .expect("join");
    }
    // Members without a subscriber count do not make a channel occupied.
    s.join("app", "presence-members-only", "e", "1.4", member("u"), 100)
        .await
        .expect("join");

    let all = s.occupied("app", "").await.expect("occupied");
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "presence",
            "presence-a",
            "presence-b",
            "private-a",
            "public"
        ]
    );
    let presence = s.occupied("app", "presence-").await.expect("occupied");
    assert_eq!(
        presence,
        vec![
            ("presence-a".to_string(), counts(3, 2)),
            ("presence-b".to_string(), counts(2, 0)),
        ]
    );
    assert!(s
        .occupied("app", "presence-z")
        .await
        .expect("occupied")
        .is_empty());
    assert!(s.occupied("app", "q").await.expect("occupied").is_empty());
    assert!(s.occupied("nobody", "").await.expect("occupied").is_empty());

    s.set_edge_count("app", "presence-b", "e", 0)
        .await
        .expect("count");
    let presence = s.occupied("app", "presence-").await.expect("occupied");
    assert_eq!(presence, vec![("presence-a".to_string(), counts(3, 2))]);
}

async fn names_with_separators_stay_apart(s: Store) {
    let names = [
        "a",
        "a:b",
        "a:b:c",
        "a,b;c.d=e@f-g_h",
        "b:c",
        "}",
        "%7D",
        "a:cnt:b",
    ];
    for (i, app) in names.iter().enumerate() {
        for (j, ch) in names.iter().enumerate() {
            for (k, edge) in names.iter().enumerate() {
                let n = (i * 100 + j * 10 + k + 1) as u64;
                s.set_edge_count(app, ch, edge, n).await.expect("count");
            }
            s.join(app, ch, "a", "b:c", member(ch), 100)
                .await
                .expect("join");
            s.join(app, ch, "a:b", "c", member(app), 100)
                .await
                .expect("join");
        }
    }
    for (i, app) in names.iter().enumerate() {
        for (j, ch) in names.iter().enumerate() {
            let total: u64 = (0..names.len())
                .map(|k| (i * 100 + j * 10 + k + 1) as u64)
                .sum();
            let users = if app == ch { 1 } else { 2 };
            let got = s.counts(app, ch).await.expect("counts");
            assert_eq!(got, counts(total, users), "{app} {ch}");
        }
        let occupied = s.occupied(app, "a:").await.expect("occupied");
        let names: Vec<&str> = occupied.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a:b", "a:b:c", "a:cnt:b"]);
    }
    let left = s.leave("a", "a", "a", "b:c").await.expect("leave");
    assert_eq!(left.map(|l| (l.user_id, l.last)), Some(("a".into(), false)));
    let left = s.leave("a", "a", "a:b", "c").await.expect("leave");
    assert_eq!(left.map(|l| (l.user_id, l.last)), Some(("a".into(), true)));
}

async fn cache_keeps_frame_until_ttl(s: Store) {
    assert_eq!(s.cache_get("a", "cache-x").await.expect("get"), None);
    s.cache_put("a", "cache-x", "f1".into(), Duration::from_secs(60))
        .await
        .expect("put");
    s.cache_put("a", "cache-x", "f2".into(), Duration::from_secs(60))
        .await
        .expect("put");
    let (frame, ttl) = s
        .cache_get("a", "cache-x")
        .await
        .expect("get")
        .expect("hit");
    assert_eq!(frame, "f2");
    assert!(
        ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(58),
        "{ttl:?}"
    );
    assert_eq!(s.cache_get("b", "cache-x").await.expect("get"), None);

    s.cache_put("a", "cache-x", "f3".into(), Duration::ZERO)
        .await
        .expect("put");
    assert_eq!(s.cache_get("a", "cache-x").await.expect("get"), None);

    s.cache_put("a", "cache-y", "g".into(), Duration::from_millis(100))
        .await
        .expect("put");
    assert!(s.cache_get("a", "cache-y").await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(s.cache_get("a", "cache-y").await.expect("get"), None);
}

async fn users_online_first_and_last(s: Store) {
    assert!(s
        .user_connect("a", "u", "e1", "1.1")
        .await
        .expect("connect"));
    assert!(!s
        .user_connect("a", "u", "e1", "1.2")
        .await
        .expect("connect"));
    assert!(!s
        .user_connect("a", "u", "e2", "1.1")
        .await
        .expect("connect"));
    assert!(s
        .user_connect("a", "v", "e1", "1.3")
        .await
        .expect("connect"));
    let ids: Vec<String> = ["w", "v", "u", "x"].map(String::from).into();
    let online = s.users_online("a", &ids).await.expect("online");
    assert_eq!(online, ["v", "u"], "in the order asked");
    assert!(s.users_online("b", &ids).await.expect("online").is_empty());
    assert!(s.users_online("a", &[]).await.expect("online").is_empty());

    assert!(!s
        .user_disconnect("a", "u", "e1", "9.9")
        .await
        .expect("disconnect"));
    assert!(!s
        .user_disconnect("a", "u", "e1", "1.1")
        .await
        .expect("disconnect"));
    assert!(!s
        .user_disconnect("a", "u", "e1", "1.2")
        .await
        .expect("disconnect"));
    assert!(s
        .user_disconnect("a", "u", "e2", "1.1")
        .await
        .expect("disconnect"));
    assert!(!s
        .user_disconnect("a", "u", "e2", "1.1")
        .await
        .expect("disconnect"));
    assert_eq!(s.users_online("a", &ids).await.expect("online"), ["v"]);
    assert!(s
        .user_connect("a", "u", "e1", "1.1")
        .await
        .expect("connect"));
}
