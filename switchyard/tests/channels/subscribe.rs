//! Subscribing to public and private channels, and refused channel names.

use serde_json::json;

use crate::support::*;

use super::assert_subscription_error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_subscribe_and_rest_trigger_reach_every_subscriber() {
    let srv = TestServer::with_main_app("").await;
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    let ok = a.subscribe("news").await;
    assert_eq!(
        ok,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "news", "data": "{}"})
    );
    b.subscribe("news").await;

    srv.rest().trigger("news", "headline", r#"{"x":1}"#).await;
    for c in [&mut a, &mut b] {
        let ev = c.recv_json().await;
        assert_eq!(
            ev,
            json!({"event": "headline", "channel": "news", "data": "{\"x\":1}"})
        );
    }

    // After unsubscribing, nothing more arrives.
    b.send_json(&json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}))
        .await;
    b.ping_pong().await;
    srv.rest().trigger("news", "second", "2").await;
    assert_eq!(a.recv_json().await["event"], "second");
    b.expect_silence(QUIET, "unsubscribed from news").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_trigger_excludes_socket_id() {
    let srv = TestServer::with_main_app("").await;
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    a.subscribe("room").await;
    b.subscribe("room").await;
    let (status, body) = srv
        .rest()
        .post(
            "/events",
            &json!({"name": "e", "channel": "room", "data": "d", "socket_id": a.socket_id()}),
        )
        .await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(b.recv_json().await["event"], "e");
    a.expect_silence(QUIET, "excluded by socket_id").await;
}

// ---------------------------------------------------------------------------------------------
// Private channels

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_channel_auth() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    c.subscribe_private("private-ok").await;

    // Signed for another socket.
    let wrong = private_auth("1.1", "private-bad");
    c.send_subscribe("private-bad", Some(&wrong), None).await;
    let frame = c.recv_subscription_error().await;
    assert_subscription_error(
        &frame,
        "private-bad",
        Some(401),
        "signature for another socket",
    );

    // Signed with the wrong secret.
    let wrong = token(
        "not-the-secret",
        KEY,
        &format!("{}:private-bad", c.socket_id()),
    );
    c.send_subscribe("private-bad", Some(&wrong), None).await;
    let frame = c.recv_subscription_error().await;
    assert_subscription_error(&frame, "private-bad", Some(401), "wrong secret");

    // Missing auth.
    c.send_subscribe("private-bad", None, None).await;
    let frame = c.recv_subscription_error().await;
    assert_subscription_error(&frame, "private-bad", Some(401), "missing auth");

    // The connection is still fine and still subscribed to private-ok only.
    c.ping_pong().await;
    srv.rest().trigger("private-bad", "nope", "x").await;
    srv.rest().trigger("private-ok", "yes", "x").await;
    assert_eq!(c.recv_json().await["event"], "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_channel_name_is_refused() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    for name in ["bad channel", "star*", &"x".repeat(165), "#nope"] {
        c.send_subscribe(name, None, None).await;
        let frame = c.recv_subscription_error().await;
        assert_subscription_error(&frame, name, None, name);
    }
    // Commas and semicolons are allowed.
    c.subscribe("a,b;c=d@e.f_g-h").await;
    c.ping_pong().await;
}
