//! Presence channels: members per user, and the auth and channel data they require.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::support::*;

use super::assert_subscription_error;

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
