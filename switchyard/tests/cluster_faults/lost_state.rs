//! State lost on the way: Redis losing every key, a leave sent while core was down, membership
//! events published while NATS was down. None may leave a member list wrong.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::*;
use crate::support::{string_data, Client, Incoming, WAIT};

use super::expect_event;

/// A lease (3 s), a reap pass and a margin.
const REAPED_WITHIN: Duration = Duration::from_secs(8);

/// Waits for the server to close `client`; returns the close code.
async fn closed(client: &mut Client, bound: Duration) -> u16 {
    let deadline = Instant::now() + bound;
    loop {
        match client
            .next_within(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Some(Incoming::Json(_)) => continue,
            Some(Incoming::Close(code, _)) => return code,
            other => panic!("expected a close within {bound:?}, got {other:?}"),
        }
    }
}

async fn expect_users(rest: &crate::support::Rest, channel: &str, want: &[&str], bound: Duration) {
    let want: Vec<String> = want.iter().map(|u| u.to_string()).collect();
    poll_until(
        &format!("users of {channel} to be {want:?}"),
        bound,
        || async {
            let now = users(rest, channel).await?;
            if now == want {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;
}

/// Redis without persistence restarts empty. The edges learn it from their next heartbeat,
/// send their clients to reconnect under new ids, and a later crash of an edge is reaped as
/// usual: no ghost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_loses_every_key_a_killed_edge_leaves_no_ghost() {
    let mut c = TestCluster::start(Options {
        private_redis: true,
        ..Options::default()
    })
    .await;
    let rest = c.rest();
    let presence = c.name("presence-lost");
    let mut a = c.connect(0).await;
    join_presence(&mut a, &presence, "A").await;
    let mut b = c.connect(1).await;
    join_presence(&mut b, &presence, "B").await;
    expect_users(&rest, &presence, &["A", "B"], WAIT).await;

    let flushed = Command::new("redis-cli")
        .args(["-p", &c.redis_port.to_string(), "FLUSHALL"])
        .output()
        .expect("redis-cli");
    assert!(flushed.status.success(), "{flushed:?}");

    // Both edges send their clients away (4200) within a few heartbeats.
    for client in [&mut a, &mut b] {
        assert_eq!(closed(client, Duration::from_secs(10)).await, 4200);
    }
    let mut a = c.connect(0).await;
    join_presence(&mut a, &presence, "A").await;
    let mut b = c.connect(1).await;
    join_presence(&mut b, &presence, "B").await;
    expect_users(&rest, &presence, &["A", "B"], WAIT).await;

    c.edges[1].kill();
    let removed = recv_event_within(
        &mut a,
        "pusher_internal:member_removed",
        Some(&presence),
        REAPED_WITHIN,
    )
    .await;
    assert_eq!(string_data(&removed), json!({"user_id": "B"}), "{removed}");
    expect_users(&rest, &presence, &["A"], WAIT).await;
    a.ping_pong().await;
}

/// A client leaves while channel-core is down: the edge keeps the leave and sends it once core
/// is back, so the member does not stay for as long as the edge lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_while_core_is_down_is_sent_when_it_returns() {
    let mut c = TestCluster::start(Options::default()).await;
    let rest = c.rest();
    let presence = c.name("presence-later");
    let mut a = c.connect(0).await;
    join_presence(&mut a, &presence, "A").await;
    let mut b = c.connect(1).await;
    join_presence(&mut b, &presence, "B").await;
    expect_event(&mut a, "pusher_internal:member_added", &presence).await;

    c.cores[0].kill();
    b.close().await;
    // Give the edge time to try the leave against the dead core.
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.cores[0].restart().await;

    let removed = recv_event_within(
        &mut a,
        "pusher_internal:member_removed",
        Some(&presence),
        REAPED_WITHIN,
    )
    .await;
    assert_eq!(string_data(&removed), json!({"user_id": "B"}), "{removed}");
    expect_users(&rest, &presence, &["A"], WAIT).await;
}

/// Applies the membership events `client` receives to `list` (as pusher-js does) until it
/// equals `want`; panics with the list it has after `bound`.
async fn list_becomes(
    client: &mut Client,
    channel: &str,
    list: &mut BTreeSet<String>,
    want: &[&str],
    bound: Duration,
) -> Duration {
    let started = Instant::now();
    let want: BTreeSet<String> = want.iter().map(|u| u.to_string()).collect();
    while *list != want {
        let left = bound.saturating_sub(started.elapsed());
        match client.next_within(left).await {
            Some(Incoming::Json(v)) if v["channel"] == channel => {
                let user = string_data(&v)["user_id"].as_str().map(str::to_owned);
                match (v["event"].as_str(), user) {
                    (Some("pusher_internal:member_added"), Some(u)) => {
                        list.insert(u);
                    }
                    (Some("pusher_internal:member_removed"), Some(u)) => {
                        list.remove(&u);
                    }
                    _ => {}
                }
            }
            Some(Incoming::Json(_)) => {}
            other => panic!("list {list:?}, want {want:?}; then {other:?}"),
        }
    }
    started.elapsed()
}

/// Members leave and join on one edge while NATS is down, so the other edge's client misses
/// the events. Once NATS is back, that edge re-reads the channel and brings the list right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_lists_are_right_again_after_a_nats_outage() {
    let mut c = TestCluster::start(Options {
        private_nats: true,
        ..Options::default()
    })
    .await;
    let rest = c.rest();
    let presence = c.name("presence-gap");
    let mut watcher = c.connect(0).await;
    join_presence(&mut watcher, &presence, "O").await;
    let mut list: BTreeSet<String> = ["O".to_owned()].into();
    let mut members = Vec::new();
    for user in ["X", "Y1", "Y2"] {
        let mut client = c.connect(1).await;
        join_presence(&mut client, &presence, user).await;
        members.push(client);
    }
    list_becomes(
        &mut watcher,
        &presence,
        &mut list,
        &["O", "X", "Y1", "Y2"],
        WAIT,
    )
    .await;

    c.nats_backend().kill();
    // Y1 and Y2 leave and Z1, Z2 join on edge 2 while the bus is down.
    members.pop().expect("Y2").close().await;
    members.pop().expect("Y1").close().await;
    for user in ["Z1", "Z2"] {
        let mut client = c.connect(1).await;
        join_presence(&mut client, &presence, user).await;
        members.push(client);
    }
    expect_users(&rest, &presence, &["O", "X", "Z1", "Z2"], WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.nats_backend().start().await;
    let restarted = Instant::now();

    // Within 5 s of NATS returning (the target), bounded generously here.
    list_becomes(
        &mut watcher,
        &presence,
        &mut list,
        &["O", "X", "Z1", "Z2"],
        Duration::from_secs(15),
    )
    .await;
    eprintln!(
        "the watcher's list was right {:?} after NATS returned",
        restarted.elapsed()
    );
}
