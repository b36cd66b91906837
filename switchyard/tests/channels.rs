//! Channels over the WebSocket: public, private, presence, client events, sign-in,
//! server-to-user, cache channels and subscription counts.

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use support::*;

const CLIENT_EVENTS: &str = "enable_client_messages = true";

fn ids(presence: &Value) -> BTreeSet<String> {
    presence["presence"]["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no presence.ids in {presence}"))
        .iter()
        .map(|v| v.as_str().expect("string id").to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn assert_subscription_error(frame: &Value, channel: &str, status: Option<u64>, what: &str) {
    assert_eq!(
        frame["event"], "pusher:subscription_error",
        "{what}: {frame}"
    );
    assert_eq!(frame["channel"], json!(channel), "{what}: {frame}");
    let data = data_of(frame);
    if let Some(status) = status {
        assert_eq!(data["status"], json!(status), "{what}: {frame}");
        if status == 401 {
            assert_eq!(data["type"], "AuthError", "{what}: {frame}");
        }
    }
    assert!(data["error"].is_string(), "{what}: {frame}");
}

/// Reads the next frame and checks it is a `pusher:error` with `code`.
async fn expect_error_code(c: &mut Client, code: u64, what: &str) -> Value {
    let err = c.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "{what}: {err}");
    assert_eq!(err["data"]["code"], json!(code), "{what}: {err}");
    assert!(err["data"]["message"].is_string(), "{what}: {err}");
    err
}

// ---------------------------------------------------------------------------------------------
// Public channels

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

