//! Per-app limits in the distributed mode, counted across the cluster: connections over two
//! edges (4004), backend events and read requests per second over the API (429), presence
//! members over two edges. Each must trigger exactly at its limit.

mod cluster;
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cluster::*;
use serde_json::json;
use support::{data_of, open_ws, Client, Incoming, WAIT};

/// Sleeps until just after the next whole second, so a burst stays inside one quota window
/// (Redis's clock is this machine's clock).
async fn start_of_a_second() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let left = 1000 - u64::from(now.subsec_millis()) + 30;
    tokio::time::sleep(Duration::from_millis(left)).await;
}

fn presence_auth(c: &Client, channel: &str, data: &str) -> String {
    support::token(
        CLUSTER_SECRET,
        CLUSTER_KEY,
        &switchyard_protocol::signature::presence_string(&c.socket_id, channel, data),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_the_cluster() {
    let c = TestCluster::start(Options {
        app: "max_connections = 3\nmax_backend_events_per_second = 5\n\
              max_read_requests_per_second = 4\nmax_presence_members = 2\n"
            .into(),
        ..Options::default()
    })
    .await;

    // Connections: 3 across both edges, then either edge refuses with 4004.
    let first = c.connect(0).await;
    let mut second = c.connect(1).await;
    let mut third = c.connect(0).await;
    for edge in 0..2 {
        let mut refused = open_ws(c.edges[edge].addr(), CLUSTER_KEY).await;
        let (code, _) = refused.expect_close().await;
        assert_eq!(code, 4004, "the 4th connection, on edge {}", edge + 1);
    }
    first.close().await;
    // The slot is given back when the connection ends (asynchronously): poll for it.
    let mut fourth = poll_until(
        "a freed connection slot",
        Duration::from_secs(5),
        || async {
            let mut c = open_ws(c.edges[1].addr(), CLUSTER_KEY).await;
            match c.next_within(WAIT).await {
                Some(Incoming::Json(v)) if v["event"] == "pusher:connection_established" => {
                    c.socket_id = data_of(&v)["socket_id"].as_str().unwrap_or("").to_owned();
                    Ok(c)
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // Presence: two users across the edges; a third is refused, a second socket of a
    // present user is not.
    let channel = c.name("presence-limit");
    join_presence(&mut second, &channel, "u1").await;
    join_presence(&mut third, &channel, "u2").await;
    let data = json!({"user_id": "u3", "user_info": {}}).to_string();
    let auth = presence_auth(&fourth, &channel, &data);
    fourth
        .send_subscribe(&channel, Some(&auth), Some(&data))
        .await;
    let refused = fourth.recv_subscription_error().await;
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
    join_presence(&mut fourth, &channel, "u1").await;

    let rest = c.rest();
    // Read requests: the GET above may share this window; start a fresh one.
    start_of_a_second().await;
    for i in 1..=4 {
        let (status, body) = rest.get("/channels", &[]).await;
        assert_eq!(status, 200, "read {i}: {body}");
    }
    let (status, body) = rest.get("/channels", &[]).await;
    assert_eq!(status, 429, "the 5th read in a second: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("4 read requests per second"),
        "{body}"
    );

    // Backend events: 5 per second, each event of a batch counting; a refused batch takes
    // nothing from the allowance.
    start_of_a_second().await;
    let event = |n: usize| json!({"name": "e", "channel": "limits", "data": n.to_string()});
    let batch = |n: usize| json!({"batch": (0..n).map(event).collect::<Vec<_>>()});
    assert_eq!(rest.post("/batch_events", &batch(3)).await.0, 200);
    let (status, body) = rest.post("/batch_events", &batch(3)).await;
    assert_eq!(status, 429, "3 + 3 events in a second: {body}");
    assert_eq!(
        rest.post("/events", &event(4)).await.0,
        200,
        "the 4th event"
    );
    assert_eq!(
        rest.post("/events", &event(5)).await.0,
        200,
        "the 5th event"
    );
    let (status, body) = rest.post("/events", &event(6)).await;
    assert_eq!(status, 429, "the 6th event: {body}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rest.post("/events", &event(7)).await.0, 200, "a new second");
}
