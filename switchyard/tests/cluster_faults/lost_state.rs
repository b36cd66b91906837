//! State core lost or never heard of: Redis losing every key, and a leave sent while core was
//! down. Neither may leave a ghost member behind.

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
