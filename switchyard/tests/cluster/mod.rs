//! A whole distributed-mode cluster of real processes for the integration tests: channel-core
//! (one or two replicas), two edges, the API and optionally the webhook worker with a webhook
//! receiver in the test, over the shared NATS/Redis (127.0.0.1:4222 / :6379) or private ones
//! the test may kill and restart.
//!
//! Every wait is bounded. Each cluster uses its own Redis namespace (deleted at the end) and a
//! unique tag for channel and user names, since bus subjects are not namespaced and the shared
//! NATS may carry other clusters' traffic. Dropping a [`TestCluster`] SIGKILLs every process it
//! started; when the test is panicking it first prints the tail of each process's log.
//!
//! Each concern lives in its own submodule; everything is re-exported here, so tests name
//! `cluster::TestCluster`, `cluster::Hooks` and so on.

#![allow(dead_code)]

mod checks;
mod clients;
mod hooks;
mod processes;
mod proxy;
mod test_cluster;

use std::time::Duration;

// Every test binary uses a subset of these re-exports.
#[allow(unused_imports)]
pub use checks::{channel_names, poll_until, users, Checks};
#[allow(unused_imports)]
pub use clients::{
    connect_to, drain_frames, join_presence, recv_event_within, signin, subscribe_private,
};
#[allow(unused_imports)]
pub use hooks::{count_events, count_per_user, distinct, Hooks};
#[allow(unused_imports)]
pub use processes::{http_status, Backend, Proc, Service};
#[allow(unused_imports)]
pub use proxy::{EdgeLinks, Proxy};
#[allow(unused_imports)]
pub use test_cluster::TestCluster;

pub const CLUSTER_APP: &str = "app-id";
pub const CLUSTER_KEY: &str = "app-key";
pub const CLUSTER_SECRET: &str = "app-secret";

/// Lease settings every cluster runs with (see the config written by [`TestCluster::start`]).
pub const LEASE_TTL: Duration = Duration::from_millis(3000);
pub const REAP_INTERVAL: Duration = Duration::from_millis(250);
/// How long core holds `member_removed` / `channel_vacated` webhooks.
pub const WEBHOOK_HOLD: Duration = Duration::from_secs(3);

/// How long a process may take to become ready after it was started.
const STARTUP: Duration = Duration::from_secs(20);
const SHARED_NATS_PORT: u16 = 4222;
const SHARED_REDIS_PORT: u16 = 6379;
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// What a test wants in its cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// 1 or 2 channel-core replicas. With 2, edge 1 and the API use core 1, edge 2 core 2.
    pub cores: usize,
    /// Start a nats-server for this cluster alone (so the test may kill it).
    pub private_nats: bool,
    /// Start a redis-server for this cluster alone (so the test may kill it).
    pub private_redis: bool,
    /// With `private_redis`: keep its data across restarts (append-only file, fsync always),
    /// as a production Redis holding the webhook queue must.
    pub durable_redis: bool,
    /// Start the webhook worker and a webhook receiver; the app's webhook points at it.
    pub webhooks: bool,
    /// Edge 2 reaches NATS and its core through proxies in the test process
    /// ([`TestCluster::edge2_links`]) that the test may cut, partitioning that edge alone.
    pub edge2_via_proxy: bool,
    /// Lines added to `[server]`.
    pub server: String,
    /// Lines added to the app's `[[apps]]` table.
    pub app: String,
    /// Whole sections appended to the config (`[app_store]`…).
    pub sections: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cores: 1,
            private_nats: false,
            private_redis: false,
            durable_redis: false,
            webhooks: false,
            edge2_via_proxy: false,
            server: String::new(),
            app: String::new(),
            sections: String::new(),
        }
    }
}