// ---------------------------------------------------------------------------------------------
// Presence channels

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_members_are_counted_per_user() {
    let srv = TestServer::with_main_app("").await;
    let ch = "presence-room";
    let mut observer = srv.connect().await;
    let data = observer
        .subscribe_presence(ch, "0", json!({"n": "obs"}))
        .await;
    assert_eq!(
        data,
        json!({"presence": {"ids": ["0"], "hash": {"0": {"n": "obs"}}, "count": 1}})
    );

    let mut a1 = srv.connect().await;
    let data = a1.subscribe_presence(ch, "1", json!({"n": "one"})).await;
    assert_eq!(data["presence"]["count"], json!(2), "{data}");
    assert_eq!(ids(&data), set(&["0", "1"]));
    assert_eq!(data["presence"]["hash"]["1"], json!({"n": "one"}));
    assert_eq!(data["presence"]["hash"]["0"], json!({"n": "obs"}));

    let added = observer.recv_json().await;
    assert_eq!(added["event"], "pusher_internal:member_added", "{added}");
    assert_eq!(added["channel"], ch);
    assert_eq!(
        string_data(&added),
        json!({"user_id": "1", "user_info": {"n": "one"}})
    );

    // A second socket of user 1: no second member_added, counted once.
    let mut a2 = srv.connect().await;
    let data = a2.subscribe_presence(ch, "1", json!({"n": "one"})).await;
    assert_eq!(data["presence"]["count"], json!(2), "{data}");
    assert_eq!(ids(&data), set(&["0", "1"]));
    observer
        .expect_silence(QUIET, "second socket of the same user")
        .await;
    a1.expect_silence(QUIET, "own user joining again").await;

    // User 2.
    let mut b = srv.connect().await;
    let data = b.subscribe_presence(ch, "2", json!({"n": "two"})).await;
    assert_eq!(data["presence"]["count"], json!(3), "{data}");
    assert_eq!(ids(&data), set(&["0", "1", "2"]));
    for c in [&mut observer, &mut a1, &mut a2] {
        let added = c.recv_json().await;
        assert_eq!(added["event"], "pusher_internal:member_added", "{added}");
        assert_eq!(string_data(&added)["user_id"], "2");
    }
    observer
        .expect_silence(QUIET, "exactly one member_added per user")
        .await;
    b.expect_silence(QUIET, "no member_added for oneself").await;

    // The REST API sees three users.
    let (status, body) = srv.rest().get(&format!("/channels/{ch}/users"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let users: BTreeSet<String> = body["users"]
        .as_array()
        .expect("users array")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(users, set(&["0", "1", "2"]));

    // User 1's first socket leaves: user 1 is still present.
    a1.send_json(&json!({"event": "pusher:unsubscribe", "data": {"channel": ch}}))
        .await;
    a1.ping_pong().await;
    observer
        .expect_silence(QUIET, "user 1 still has a socket")
        .await;

    // Its last socket goes away: member_removed, once.
    a2.close().await;
    let removed = observer.recv_json().await;
    assert_eq!(
        removed["event"], "pusher_internal:member_removed",
        "{removed}"
    );
    assert_eq!(removed["channel"], ch);
    assert_eq!(string_data(&removed), json!({"user_id": "1"}));
    let removed = b.recv_json().await;
    assert_eq!(
        removed["event"], "pusher_internal:member_removed",
        "{removed}"
    );
    observer.expect_silence(QUIET, "one member_removed").await;

    // A newcomer sees users 0 and 2 only.
    let mut late = srv.connect().await;
    let data = late.subscribe_presence(ch, "3", Value::Null).await;
    assert_eq!(ids(&data), set(&["0", "2", "3"]));
    assert_eq!(data["presence"]["count"], json!(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_requires_channel_data_and_valid_auth() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    let ch = "presence-x";

    // Auth for the private string, but no channel_data.
    let auth = private_auth(c.socket_id(), ch);
    c.send_subscribe(ch, Some(&auth), None).await;
    let frame = c.recv_subscription_error().await;
    assert_subscription_error(&frame, ch, None, "no channel_data");

    // channel_data present but the signature does not cover it.
    let cd = json!({"user_id": "5"}).to_string();
    let other = json!({"user_id": "6"}).to_string();
    let auth = presence_auth(c.socket_id(), ch, &other);
    c.send_subscribe(ch, Some(&auth), Some(&cd)).await;
    let frame = c.recv_subscription_error().await;
    assert_subscription_error(&frame, ch, Some(401), "signature over other channel_data");

    // presence-cache- channels are presence channels too.
    c.send_subscribe("presence-cache-y", None, None).await;
    let frame = c.recv_subscription_error().await;
    assert_subscription_error(
        &frame,
        "presence-cache-y",
        None,
        "presence-cache without data",
    );

    c.ping_pong().await;
}

// ---------------------------------------------------------------------------------------------
// Client events

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

// ---------------------------------------------------------------------------------------------
// Sign-in and server-to-user

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

// ---------------------------------------------------------------------------------------------
// Cache channels

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_channel_miss_then_replay() {
    let srv = TestServer::with_main_app("").await;
    let ch = "cache-x";
    let mut first = srv.connect().await;
    first.subscribe(ch).await;
    let miss = first.recv_json().await;
    assert_eq!(miss["event"], "pusher:cache_miss", "{miss}");
    assert_eq!(miss["channel"], ch);

    srv.rest().trigger(ch, "state", r#"{"v":1}"#).await;
    assert_eq!(first.recv_json().await["event"], "state");
    srv.rest().trigger(ch, "state", r#"{"v":2}"#).await;
    assert_eq!(first.recv_json().await["event"], "state");

    let mut late = srv.connect().await;
    late.subscribe(ch).await;
    let replay = late.recv_json().await;
    assert_eq!(
        replay,
        json!({"event": "state", "channel": ch, "data": "{\"v\":2}"})
    );
    late.expect_silence(QUIET, "only the last event is replayed")
        .await;

    // Private and presence cache channels behave the same once authorized.
    let mut p = srv.connect().await;
    p.subscribe_private("private-cache-y").await;
    assert_eq!(p.recv_json().await["event"], "pusher:cache_miss");
    p.subscribe_presence("presence-cache-y", "1", json!({}))
        .await;
    let miss = p.recv_json().await;
    assert_eq!(miss["event"], "pusher:cache_miss", "{miss}");
    assert_eq!(miss["channel"], "presence-cache-y");
}

// ---------------------------------------------------------------------------------------------
// Subscription count

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_count_events() {
    let srv = TestServer::with_main_app("enable_subscription_count = true").await;
    let ch = "counted";
    let count_of = |frame: &Value| {
        assert_eq!(
            frame["event"], "pusher_internal:subscription_count",
            "{frame}"
        );
        assert_eq!(frame["channel"], ch, "{frame}");
        string_data(frame)["subscription_count"].clone()
    };
    let mut a = srv.connect().await;
    a.subscribe(ch).await;
    assert_eq!(count_of(&a.recv_json().await), json!(1));

    let mut b = srv.connect().await;
    b.subscribe(ch).await;
    assert_eq!(count_of(&a.recv_json().await), json!(2));
    assert_eq!(count_of(&b.recv_json().await), json!(2));

    b.close().await;
    assert_eq!(count_of(&a.recv_json().await), json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_count_is_off_by_default() {
    let srv = TestServer::with_main_app("").await;
    let mut a = srv.connect().await;
    a.subscribe("quiet").await;
    let mut b = srv.connect().await;
    b.subscribe("quiet").await;
    a.expect_silence(QUIET, "subscription_count not enabled")
        .await;
}

// ---------------------------------------------------------------------------------------------
// Limits and less common paths

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_name_length_limit() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    let longest = "x".repeat(164);
    c.subscribe(&longest).await;
    let too_long = "y".repeat(165);
    c.send_subscribe(&too_long, None, None).await;
    let frame = c.recv_subscription_error().await;
    assert_subscription_error(&frame, &too_long, None, "165 characters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_channel_data_limits() {
    let srv = TestServer::with_main_app("max_presence_members = 2").await;
    let ch = "presence-lim";

    // Numeric user ids become strings.
    let mut a = srv.connect().await;
    let cd = r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#;
    let auth = presence_auth(a.socket_id(), ch, cd);
    a.send_subscribe(ch, Some(&auth), Some(cd)).await;
    let data = string_data(&a.expect_succeeded(ch).await);
    assert_eq!(
        data,
        json!({"presence": {"ids": ["10"], "hash": {"10": {"name": "Mr. Pusher"}}, "count": 1}})
    );

    let mut c = srv.connect().await;
    // user_info over 1 KB.
    let big = json!({"user_id": "big", "user_info": {"pad": "x".repeat(1100)}}).to_string();
    let auth = presence_auth(c.socket_id(), ch, &big);
    c.send_subscribe(ch, Some(&auth), Some(&big)).await;
    assert_subscription_error(
        &c.recv_subscription_error().await,
        ch,
        None,
        "user_info > 1 KB",
    );
    // user id over 128 characters.
    let long = json!({"user_id": "u".repeat(129)}).to_string();
    let auth = presence_auth(c.socket_id(), ch, &long);
    c.send_subscribe(ch, Some(&auth), Some(&long)).await;
    assert_subscription_error(
        &c.recv_subscription_error().await,
        ch,
        None,
        "user_id > 128 chars",
    );

    // Member limit (2 here): a second user fits, a third does not, another socket of a
    // present user still does.
    c.subscribe_presence(ch, "11", json!({})).await;
    let mut d = srv.connect().await;
    let third = json!({"user_id": "12"}).to_string();
    let auth = presence_auth(d.socket_id(), ch, &third);
    d.send_subscribe(ch, Some(&auth), Some(&third)).await;
    assert_subscription_error(
        &d.recv_subscription_error().await,
        ch,
        None,
        "presence channel full",
    );
    let data = d.subscribe_presence(ch, "11", json!({})).await;
    assert_eq!(data["presence"]["count"], json!(2), "{data}");
    d.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_count_is_not_sent_on_presence_channels() {
    let srv = TestServer::with_main_app("enable_subscription_count = true").await;
    let ch = "presence-nocount";
    let mut a = srv.connect().await;
    a.subscribe_presence(ch, "1", json!({})).await;
    let mut b = srv.connect().await;
    b.subscribe_presence(ch, "2", json!({})).await;
    let added = a.recv_json().await;
    assert_eq!(added["event"], "pusher_internal:member_added", "{added}");
    a.expect_silence(QUIET, "no subscription_count on presence")
        .await;
    b.expect_silence(QUIET, "no subscription_count on presence")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_events_stop_after_unsubscribe() {
    let srv = TestServer::with_main_app(CLIENT_EVENTS).await;
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    a.subscribe_private("private-u").await;
    b.subscribe_private("private-u").await;
    a.send_json(&json!({"event": "pusher:unsubscribe", "data": {"channel": "private-u"}}))
        .await;
    a.send_client_event("private-u", "client-late", json!({}))
        .await;
    let err = a.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "{err}");
    b.expect_silence(QUIET, "sender had unsubscribed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signin_without_an_id_closes_4009() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    c.send_signin(r#"{"user_info":{}}"#).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 4009, "reason {reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchlist_over_100_ids_is_an_error_event() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    let ids: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    c.send_signin(&json!({"id": "w", "watchlist": ids}).to_string())
        .await;
    let err = c.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "{err}");
    assert_eq!(err["data"]["code"], json!(4302), "{err}");
    c.ping_pong().await;
}

/// PROTOCOL.md: a watchlist "produces online/offline events for watched users".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchlist_reports_watched_users_online_and_offline() {
    let srv = TestServer::with_main_app("").await;
    let mut watcher = srv.connect().await;
    let user_data = json!({"id": "watcher", "watchlist": ["x", "y"]}).to_string();
    watcher.send_signin(&user_data).await;
    assert_eq!(watcher.recv_json().await["event"], "pusher:signin_success");

    let mut x = srv.connect().await;
    x.signin("x").await;

    let has = |frame: &Value, name: &str| {
        string_data(frame)["events"]
            .as_array()
            .is_some_and(|events| {
                events.iter().any(|e| {
                    e["name"] == name
                        && e["user_ids"]
                            .as_array()
                            .is_some_and(|ids| ids.contains(&json!("x")))
                })
            })
    };
    let online = loop {
        let frame = watcher.recv_event("pusher_internal:watchlist_events").await;
        if has(&frame, "online") {
            break frame;
        }
    };
    assert!(online.get("channel").is_none(), "{online}");

    x.close().await;
    loop {
        let frame = watcher.recv_event("pusher_internal:watchlist_events").await;
        if has(&frame, "offline") {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_disconnect_cleans_up_presence_and_counts() {
    let srv = TestServer::with_main_app("").await;
    let rest = srv.rest();
    let ch = "presence-drop";
    let mut stays = srv.connect().await;
    stays.subscribe_presence(ch, "stays", json!({})).await;
    let mut drops = srv.connect().await;
    drops.subscribe_presence(ch, "drops", json!({})).await;
    drops.subscribe("plain-drop").await;
    let added = stays.recv_json().await;
    assert_eq!(added["event"], "pusher_internal:member_added", "{added}");
    wait_subscription_count(&rest, "plain-drop", 1).await;

    // No close frame: the TCP connection just goes away.
    drop(drops);
    let removed = stays.recv_json().await;
    assert_eq!(
        removed["event"], "pusher_internal:member_removed",
        "{removed}"
    );
    assert_eq!(string_data(&removed), json!({"user_id": "drops"}));
    wait_subscription_count(&rest, "plain-drop", 0).await;
    wait_subscription_count(&rest, ch, 1).await;
}
