//! The HTTP API: triggering, channel queries, and every way a request is refused. One test
//! binary; each concern is a module, and this file holds what several of them share.

#[path = "../support/mod.rs"]
mod support;

mod auth_errors;
mod queries;
mod request_errors;
mod trigger;

use serde_json::{json, Value};

fn event(channel: &str) -> Value {
    json!({"name": "e", "channel": channel, "data": "d"})
}
