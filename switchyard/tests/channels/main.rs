//! Channels over the WebSocket: public, private, presence, client events, sign-in,
//! server-to-user, cache channels and subscription counts. One test binary; each kind of
//! channel or feature is a module, and this file holds what several of them share.

#[path = "../support/mod.rs"]
mod support;

mod cache;
mod client_events;
mod limits;
mod presence;
mod subscribe;
mod subscription_count;
mod users;

use serde_json::{json, Value};
use support::*;

const CLIENT_EVENTS: &str = "enable_client_messages = true";

fn assert_subscription_error(frame: &Value, channel: &str, status: Option<u64>, what: &str) {
    assert_eq!(
        frame["event"], "pusher:subscription_error",
        "{what}: {frame}"
    );
    assert_eq!(frame["channel"], json!(channel), "{what}: {frame}");
    let data = data_of(frame);
    if let Some(status) = status {
        assert_eq!(data["status"], json!(status), "{what}: {frame}");
        if status == 401 {
            assert_eq!(data["type"], "AuthError", "{what}: {frame}");
        }
    }
    assert!(data["error"].is_string(), "{what}: {frame}");
}
