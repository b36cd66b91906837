//! Channel queries: the channel list, one channel with info, presence users, and the signed
//! GETs SDKs send.

use serde_json::{json, Value};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_channels_lists_occupied_channels() {
    let srv = TestServer::with_main_app("").await;
    let rest = srv.rest();
    let mut c = srv.connect().await;
    let mut d = srv.connect().await;
    c.subscribe("chan-a").await;
    c.subscribe("chan-b").await;
    d.subscribe("chan-b").await;
    c.subscribe("other").await;
    c.subscribe_presence("presence-p", "1", json!({})).await;
    d.subscribe_presence("presence-p", "2", json!({})).await;
    wait_subscription_count(&rest, "chan-b", 2).await;
    wait_subscription_count(&rest, "presence-p", 2).await;
    wait_subscription_count(&rest, "other", 1).await;
    wait_subscription_count(&rest, "chan-a", 1).await;
    // Triggered but never subscribed: not occupied.
    rest.trigger("chan-empty", "e", "d").await;

    let (status, body) = rest.get("/channels", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"channels": {"chan-a": {}, "chan-b": {}, "other": {}, "presence-p": {}}})
    );

    let (status, body) = rest
        .get("/channels", &[("filter_by_prefix", "chan-")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"channels": {"chan-a": {}, "chan-b": {}}}));

    let (status, body) = rest
        .get(
            "/channels",
            &[("filter_by_prefix", "presence-"), ("info", "user_count")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"channels": {"presence-p": {"user_count": 2}}}));

    let got = rest.get("/channels", &[("info", "user_count")]).await;
    assert_error("info=user_count without presence- prefix", &got, 400);
    let got = rest
        .get(
            "/channels",
            &[("filter_by_prefix", "chan-"), ("info", "user_count")],
        )
        .await;
    assert_error("info=user_count with chan- prefix", &got, 400);

    // Once everyone leaves, the channel is no longer listed.
    d.close().await;
    c.send_json(&json!({"event": "pusher:unsubscribe", "data": {"channel": "chan-b"}}))
        .await;
    wait_subscription_count(&rest, "chan-b", 0).await;
    let (status, body) = rest
        .get("/channels", &[("filter_by_prefix", "chan-")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"channels": {"chan-a": {}}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_one_channel_with_info() {
    let srv = TestServer::with_main_app("").await;
    let rest = srv.rest();
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    a.subscribe("solo").await;
    b.subscribe("solo").await;
    a.subscribe_presence("presence-q", "1", json!({})).await;
    b.subscribe_presence("presence-q", "1", json!({})).await;
    wait_subscription_count(&rest, "solo", 2).await;
    wait_subscription_count(&rest, "presence-q", 2).await;

    let (status, body) = rest.get("/channels/solo", &[]).await;
    assert_eq!((status, &body), (200, &json!({"occupied": true})), "{body}");
    let (status, body) = rest
        .get("/channels/solo", &[("info", "subscription_count")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"occupied": true, "subscription_count": 2}));

    let (status, body) = rest
        .get(
            "/channels/presence-q",
            &[("info", "user_count,subscription_count")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"occupied": true, "user_count": 1, "subscription_count": 2})
    );

    let (status, body) = rest.get("/channels/nobody", &[]).await;
    assert_eq!(
        (status, &body),
        (200, &json!({"occupied": false})),
        "{body}"
    );

    let got = rest.get("/channels/solo", &[("info", "user_count")]).await;
    assert_error("user_count on a public channel", &got, 400);

    // Cache channels report their stored event.
    rest.trigger("cache-z", "stored", "payload").await;
    let (status, body) = rest.get("/channels/cache-z", &[("info", "cache")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["occupied"], json!(false));
    assert_eq!(body["cache"]["data"], json!("payload"), "{body}");
    assert!(
        body["cache"]["ttl"].as_u64().is_some_and(|t| t > 0),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_presence_users() {
    let srv = TestServer::with_main_app("").await;
    let rest = srv.rest();
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    let mut b2 = srv.connect().await;
    a.subscribe_presence("presence-x", "1", json!({"n": 1}))
        .await;
    b.subscribe_presence("presence-x", "2", json!({"n": 2}))
        .await;
    b2.subscribe_presence("presence-x", "2", json!({"n": 2}))
        .await;

    let (status, body) = rest.get("/channels/presence-x/users", &[]).await;
    assert_eq!(status, 200, "{body}");
    let mut users: Vec<Value> = body["users"].as_array().expect("users").clone();
    users.sort_by_key(|u| u["id"].as_str().unwrap_or("").to_owned());
    assert_eq!(users, vec![json!({"id": "1"}), json!({"id": "2"})]);

    let (status, body) = rest.get("/channels/presence-empty/users", &[]).await;
    assert_eq!((status, body), (200, json!({"users": []})));

    let got = rest.get("/channels/public-x/users", &[]).await;
    assert_error("users of a public channel", &got, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_body_md5_on_get_is_accepted() {
    let srv = TestServer::with_main_app("").await;
    let rest = srv.rest();
    let path = rest.path("/channels");
    let query = sign_query(
        SECRET,
        "GET",
        &path,
        &format!(
            "auth_key={KEY}&auth_timestamp={}&auth_version=1.0&body_md5=d41d8cd98f00b204e9800998ecf8427e",
            now_secs()
        ),
    );
    let (status, body) = http(srv.addr, "GET", &format!("{path}?{query}"), None, b"").await;
    assert_eq!((status, body), (200, json!({"channels": {}})));

    // A numeric app id works like any other.
    let srv = TestServer::start(&format!(
        "{SERVER}{}",
        app_toml("12345", "py-key", "py-secret", "")
    ))
    .await;
    let rest = srv.rest_for("12345", "py-key", "py-secret");
    let (status, body) = rest.get("/channels", &[]).await;
    assert_eq!((status, body), (200, json!({"channels": {}})));
}
