//! Requests refused for what they ask: invalid bodies and parameters, unknown endpoints.

use serde_json::{json, Value};

use crate::support::*;

use super::event;

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
