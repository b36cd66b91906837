//! Requests refused for their credentials: unknown app, key, signature, timestamp, body_md5, a
//! disabled app.

use serde_json::{json, Value};

use crate::support::*;

use super::event;

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
