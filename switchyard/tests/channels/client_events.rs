//! Client events: where they are allowed, who receives them, and their rate limit.

use serde_json::{json, Value};

use crate::support::*;

use super::CLIENT_EVENTS;

/// Reads the next frame and checks it is a `pusher:error` with `code`.
async fn expect_error_code(c: &mut Client, code: u64, what: &str) -> Value {
    let err = c.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "{what}: {err}");
    assert_eq!(err["data"]["code"], json!(code), "{what}: {err}");
    assert!(err["data"]["message"].is_string(), "{what}: {err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_events_disabled_for_the_app() {
    let srv = TestServer::with_main_app("").await;
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    a.subscribe_private("private-c").await;
    b.subscribe_private("private-c").await;
    a.send_client_event("private-c", "client-hi", json!({"a": 1}))
        .await;
    expect_error_code(&mut a, 4301, "client events disabled").await;
    b.expect_silence(QUIET, "client events are disabled").await;
    a.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_events_are_refused_where_not_allowed() {
    let srv = TestServer::with_main_app(CLIENT_EVENTS).await;
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;

    // Not subscribed.
    b.subscribe_private("private-c").await;
    a.send_client_event("private-c", "client-hi", json!({}))
        .await;
    let err = a.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "not subscribed: {err}");

    // Public channel.
    a.subscribe("public-c").await;
    b.subscribe("public-c").await;
    a.send_client_event("public-c", "client-hi", json!({}))
        .await;
    let err = a.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "public channel: {err}");

    // Encrypted channel.
    a.subscribe_private("private-encrypted-c").await;
    b.subscribe_private("private-encrypted-c").await;
    a.send_client_event("private-encrypted-c", "client-hi", json!({}))
        .await;
    let err = a.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "encrypted channel: {err}");

    b.expect_silence(QUIET, "no refused client event is relayed")
        .await;
    a.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_event_on_private_reaches_others_but_not_the_sender() {
    let srv = TestServer::with_main_app(CLIENT_EVENTS).await;
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    let mut c = srv.connect().await;
    for x in [&mut a, &mut b, &mut c] {
        x.subscribe_private("private-chat").await;
    }
    a.send_client_event("private-chat", "client-msg", json!({"text": "hi"}))
        .await;
    for x in [&mut b, &mut c] {
        let ev = x.recv_json().await;
        assert_eq!(ev["event"], "client-msg", "{ev}");
        assert_eq!(ev["channel"], "private-chat");
        assert_eq!(data_of(&ev), json!({"text": "hi"}));
        assert!(ev.get("user_id").is_none(), "no user_id on private: {ev}");
    }
    a.expect_silence(QUIET, "client events are never echoed")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_event_on_presence_carries_user_id() {
    let srv = TestServer::with_main_app(CLIENT_EVENTS).await;
    let ch = "presence-chat";
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    a.subscribe_presence(ch, "alice", json!({})).await;
    b.subscribe_presence(ch, "bob", json!({})).await;
    let added = a.recv_json().await;
    assert_eq!(added["event"], "pusher_internal:member_added");

    a.send_client_event(ch, "client-typing", json!("yes")).await;
    let ev = b.recv_json().await;
    assert_eq!(ev["event"], "client-typing", "{ev}");
    assert_eq!(ev["channel"], ch);
    assert_eq!(ev["user_id"], "alice", "{ev}");
    a.expect_silence(QUIET, "no echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_event_rate_limit() {
    let srv = TestServer::with_main_app(CLIENT_EVENTS).await;
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    a.subscribe_private("private-fast").await;
    b.subscribe_private("private-fast").await;
    for i in 0..11 {
        a.send_client_event("private-fast", "client-n", json!({"i": i}))
            .await;
    }
    let err = expect_error_code(&mut a, 4301, "11th client event in a second").await;
    assert!(
        !err["data"]["message"].as_str().unwrap_or("").is_empty(),
        "{err}"
    );
    let mut received = 0;
    while let Some(ev) = b.try_recv(QUIET).await {
        assert_eq!(ev["event"], "client-n", "{ev}");
        received += 1;
    }
    assert_eq!(received, 10, "exactly the limit is relayed");
    // Connection kept.
    a.ping_pong().await;
}
