//! Edges: a killed edge is reaped, and events, presence and terminations cross edges.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::*;
use crate::support::{event_of, string_data, Incoming, QUIET, WAIT};

use super::{channel_info, expect_event};

/// Upper bound for a killed edge's state to be gone everywhere: lease (3 s) + reap interval
/// (0.25 s) + margin, under the 8 s the brief allows.
const REAPED_WITHIN: Duration = Duration::from_millis(7500);

// ---------------------------------------------------------------------------------------------
// Edge crash

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
// Across edges

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
