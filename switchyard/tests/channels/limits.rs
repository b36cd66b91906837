//! Limits and less common paths: name and channel data limits, watchlists, abrupt
//! disconnects.

use serde_json::{json, Value};

use crate::support::*;

use super::{assert_subscription_error, CLIENT_EVENTS};

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
