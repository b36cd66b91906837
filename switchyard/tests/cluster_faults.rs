//! Distributed mode under faults: a killed edge, a restarted channel-core, a restarted NATS,
//! Redis down, and the cross-edge paths every fault test relies on. Each test runs real
//! processes (see `cluster/mod.rs`); every wait is bounded.

mod cluster;
mod support;

use std::time::{Duration, Instant};

use cluster::*;
use serde_json::{json, Value};
use support::{event_of, string_data, Client, Incoming, Rest, QUIET, WAIT};

/// Upper bound for a killed edge's state to be gone everywhere: lease (3 s) + reap interval
/// (0.25 s) + margin, under the 8 s the brief allows.
const REAPED_WITHIN: Duration = Duration::from_millis(7500);

/// `GET /channels/{channel}` with `info`, as (status, body).
async fn channel_info(rest: &Rest, channel: &str, info: &str) -> (u16, Value) {
    rest.get(&format!("/channels/{channel}"), &[("info", info)])
        .await
}

/// Waits until `client` receives an event `name` (bounded), skipping other frames.
async fn expect_event(client: &mut Client, name: &str, channel: &str) -> Value {
    recv_event_within(client, name, Some(channel), WAIT).await
}

// ---------------------------------------------------------------------------------------------
// 1. Edge crash

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_edge_is_reaped_with_events_and_webhooks() {
    let mut c = TestCluster::start(Options {
        webhooks: true,
        ..Options::default()
    })
    .await;
    let rest = c.rest();
    let presence = c.name("presence-x");
    let public = c.name("pub-x");

    let mut a = c.connect(0).await;
    join_presence(&mut a, &presence, "A").await;
    let mut b = c.connect(1).await;
    let joined = join_presence(&mut b, &presence, "B").await;
    assert_eq!(joined["presence"]["count"], json!(2), "{joined}");
    let added = expect_event(&mut a, "pusher_internal:member_added", &presence).await;
    assert_eq!(string_data(&added)["user_id"], json!("B"), "{added}");
    b.subscribe(&public).await;

    // Before the crash the cluster sees B's channel and both members, and webhooks flow.
    poll_until(&format!("{public} to be listed"), WAIT, || async {
        let names = channel_names(&rest).await?;
        if names.contains(&public) && names.contains(&presence) {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;
    assert_eq!(
        users(&rest, &presence).await,
        Ok(vec!["A".into(), "B".into()])
    );
    c.hooks()
        .wait_for(
            "channel_occupied for pub-x",
            Duration::from_secs(10),
            |ev| {
                count_events(ev, "channel_occupied", &public, None) == 1
                    && count_events(ev, "member_added", &presence, Some("B")) == 1
            },
        )
        .await;

    c.edges[1].kill();
    let killed = Instant::now();

    // A hears that B left, through core's reaper (B's socket never closed cleanly).
    let removed = recv_event_within(
        &mut a,
        "pusher_internal:member_removed",
        Some(&presence),
        REAPED_WITHIN,
    )
    .await;
    let took = killed.elapsed();
    eprintln!("member_removed reached A {took:?} after the kill");
    assert_eq!(string_data(&removed), json!({"user_id": "B"}), "{removed}");

    // The REST API forgets B's public channel and B's membership.
    let left = REAPED_WITHIN.saturating_sub(killed.elapsed());
    poll_until(&format!("{public} to be vacated"), left, || async {
        let names = channel_names(&rest).await?;
        if !names.contains(&public) && names.contains(&presence) {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;
    assert_eq!(users(&rest, &presence).await, Ok(vec!["A".into()]));
    let (status, body) = channel_info(&rest, &public, "subscription_count").await;
    assert_eq!(
        (status, &body),
        (200, &json!({"occupied": false, "subscription_count": 0})),
        "{public} after the reap"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(8),
        "reaping took {:?}",
        killed.elapsed()
    );

    // Webhooks: member_removed and channel_vacated after the 3 s hold.
    let bound = (killed + REAPED_WITHIN + WEBHOOK_HOLD + Duration::from_secs(3))
        .saturating_duration_since(Instant::now());
    c.hooks()
        .wait_for("member_removed and channel_vacated", bound, |ev| {
            count_events(ev, "member_removed", &presence, Some("B")) >= 1
                && count_events(ev, "channel_vacated", &public, None) >= 1
        })
        .await;
    c.hooks().collect_for(QUIET).await;
    let hooks = c.hooks();
    let events = hooks.events.clone();
    assert_eq!(
        count_events(&events, "member_removed", &presence, Some("B")),
        1,
        "{events:#?}"
    );
    assert_eq!(
        count_events(&events, "channel_vacated", &public, None),
        1,
        "{events:#?}"
    );
    // A is still there: nothing about A or the presence channel being vacated.
    assert_eq!(
        count_events(&events, "member_removed", &presence, Some("A")),
        0,
        "{events:#?}"
    );
    assert_eq!(
        count_events(&events, "channel_vacated", &presence, None),
        0,
        "{events:#?}"
    );
    assert_eq!(hooks.problems(), Vec::<String>::new(), "webhook requests");

    // A's connection is untouched.
    a.ping_pong().await;
    eprintln!("edge crash test done in {:?}", c.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 2. channel-core restart

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

// ---------------------------------------------------------------------------------------------
// 3. NATS restart

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_flow_again_after_nats_restarts() {
    let mut c = TestCluster::start(Options {
        private_nats: true,
        ..Options::default()
    })
    .await;
    let rest = c.rest();
    let channel = c.name("pub-n");
    let mut a = c.connect(0).await;
    a.subscribe(&channel).await;
    let mut b = c.connect(1).await;
    b.subscribe(&channel).await;
    rest.trigger(&channel, "before", "0").await;
    expect_event(&mut a, "before", &channel).await;
    expect_event(&mut b, "before", &channel).await;

    c.nats_backend().kill();
    // While NATS is down the API says so: /ready fails and a trigger gets a clear 503.
    let outage = Instant::now();
    let mut seen = (None, None);
    while outage.elapsed() < Duration::from_secs(5) {
        let ready = c.api.ready_status().await;
        let (status, body) = rest
            .post(
                "/events",
                &json!({"name": "lost", "channel": channel, "data": "x"}),
            )
            .await;
        seen = (ready, Some((status, body.clone())));
        if ready != Some(200) && status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ready, trigger) = seen;
    assert_ne!(ready, Some(200), "API /ready with NATS down");
    assert_eq!(
        trigger.as_ref().map(|t| t.0),
        Some(503),
        "trigger with NATS down: {trigger:?}"
    );
    c.nats_backend().start().await;
    let restarted = Instant::now();
    poll_until(
        "API /ready after NATS came back",
        Duration::from_secs(10),
        || async {
            match c.api.ready_status().await {
                Some(200) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // Trigger until both edges deliver again; the clients stay connected throughout.
    let bound = Duration::from_secs(10);
    let (mut a_got, mut b_got) = (None, None);
    let mut attempt = 0u32;
    let mut statuses = Vec::new();
    while (a_got.is_none() || b_got.is_none()) && restarted.elapsed() < bound {
        attempt += 1;
        let (status, _) = rest
            .post(
                "/events",
                &json!({"name": "after", "channel": channel, "data": attempt.to_string()}),
            )
            .await;
        statuses.push(status);
        for (client, got) in [(&mut a, &mut a_got), (&mut b, &mut b_got)] {
            for frame in drain_frames(
                client,
                Duration::from_millis(100),
                Duration::from_millis(300),
            )
            .await
            {
                if event_of(&frame) == "after" && got.is_none() {
                    *got = Some(restarted.elapsed());
                }
            }
        }
    }
    eprintln!(
        "after the NATS restart: edge 1 delivered after {a_got:?}, edge 2 after {b_got:?}; \
         trigger statuses {statuses:?}"
    );
    assert!(
        a_got.is_some() && b_got.is_some(),
        "within {bound:?} of the NATS restart, a trigger reached edge 1: {a_got:?}, edge 2: \
         {b_got:?} (trigger statuses {statuses:?})"
    );

    // Steady again: one trigger reaches both, exactly once.
    rest.trigger(&channel, "steady", "x").await;
    for client in [&mut a, &mut b] {
        let frames = drain_frames(client, QUIET, WAIT).await;
        let steady = frames.iter().filter(|f| event_of(f) == "steady").count();
        assert_eq!(steady, 1, "{frames:?}");
    }
    a.ping_pong().await;
    b.ping_pong().await;
    eprintln!("NATS restart test done in {:?}", c.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 4. Redis down

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_queries_fast_and_keeps_delivering() {
    let mut c = TestCluster::start(Options {
        private_redis: true,
        ..Options::default()
    })
    .await;
    let rest = c.rest();
    let channel = c.name("pub-d");
    let mut a = c.connect(0).await;
    a.subscribe(&channel).await;
    let mut b = c.connect(1).await;
    b.subscribe(&channel).await;
    poll_until(&format!("{channel} to be listed"), WAIT, || async {
        let names = channel_names(&rest).await?;
        if names.contains(&channel) {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;

    c.redis_backend().kill();
    let mut checks = Checks::default();

    // Queries fail fast with 503 and a JSON message (`http` bounds the request to 5 s).
    let asked = Instant::now();
    let (status, body) = rest.get("/channels", &[]).await;
    let took = asked.elapsed();
    checks.check(
        status == 503,
        format!("GET /channels with Redis down: expected 503, got {status} {body} after {took:?}"),
    );
    checks.check(
        body["error"].as_str().is_some_and(|m| !m.is_empty()),
        format!("503 body must be JSON with an \"error\" message, got {body}"),
    );
    eprintln!("GET /channels with Redis down: {status} {body} in {took:?}");

    // channel-core is not ready while its store is unreachable.
    let mut core_status = None;
    let probe_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < probe_until {
        core_status = c.cores[0].ready_status().await;
        if core_status != Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    checks.check(
        core_status.is_some() && core_status != Some(200),
        format!(
            "channel-core /ready with Redis down: expected a non-200 answer, got {core_status:?}"
        ),
    );

    // The bus is NATS: triggers still reach existing subscribers on both edges.
    let (status, body) = rest
        .post(
            "/events",
            &json!({"name": "while-down", "channel": channel, "data": "d"}),
        )
        .await;
    checks.check(
        (status, &body) == (200, &json!({})),
        format!("trigger with Redis down: {status} {body}"),
    );
    for (who, client) in [("edge 1", &mut a), ("edge 2", &mut b)] {
        let frames = drain_frames(client, Duration::from_millis(500), WAIT).await;
        let got = frames
            .iter()
            .filter(|f| event_of(f) == "while-down")
            .count();
        checks.check(
            got == 1,
            format!("{who}: the trigger while Redis is down arrived {got} times: {frames:?}"),
        );
    }

    // Redis comes back (empty): the API answers 200 again within 10 s.
    c.redis_backend().start().await;
    let back = Instant::now();
    let mut last = (0, Value::Null);
    while back.elapsed() < Duration::from_secs(10) {
        last = rest.get("/channels", &[]).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "GET /channels after Redis came back: {} {} after {:?}",
        last.0,
        last.1,
        back.elapsed()
    );
    checks.check(
        last.0 == 200 && last.1["channels"].is_object(),
        format!(
            "GET /channels within 10 s of Redis restarting: {} {}",
            last.0, last.1
        ),
    );
    let core_ready = c.cores[0].ready_status().await;
    checks.check(
        core_ready == Some(200),
        format!("channel-core /ready after Redis came back: {core_ready:?}"),
    );
    checks.finish();
    eprintln!("Redis down test done in {:?}", c.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 5. Across edges

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_presence_and_terminations_cross_edges() {
    let c = TestCluster::start(Options::default()).await;
    let rest = c.rest();
    let presence = c.name("presence-x");

    let mut a = c.connect(0).await;
    join_presence(&mut a, &presence, "A").await;
    let mut b = c.connect(1).await;
    join_presence(&mut b, &presence, "B").await;
    expect_event(&mut a, "pusher_internal:member_added", &presence).await;

    // An API trigger reaches subscribers on both edges.
    rest.trigger(&presence, "news", "{\"n\":1}").await;
    for client in [&mut a, &mut b] {
        let ev = expect_event(client, "news", &presence).await;
        assert_eq!(ev["data"], json!("{\"n\":1}"), "{ev}");
    }

    // Client events cross edges, carry the sender's user_id and are not echoed.
    for from in ["A", "B"] {
        let (sender, receiver) = if from == "A" {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        sender
            .send_client_event(&presence, "client-hello", json!({"from": from}))
            .await;
        let ev = expect_event(receiver, "client-hello", &presence).await;
        assert_eq!(ev["user_id"], json!(from), "{ev}");
        assert_eq!(string_data(&ev), json!({"from": from}), "{ev}");
        let echoed = drain_frames(sender, QUIET, WAIT).await;
        assert!(
            echoed.iter().all(|f| event_of(f) != "client-hello"),
            "{from} got its own client event back: {echoed:?}"
        );
    }

    // user_count counts the members on both edges.
    poll_until("user_count 2 across edges", WAIT, || async {
        let (s, body) = channel_info(&rest, &presence, "user_count,subscription_count").await;
        if (s, &body)
            == (
                200,
                &json!({"occupied": true, "user_count": 2, "subscription_count": 2}),
            )
        {
            Ok(())
        } else {
            Err(format!("{s} {body}"))
        }
    })
    .await;
    assert_eq!(
        users(&rest, &presence).await,
        Ok(vec!["A".into(), "B".into()])
    );

    // terminate_connections closes the user's sockets on every edge with 4009, no others.
    let (u, v) = (c.name("U"), c.name("V"));
    let mut u1 = c.connect(1).await;
    signin(&mut u1, &u).await;
    let mut u0 = c.connect(0).await;
    signin(&mut u0, &u).await;
    let mut v1 = c.connect(1).await;
    signin(&mut v1, &v).await;
    let (status, body) = rest
        .post_text(&format!("/users/{u}/terminate_connections"), "")
        .await;
    assert_eq!((status, &body), (200, &json!({})), "terminate_connections");
    for (edge, client) in [("edge 2", &mut u1), ("edge 1", &mut u0)] {
        let (code, reason) = client.expect_close().await;
        assert_eq!(code, 4009, "{u} on {edge}: closed with {code} {reason:?}");
    }
    v1.ping_pong().await;
    a.ping_pong().await;
    b.ping_pong().await;
    match v1.next_within(QUIET).await {
        None => {}
        Some(Incoming::Json(f)) => panic!("unexpected frame for {v}: {f}"),
        Some(other) => panic!("{v} must stay connected: {other:?}"),
    }
    eprintln!("cross-edge test done in {:?}", c.elapsed());
}
