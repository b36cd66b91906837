//! The `pusher_internal:subscription_count` event.

use serde_json::{json, Value};

use crate::support::*;

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
