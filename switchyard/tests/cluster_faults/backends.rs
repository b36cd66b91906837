//! The backends: a NATS restart, and Redis down.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster::*;
use crate::support::{event_of, QUIET, WAIT};

use super::expect_event;

// ---------------------------------------------------------------------------------------------
// NATS restart

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
// Redis down

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
