//! The HTTP API: triggering, channel queries, and every way a request is refused.

mod support;

use serde_json::{json, Value};
use support::*;

fn event(channel: &str) -> Value {
    json!({"name": "e", "channel": channel, "data": "d"})
}

// ---------------------------------------------------------------------------------------------
// Triggering

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

// ---------------------------------------------------------------------------------------------
// Queries

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

// ---------------------------------------------------------------------------------------------
// Errors

/// Sends `body` to `/apps/{APP_ID}/events` with the given raw (unsigned-by-helper) query.
async fn post_events_with_query(srv: &TestServer, query: &str, body: &str) -> (u16, Value) {
    http(
        srv.addr,
        "POST",
        &format!("/apps/{APP_ID}/events?{query}"),
        Some("application/json"),
        body.as_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_errors() {
    let srv = TestServer::with_main_app("").await;
    let body = event("x").to_string();
    let md5 = switchyard_protocol::rest::body_md5(body.as_bytes());
    let path = format!("/apps/{APP_ID}/events");
    let now = now_secs();

    // Sanity: the same construction, correctly signed, is accepted.
    let good = sign_query(
        SECRET,
        "POST",
        &path,
        &format!("auth_key={KEY}&auth_timestamp={now}&auth_version=1.0&body_md5={md5}"),
    );
    let got = post_events_with_query(&srv, &good, &body).await;
    assert_eq!(got, (200, json!({})));

    // Unknown app.
    let rest = srv.rest_for("no-such-app", KEY, SECRET);
    let got = rest.post("/events", &event("x")).await;
    assert_error("unknown app", &got, 404);

    // Missing auth_key.
    let q = sign_query(
        SECRET,
        "POST",
        &path,
        &format!("auth_timestamp={now}&auth_version=1.0&body_md5={md5}"),
    );
    let got = post_events_with_query(&srv, &q, &body).await;
    assert_error("missing auth_key", &got, 401);

    // Wrong auth_key (but signed with the right secret).
    let q = sign_query(
        SECRET,
        "POST",
        &path,
        &format!("auth_key=wrong-key&auth_timestamp={now}&auth_version=1.0&body_md5={md5}"),
    );
    let got = post_events_with_query(&srv, &q, &body).await;
    assert_error("wrong auth_key", &got, 401);

    // Bad signature: the wrong secret, and a garbage signature.
    let q = sign_query(
        "wrong-secret",
        "POST",
        &path,
        &format!("auth_key={KEY}&auth_timestamp={now}&auth_version=1.0&body_md5={md5}"),
    );
    let got = post_events_with_query(&srv, &q, &body).await;
    assert_error("wrong secret", &got, 401);
    let q = format!(
        "auth_key={KEY}&auth_timestamp={now}&auth_version=1.0&body_md5={md5}&auth_signature=00ff"
    );
    let got = post_events_with_query(&srv, &q, &body).await;
    assert_error("garbage signature", &got, 401);
    // Missing signature.
    let q = format!("auth_key={KEY}&auth_timestamp={now}&auth_version=1.0&body_md5={md5}");
    let got = post_events_with_query(&srv, &q, &body).await;
    assert_error("missing signature", &got, 401);
    // Signed for another path.
    let q = sign_query(
        SECRET,
        "POST",
        "/apps/other/events",
        &format!("auth_key={KEY}&auth_timestamp={now}&auth_version=1.0&body_md5={md5}"),
    );
    let got = post_events_with_query(&srv, &q, &body).await;
    assert_error("signed for another path", &got, 401);

    // Stale and future timestamps.
    for ts in [now - 700, now + 700] {
        let q = sign_query(
            SECRET,
            "POST",
            &path,
            &format!("auth_key={KEY}&auth_timestamp={ts}&auth_version=1.0&body_md5={md5}"),
        );
        let got = post_events_with_query(&srv, &q, &body).await;
        assert_error("timestamp out of window", &got, 401);
    }

    // body_md5 of another body, correctly signed.
    let other_md5 = switchyard_protocol::rest::body_md5(b"{}");
    let q = sign_query(
        SECRET,
        "POST",
        &path,
        &format!("auth_key={KEY}&auth_timestamp={now}&auth_version=1.0&body_md5={other_md5}"),
    );
    let got = post_events_with_query(&srv, &q, &body).await;
    assert_error("wrong body_md5", &got, 401);

    // A body without body_md5.
    let q = sign_query(
        SECRET,
        "POST",
        &path,
        &format!("auth_key={KEY}&auth_timestamp={now}&auth_version=1.0"),
    );
    let got = post_events_with_query(&srv, &q, &body).await;
    assert_error("missing body_md5", &got, 401);

    // GETs are checked too.
    let q = sign_query(
        "wrong-secret",
        "GET",
        &format!("/apps/{APP_ID}/channels"),
        &format!("auth_key={KEY}&auth_timestamp={now}&auth_version=1.0"),
    );
    let got = http(
        srv.addr,
        "GET",
        &format!("/apps/{APP_ID}/channels?{q}"),
        None,
        b"",
    )
    .await;
    assert_error("GET with bad signature", &got, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_app_is_forbidden() {
    let srv = TestServer::with_main_app("enabled = false").await;
    let got = srv.rest().post("/events", &event("x")).await;
    assert_error("disabled app", &got, 403);
    let got = srv.rest().get("/channels", &[]).await;
    assert_error("disabled app GET", &got, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_validation_errors() {
    let srv = TestServer::with_main_app("").await;
    let rest = srv.rest();

    // Data over 10 KB.
    let big = "x".repeat(10 * 1024 + 1);
    let got = rest
        .post(
            "/events",
            &json!({"name": "e", "channel": "c", "data": big}),
        )
        .await;
    assert_error("data > 10 KB", &got, 413);
    // Exactly 10 KB is fine.
    let (status, body) = rest
        .post(
            "/events",
            &json!({"name": "e", "channel": "c", "data": "x".repeat(10 * 1024)}),
        )
        .await;
    assert_eq!((status, body), (200, json!({})));

    // Invalid JSON (correctly signed).
    let got = rest.post_text("/events", "{not json").await;
    assert_error("invalid JSON", &got, 400);

    // Wrong content type.
    let body = event("c").to_string();
    let path = rest.path("/events");
    let q = rest.signed_query("POST", &path, &[], body.as_bytes());
    let got = http(
        srv.addr,
        "POST",
        &format!("{path}?{q}"),
        Some("text/plain"),
        body.as_bytes(),
    )
    .await;
    assert_error("text/plain body", &got, 415);

    // More than 100 channels; exactly 100 is fine.
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let got = rest
        .post(
            "/events",
            &json!({"name": "e", "channels": many, "data": "d"}),
        )
        .await;
    assert_error("101 channels", &got, 400);
    let hundred: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
    let (status, body) = rest
        .post(
            "/events",
            &json!({"name": "e", "channels": hundred, "data": "d"}),
        )
        .await;
    assert_eq!((status, body), (200, json!({})));

    // A batch of 11; 10 is fine.
    let batch: Vec<Value> = (0..11).map(|i| event(&format!("b{i}"))).collect();
    let got = rest.post("/batch_events", &json!({ "batch": batch })).await;
    assert_error("batch of 11", &got, 400);
    let batch: Vec<Value> = (0..10).map(|i| event(&format!("b{i}"))).collect();
    let (status, body) = rest.post("/batch_events", &json!({ "batch": batch })).await;
    assert_eq!((status, body), (200, json!({})));

    // An encrypted channel together with another.
    let got = rest
        .post(
            "/events",
            &json!({"name": "e", "channels": ["private-encrypted-s", "plain"], "data": "d"}),
        )
        .await;
    assert_error("encrypted + other channel", &got, 400);

    // Event name over 200 characters; exactly 200 is fine.
    let got = rest
        .post(
            "/events",
            &json!({"name": "e".repeat(201), "channel": "c", "data": "d"}),
        )
        .await;
    assert_error("event name of 201 chars", &got, 400);
    let (status, body) = rest
        .post(
            "/events",
            &json!({"name": "e".repeat(200), "channel": "c", "data": "d"}),
        )
        .await;
    assert_eq!((status, body), (200, json!({})));

    // Missing fields and bad values.
    for (what, bad) in [
        ("no name", json!({"channel": "c", "data": "d"})),
        ("no data", json!({"name": "e", "channel": "c"})),
        ("no channel", json!({"name": "e", "data": "d"})),
        (
            "invalid channel name",
            json!({"name": "e", "channel": "bad name", "data": "d"}),
        ),
        (
            "channel and channels",
            json!({"name": "e", "channel": "c", "channels": ["d"], "data": "d"}),
        ),
        (
            "invalid socket_id",
            json!({"name": "e", "channel": "c", "data": "d", "socket_id": "abc"}),
        ),
    ] {
        let got = rest.post("/events", &bad).await;
        assert_error(what, &got, 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_endpoints_are_404() {
    let srv = TestServer::with_main_app("").await;
    let rest = srv.rest();
    let got = rest.get("/nothing-here", &[]).await;
    assert_error("signed GET of an unknown endpoint", &got, 404);
    let got = rest.post("/channels", &json!({})).await;
    assert_error("POST to a GET endpoint", &got, 404);
    let got = http(srv.addr, "GET", "/no/such/path", None, b"").await;
    assert_error("path outside the API", &got, 404);
    let (status, body) = http(srv.addr, "GET", "/up", None, b"").await;
    assert_eq!((status, body), (200, json!({"ok": true})));
}
