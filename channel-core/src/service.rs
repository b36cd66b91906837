//! channel-core as a service: a [`Core`] built from its settings and dependencies, and [`run`],
//! the loops every replica runs beside whatever reaches the core (gRPC in the distributed mode,
//! direct calls in the embedded one). Serving gRPC is the `proto` crate's, which depends on
//! this one, so the binary composes the two.

use std::sync::Arc;
use std::time::Duration;

use switchyard_apps::AppStore;
use switchyard_bus::Bus;
use switchyard_webhook::WebhookSink;
use tokio_util::sync::CancellationToken;

use crate::core::Core;
use crate::store::ChannelStore;

/// How often a replica looks for held leaving webhooks that are due: well under the 3 s hold,
/// so a webhook leaves at most this much later than its hold ends.
pub const HOLD_CHECK_EVERY: Duration = Duration::from_millis(250);

/// How core keeps time.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// How long an edge lives without heartbeats before it is reaped.
    pub lease_ttl: Duration,
    /// How often the reaper looks for expired leases.
    pub reap_interval: Duration,
    /// How often due webhook holds are sent.
    pub hold_check: Duration,
}

/// What a core is built over: memory in the embedded mode, Redis and NATS in the distributed
/// one.
pub struct CoreDeps {
    pub store: Arc<dyn ChannelStore>,
    pub bus: Arc<dyn Bus>,
    pub apps: Arc<dyn AppStore>,
    pub webhooks: Arc<dyn WebhookSink>,
}

impl Core {
    /// A core over `deps` with `config`'s lease.
    pub fn from_deps(config: &CoreConfig, deps: CoreDeps) -> Core {
        Core::new(deps.store, deps.bus, deps.apps, deps.webhooks).with_lease_ttl(config.lease_ttl)
    }
}

/// Reaps dead edges and sends due webhook holds until `shutdown`. Any number of replicas may
/// run this at once over one store: each dead edge and each hold is claimed by one of them.
pub async fn run(config: CoreConfig, core: Arc<Core>, shutdown: CancellationToken) {
    tokio::join!(
        core.clone()
            .run_reaper(config.reap_interval, shutdown.clone()),
        core.run_relay(config.hold_check, shutdown),
    );
}
