//! Triggering: single events, events with channel info, and batches.

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_events_returns_an_empty_object() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    c.subscribe("a").await;
    c.subscribe("b").await;
    let rest = srv.rest();
    let (status, body) = rest
        .post(
            "/events",
            &json!({"name": "multi", "channels": ["a", "b"], "data": "{\"k\":\"v\"}"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({}), "exactly {{}}");
    let mut got: Vec<String> = Vec::new();
    for _ in 0..2 {
        let ev = c.recv_json().await;
        assert_eq!(ev["event"], "multi");
        assert_eq!(ev["data"], "{\"k\":\"v\"}");
        got.push(ev["channel"].as_str().expect("channel").to_owned());
    }
    got.sort();
    assert_eq!(got, ["a", "b"]);

    // data given as a JSON object is relayed as its text.
    let (status, body) = rest
        .post(
            "/events",
            &json!({"name": "obj", "channel": "a", "data": {"x": 1}}),
        )
        .await;
    assert_eq!((status, body), (200, json!({})));
    let ev = c.recv_json().await;
    assert_eq!(string_data(&ev), json!({"x": 1}), "{ev}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_events_with_info_returns_channel_counts() {
    let srv = TestServer::with_main_app("").await;
    let rest = srv.rest();
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    a.subscribe_presence("presence-i", "1", json!({})).await;
    b.subscribe_presence("presence-i", "2", json!({})).await;
    a.subscribe("public-i").await;
    wait_subscription_count(&rest, "presence-i", 2).await;
    wait_subscription_count(&rest, "public-i", 1).await;

    let (status, body) = rest
        .post(
            "/events",
            &json!({
                "name": "e",
                "channels": ["presence-i", "public-i", "empty-i"],
                "data": "d",
                "info": "subscription_count,user_count"
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"channels": {
            "presence-i": {"user_count": 2, "subscription_count": 2},
            "public-i": {"subscription_count": 1},
            "empty-i": {"subscription_count": 0}
        }})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_events() {
    let srv = TestServer::with_main_app("").await;
    let rest = srv.rest();
    let mut c = srv.connect().await;
    c.subscribe("b1").await;
    c.subscribe_presence("presence-b2", "u", json!({})).await;
    wait_subscription_count(&rest, "b1", 1).await;
    wait_subscription_count(&rest, "presence-b2", 1).await;

    let (status, body) = rest
        .post(
            "/batch_events",
            &json!({"batch": [
                {"name": "one", "channel": "b1", "data": "1"},
                {"name": "two", "channel": "presence-b2", "data": "2"}
            ]}),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({})), "{body}");
    let mut names = vec![
        c.recv_json().await["event"].as_str().expect("e").to_owned(),
        c.recv_json().await["event"].as_str().expect("e").to_owned(),
    ];
    names.sort();
    assert_eq!(names, ["one", "two"]);

    let (status, body) = rest
        .post(
            "/batch_events",
            &json!({"batch": [
                {"name": "one", "channel": "b1", "data": "1", "info": "subscription_count"},
                {"name": "two", "channel": "nobody-here", "data": "2"},
                {"name": "three", "channel": "presence-b2", "data": "3", "info": "user_count,subscription_count"}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"batch": [
            {"subscription_count": 1},
            {},
            {"user_count": 1, "subscription_count": 1}
        ]})
    );
}
