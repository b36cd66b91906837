//! channel-core: a restart loses no state.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster::*;
use crate::support::{string_data, Rest, WAIT};

use super::{channel_info, expect_event};

/// Everything the REST API reports about the test's channels.
async fn snapshot(rest: &Rest, presence: &str, public: &str) -> Result<Value, String> {
    let users = users(rest, presence).await?;
    let (s1, p) = channel_info(rest, presence, "user_count,subscription_count").await;
    let (s2, q) = channel_info(rest, public, "subscription_count").await;
    if (s1, s2) != (200, 200) {
        return Err(format!("{s1} {p} / {s2} {q}"));
    }
    let names = channel_names(rest).await?;
    Ok(json!({"users": users, "presence": p, "public": q, "channels": names}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_channel_core_loses_no_state() {
    let mut c = TestCluster::start(Options::default()).await;
    let rest = c.rest();
    let presence = c.name("presence-r");
    let public = c.name("pub-r");

    let mut a = c.connect(0).await;
    join_presence(&mut a, &presence, "A").await;
    let mut b = c.connect(1).await;
    join_presence(&mut b, &presence, "B").await;
    expect_event(&mut a, "pusher_internal:member_added", &presence).await;
    let mut p1 = c.connect(0).await;
    p1.subscribe(&public).await;
    let mut p2 = c.connect(1).await;
    p2.subscribe(&public).await;

    let mut names = vec![presence.clone(), public.clone()];
    names.sort();
    let expected = json!({
        "users": ["A", "B"],
        "presence": {"occupied": true, "user_count": 2, "subscription_count": 2},
        "public": {"occupied": true, "subscription_count": 2},
        "channels": names,
    });
    let before = poll_until("the state before the restart", WAIT, || async {
        let snap = snapshot(&rest, &presence, &public).await?;
        if snap == expected {
            Ok(snap)
        } else {
            Err(snap.to_string())
        }
    })
    .await;

    c.cores[0].kill();
    let killed = Instant::now();
    // While core is down, queries fail at once with 503 and a JSON message (no hang).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = rest.get("/channels", &[]).await;
    assert_eq!(status, 503, "GET /channels with channel-core down: {body}");
    assert!(
        body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "503 body must carry an error message: {body}"
    );
    // Back well within the edges' lease (3 s), so no edge may be reaped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.cores[0].restart().await;
    eprintln!("channel-core back after {:?}", killed.elapsed());
    for edge in &mut c.edges {
        edge.wait_ready(Duration::from_secs(5)).await;
    }
    c.api.wait_ready(Duration::from_secs(5)).await;

    // The same answers as before: the state lives in Redis, not in the core process.
    let after = poll_until("the API to answer after the restart", WAIT, || async {
        snapshot(&rest, &presence, &public).await
    })
    .await;
    assert_eq!(after, before, "REST state after restarting channel-core");

    // New subscriptions work through the restarted core.
    let mut cc = c.connect(1).await;
    let joined = join_presence(&mut cc, &presence, "C").await;
    assert_eq!(joined["presence"]["count"], json!(3), "{joined}");
    let mut ids: Vec<String> = joined["presence"]["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().unwrap_or("?").to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["A", "B", "C"]);
    for (who, client) in [("A", &mut a), ("B", &mut b)] {
        let added = expect_event(client, "pusher_internal:member_added", &presence).await;
        assert_eq!(string_data(&added)["user_id"], json!("C"), "{who}: {added}");
    }
    let mut p3 = c.connect(0).await;
    p3.subscribe(&public).await;
    let fresh = c.name("pub-r2");
    let mut p4 = c.connect(0).await;
    p4.subscribe(&fresh).await;
    poll_until("counts after new subscribes", WAIT, || async {
        let (s, body) = channel_info(&rest, &public, "subscription_count").await;
        let names = channel_names(&rest).await?;
        if s == 200 && body["subscription_count"] == json!(3) && names.contains(&fresh) {
            Ok(())
        } else {
            Err(format!("{s} {body} {names:?}"))
        }
    })
    .await;
    assert_eq!(
        users(&rest, &presence).await,
        Ok(vec!["A".into(), "B".into(), "C".into()])
    );

    // Nobody was sent away: every old connection still receives.
    rest.trigger(&public, "after-restart", "1").await;
    for client in [&mut p1, &mut p2, &mut p3] {
        let ev = expect_event(client, "after-restart", &public).await;
        assert_eq!(ev["data"], json!("1"), "{ev}");
    }
    a.ping_pong().await;
    b.ping_pong().await;
    eprintln!("core restart test done in {:?}", c.elapsed());
}
