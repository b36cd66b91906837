//! WebSocket connection lifecycle: handshake, heartbeat, close codes, error handling,
//! timers and shutdown.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

fn is_socket_id(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_established_has_socket_id_and_activity_timeout() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv
        .connect_raw(&format!("/app/{KEY}?protocol=7&client=js&version=8.6.0"))
        .await;
    let frame = c.recv_json().await;
    assert_eq!(
        frame["event"], "pusher:connection_established",
        "frame: {frame}"
    );
    assert!(
        frame["data"].is_string(),
        "data must be a JSON string: {frame}"
    );
    let data = data_of(&frame);
    let socket_id = data["socket_id"].as_str().expect("socket_id string");
    assert!(is_socket_id(socket_id), "socket_id {socket_id:?}");
    assert_eq!(data["activity_timeout"], json!(120), "data: {data}");

    // Two connections never share a socket id.
    let other = srv.connect().await;
    assert_ne!(other.socket_id(), socket_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_protocol_versions_are_accepted() {
    let srv = TestServer::with_main_app("").await;
    for v in [5, 6] {
        let mut c = srv.connect_raw(&format!("/app/{KEY}?protocol={v}")).await;
        c.established().await;
        c.ping_pong().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pusher_ping_is_answered_with_pong() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    c.send_json(&json!({"event": "pusher:ping", "data": {}}))
        .await;
    let pong = c.recv_json().await;
    assert_eq!(pong, json!({"event": "pusher:pong", "data": "{}"}));
    // data as a string is accepted too
    c.send_json(&json!({"event": "pusher:ping", "data": "{}"}))
        .await;
    assert_eq!(c.recv_json().await["event"], "pusher:pong");
}

async fn close_code_for(srv: &TestServer, path: &str) -> (u16, String) {
    let mut c = srv.connect_raw(path).await;
    c.expect_close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_get_the_documented_close_codes() {
    let srv = TestServer::with_main_app("").await;
    let cases = [
        ("/app/no-such-key?protocol=7", 4001, "unknown key"),
        ("/foo?protocol=7", 4005, "wrong path"),
        ("/app/{KEY}?client=js", 4008, "missing protocol"),
        ("/app/{KEY}?protocol=abc", 4006, "non-numeric protocol"),
        ("/app/{KEY}?protocol=4", 4007, "protocol 4"),
        ("/app/{KEY}?protocol=8", 4007, "protocol 8"),
    ];
    for (path, code, what) in cases {
        let path = path.replace("{KEY}", KEY);
        let (got, reason) = close_code_for(&srv, &path).await;
        assert_eq!(got, code, "{what} ({path}): reason {reason:?}");
        assert!(!reason.is_empty(), "{what}: close frames carry a reason");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_sends_error_then_closes_4001() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect_raw("/app/nope?protocol=7").await;
    // A pusher:error before the close is fine; the close code is what clients act on.
    let (code, _) = c.expect_close().await;
    assert_eq!(code, 4001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_app_is_closed_with_4003() {
    let srv = TestServer::with_main_app("enabled = false").await;
    let (code, reason) = close_code_for(&srv, &format!("/app/{KEY}?protocol=7")).await;
    assert_eq!(code, 4003, "reason {reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_connection_quota_is_closed_with_4004() {
    let srv = TestServer::with_main_app("max_connections = 1").await;
    let mut first = srv.connect().await;
    let (code, reason) = close_code_for(&srv, &format!("/app/{KEY}?protocol=7")).await;
    assert_eq!(code, 4004, "reason {reason:?}");
    // The refused connection did not count; the first one still works.
    first.ping_pong().await;
    first.close().await;
    // Once the first has gone, a new connection is admitted again.
    let mut admitted = None;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let mut c = srv.connect_raw(&format!("/app/{KEY}?protocol=7")).await;
        match c.next_within(WAIT).await {
            Some(Incoming::Json(v)) if v["event"] == "pusher:connection_established" => {
                admitted = Some(c);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(
        admitted.is_some(),
        "the quota slot was not released after the first connection closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_origin_is_closed_with_4009() {
    let srv = TestServer::with_main_app(r#"allowed_origins = ["https://good.example"]"#).await;
    let path = format!("/app/{KEY}?protocol=7");
    let mut bad = srv
        .connect_with_origin(&path, Some("https://evil.example"))
        .await;
    let (code, reason) = bad.expect_close().await;
    assert_eq!(code, 4009, "reason {reason:?}");

    let mut good = srv
        .connect_with_origin(&path, Some("https://good.example"))
        .await;
    good.established().await;
    good.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_an_error_and_the_connection_stays() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    c.send_text("this is {not json").await;
    let err = c.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "{err}");
    assert!(err["data"]["code"].is_u64(), "error code: {err}");
    assert!(err["data"]["message"].is_string(), "error message: {err}");
    c.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_event_is_an_error() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    c.send_json(&json!({"event": "pusher:bogus", "data": {}}))
        .await;
    let err = c.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "{err}");
    assert!(err["data"]["message"].is_string(), "{err}");
    c.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frame_is_an_error_and_the_connection_stays() {
    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    c.send_binary(br#"{"event":"pusher:ping","data":{}}"#.to_vec())
        .await;
    let err = c.recv_json().await;
    assert_eq!(err["event"], "pusher:error", "{err}");
    c.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_is_closed_with_1009() {
    let srv = TestServer::start(&format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\nshutdown_grace_secs = 1\nmax_message_bytes = 2048\n{}",
        app_toml(APP_ID, KEY, SECRET, "")
    ))
    .await;
    let mut c = srv.connect().await;
    // Just under the limit is fine.
    let small = json!({"event": "pusher:ping", "data": {"pad": "x".repeat(1500)}}).to_string();
    assert!(small.len() < 2048);
    c.send_text(&small).await;
    assert_eq!(c.recv_json().await["event"], "pusher:pong");

    let big = json!({"event": "pusher:ping", "data": {"pad": "x".repeat(3000)}}).to_string();
    c.send_text(&big).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 1009, "reason {reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_pinged_then_closed_with_4201() {
    let srv = TestServer::start(&format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\nshutdown_grace_secs = 1\nactivity_timeout_secs = 1\npong_timeout_secs = 1\n{}",
        app_toml(APP_ID, KEY, SECRET, "")
    ))
    .await;
    let mut silent = srv.connect().await;
    let mut lively = srv.connect().await;

    let lively_task = tokio::spawn(async move {
        // Answers every server ping; must outlive the silent one.
        let start = Instant::now();
        let mut pings = 0;
        while start.elapsed() < Duration::from_millis(3200) {
            if let Some(frame) = lively.try_recv(Duration::from_millis(200)).await {
                assert_eq!(frame["event"], "pusher:ping", "{frame}");
                pings += 1;
                lively
                    .send_json(&json!({"event": "pusher:pong", "data": {}}))
                    .await;
            }
        }
        lively.ping_pong().await;
        pings
    });

    let start = Instant::now();
    let ping = silent.recv_json().await;
    let waited = start.elapsed();
    assert_eq!(ping, json!({"event": "pusher:ping", "data": "{}"}));
    assert!(
        waited >= Duration::from_millis(700) && waited <= Duration::from_millis(2500),
        "server ping came after {waited:?}, expected about 1 s"
    );
    let (code, reason) = silent.expect_close_within(Duration::from_secs(4)).await;
    assert_eq!(code, 4201, "reason {reason:?}");
    let total = start.elapsed();
    assert!(
        total <= Duration::from_secs(4),
        "closed {total:?} after connecting"
    );

    let pings = tokio::time::timeout(Duration::from_secs(8), lively_task)
        .await
        .expect("lively client task timed out")
        .expect("lively client failed");
    assert!(
        pings >= 2,
        "lively client should have been pinged repeatedly, got {pings}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_connections_required_closes_idle_but_not_signed_in() {
    let srv = TestServer::with_main_app(
        "require_authorized_connections = true\nauthorization_timeout_secs = 1",
    )
    .await;
    let mut idle = srv.connect().await;
    let mut signed = srv.connect().await;
    signed.signin("42").await;

    let start = Instant::now();
    let (code, reason) = idle.expect_close().await;
    assert_eq!(code, 4009, "reason {reason:?}");
    assert!(
        start.elapsed() <= Duration::from_millis(2500),
        "closed after {:?}",
        start.elapsed()
    );

    // Past the deadline the signed-in connection is still served.
    tokio::time::sleep(Duration::from_millis(500)).await;
    signed.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_connections_accept_a_private_subscription() {
    let srv = TestServer::with_main_app(
        "require_authorized_connections = true\nauthorization_timeout_secs = 1",
    )
    .await;
    let mut c = srv.connect().await;
    c.subscribe_private("private-auth").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_clients_with_4200() {
    let srv = TestServer::with_main_app("").await;
    let mut a = srv.connect().await;
    let mut b = srv.connect().await;
    b.subscribe("some-channel").await;
    srv.stop.cancel();
    let (code_a, reason_a) = a.expect_close().await;
    let (code_b, reason_b) = b.expect_close().await;
    assert_eq!(code_a, 4200, "reason {reason_a:?}");
    assert_eq!(code_b, 4200, "reason {reason_b:?}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_connection_does_not_affect_others() {
    let srv = TestServer::start(&format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\nshutdown_grace_secs = 1\nmax_message_bytes = 2048\n{}",
        app_toml(APP_ID, KEY, SECRET, "")
    ))
    .await;
    let mut good = srv.connect().await;
    good.subscribe("shared").await;
    let mut bad = srv.connect().await;
    bad.subscribe("shared").await;

    bad.send_text("{{{").await;
    bad.send_binary(vec![0, 1, 2]).await;
    bad.send_json(&json!({"event": "pusher:subscribe", "data": {}}))
        .await;
    bad.send_json(&json!({"event": "nonsense"})).await;
    bad.send_text(&"x".repeat(4096)).await;
    let (code, _) = bad.expect_close().await;
    assert_eq!(code, 1009);

    good.ping_pong().await;
    srv.rest().trigger("shared", "after", "still here").await;
    let ev = good.recv_json().await;
    assert_eq!(ev["event"], "after", "{ev}");
    assert_eq!(ev["data"], "still here");
    good.expect_silence(QUIET, "only the triggered event").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_frames_are_answered_with_pong_frames() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let srv = TestServer::with_main_app("").await;
    let mut c = srv.connect().await;
    c.ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("send ping frame");
    let pong = tokio::time::timeout(WAIT, async {
        loop {
            match c.ws.next().await {
                Some(Ok(Message::Pong(payload))) => break payload.to_vec(),
                Some(Ok(Message::Text(t))) => panic!("unexpected text frame {t}"),
                Some(Ok(_)) => continue,
                other => panic!("connection ended waiting for pong: {other:?}"),
            }
        }
    })
    .await
    .expect("no pong frame within 5 s");
    assert_eq!(pong, b"are you there");
    c.ping_pong().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_advertises_the_configured_activity_timeout() {
    let srv = TestServer::start(&format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\nactivity_timeout_secs = 37\n{}",
        app_toml(APP_ID, KEY, SECRET, "")
    ))
    .await;
    let mut c = srv.connect_raw(&format!("/app/{KEY}?protocol=7")).await;
    let frame = c.established().await;
    assert_eq!(data_of(&frame)["activity_timeout"], json!(37), "{frame}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_connections_are_not_satisfied_by_public_channels() {
    let srv = TestServer::with_main_app(
        "require_authorized_connections = true\nauthorization_timeout_secs = 1",
    )
    .await;
    let mut c = srv.connect().await;
    c.subscribe("public-only").await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 4009, "reason {reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_at_its_connection_cap_closes_new_ones_with_4100() {
    let srv = TestServer::start(&format!(
        "{SERVER}max_edge_connections = 2\n{}",
        support::app_toml(APP_ID, KEY, SECRET, "")
    ))
    .await;
    let _first = srv.connect().await;
    let second = srv.connect().await;
    let (code, reason) = close_code_for(&srv, &format!("/app/{KEY}?protocol=7")).await;
    assert_eq!(code, 4100, "reason {reason:?}");
    second.close().await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut c = srv.connect_raw(&format!("/app/{KEY}?protocol=7")).await;
        match c.next_within(WAIT).await {
            Some(Incoming::Json(v)) if v["event"] == "pusher:connection_established" => break,
            other if Instant::now() > deadline => panic!("no slot freed up: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
