//! `api-service [--config FILE]`: the Pusher HTTP API of a cluster.

use std::process::ExitCode;

use api_service::ApiDeps;
use switchyard::{cluster, launch};

const USAGE: &str = "usage: api-service [--config FILE]

Serves the Pusher HTTP API on [api] port (6201), /up and /ready on the same port.
Needs NATS ([cluster] nats_url) and channel-core ([cluster] core_url).";

fn main() -> ExitCode {
    launch::main(USAGE, |config, shutdown| async move {
        let deps = ApiDeps {
            apps: cluster::apps(&config),
            core: cluster::core_client(&config)?,
            bus: cluster::bus(&config).await?,
        };
        let listener = launch::bind(&config.server.host, config.api.port, "the HTTP API").await?;
        tracing::info!(addr = %listener.local_addr()?, "api-service listening");
        api_service::run(listener, deps, shutdown).await;
        Ok(())
    })
}
