//! Distributed mode under faults: a killed edge, a restarted channel-core, a restarted NATS,
//! Redis down, and the cross-edge paths every fault test relies on. Each test runs real
//! processes (see `cluster/mod.rs`); every wait is bounded. One test binary; each failing
//! part is a module, and this file holds what several of them share.

#[path = "../cluster/mod.rs"]
mod cluster;
#[path = "../support/mod.rs"]
mod support;

mod backends;
mod core_restart;
mod edges;
mod lost_state;

use cluster::*;
use serde_json::Value;
use support::{Client, Rest, WAIT};

/// `GET /channels/{channel}` with `info`, as (status, body).
async fn channel_info(rest: &Rest, channel: &str, info: &str) -> (u16, Value) {
    rest.get(&format!("/channels/{channel}"), &[("info", info)])
        .await
}

/// Waits until `client` receives an event `name` (bounded), skipping other frames.
async fn expect_event(client: &mut Client, name: &str, channel: &str) -> Value {
    recv_event_within(client, name, Some(channel), WAIT).await
}
