//! Sign-in and server-to-user: `pusher:signin`, the user channel and terminations.

use serde_json::json;

use crate::support::*;

use super::assert_subscription_error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signin_success_carries_user_data() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    let user_data = r#"{"id":"7","user_info":{"name":"Seven"}}"#;
    c.send_signin(user_data).await;
    let ok = c.recv_json().await;
    assert_eq!(ok["event"], "pusher:signin_success", "{ok}");
    assert_eq!(string_data(&ok), json!({"user_data": user_data}));
    // Signing in again as the same user is harmless.
    c.send_signin(user_data).await;
    assert_eq!(c.recv_json().await["event"], "pusher:signin_success");
    c.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signin_with_bad_signature_closes_4009() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    let user_data = r#"{"id":"7"}"#;
    let auth = token(
        "wrong-secret",
        KEY,
        &format!("{}::user::{user_data}", c.socket_id()),
    );
    c.send_json(&json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}))
        .await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 4009, "reason {reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signin_as_another_user_closes_4009() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    c.signin("1").await;
    c.send_signin(r#"{"id":"2"}"#).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 4009, "reason {reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_to_user_channel() {
    let srv = TestServer::with_main_app("").await;
    let ch = "#server-to-user-u1";
    let mut anon = srv.connect().await;
    anon.send_subscribe(ch, None, None).await;
    let frame = anon.recv_subscription_error().await;
    assert_subscription_error(&frame, ch, None, "not signed in");

    let mut other = srv.connect().await;
    other.signin("u2").await;
    other.send_subscribe(ch, None, None).await;
    let frame = other.recv_subscription_error().await;
    assert_subscription_error(&frame, ch, None, "signed in as another user");

    let mut me = srv.connect().await;
    me.signin("u1").await;
    me.subscribe(ch).await;
    let mut me_too = srv.connect().await;
    me_too.signin("u1").await;
    me_too.subscribe(ch).await;

    srv.rest().trigger(ch, "notice", "for u1").await;
    for c in [&mut me, &mut me_too] {
        let ev = c.recv_json().await;
        assert_eq!(
            ev,
            json!({"event": "notice", "channel": ch, "data": "for u1"})
        );
    }
    anon.expect_silence(QUIET, "refused subscriber").await;
    other
        .expect_silence(QUIET, "refused subscriber signed in as u2")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_connections_closes_only_that_users_sockets() {
    let srv = TestServer::with_main_app("").await;
    let mut u1a = srv.connect().await;
    let mut u1b = srv.connect().await;
    let mut u2 = srv.connect().await;
    let mut anon = srv.connect().await;
    u1a.signin("1").await;
    u1b.signin("1").await;
    u2.signin("2").await;

    let (status, body) = srv
        .rest()
        .post_text("/users/1/terminate_connections", "")
        .await;
    assert_eq!((status, body), (200, json!({})));
    for c in [&mut u1a, &mut u1b] {
        let (code, reason) = c.expect_close().await;
        assert_eq!(code, 4009, "reason {reason:?}");
    }
    u2.ping_pong().await;
    anon.ping_pong().await;
}
