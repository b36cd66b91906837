//! `channel-core [--config FILE]`: channel state over Redis, served over gRPC. Several
//! replicas may run at once.

use std::process::ExitCode;

use switchyard::{cluster, compose, launch};

const USAGE: &str = "usage: channel-core [--config FILE]

Serves gRPC on [core] port (6301) and /up, /ready on [core] health_port (6302).
Needs Redis ([cluster] redis_url) and NATS ([cluster] nats_url).";

fn main() -> ExitCode {
    launch::main(USAGE, |config, shutdown| async move {
        let name = cluster::instance_name("core", config.core.port);
        let deps = cluster::core_deps(&config, &name, &shutdown).await?;
        tracing::info!(name, "channel-core starting");
        compose::serve_core(&config, compose::core(&config, deps), shutdown).await
    })
}
