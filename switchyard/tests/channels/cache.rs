//! Cache channels: a miss, then the last event replayed to new subscribers.

use serde_json::json;

use crate::support::*;

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
