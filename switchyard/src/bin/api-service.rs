//! `api-service [--config FILE]`: the Pusher HTTP API of a cluster.

use std::process::ExitCode;

use api_service::ApiDeps;
use switchyard::{app_store, cluster, launch};

const USAGE: &str = "usage: api-service [--config FILE]

Serves the Pusher HTTP API on [api] port (6201), /up and /ready on the same port.
Needs NATS ([cluster] nats_url) and channel-core ([cluster] core_url).";

fn main() -> ExitCode {
    launch::main(USAGE, |config, shutdown| async move {
        let bus = cluster::bus(&config).await?;
        let backend = app_store::backend(&config).await?;
        let deps = ApiDeps {
            apps: app_store::lookup(
                &config,
                backend.clone(),
                Some(bus.clone()),
                shutdown.clone(),
            ),
            core: cluster::core_client(&config)?,
            bus,
            admin: app_store::admin(&config, backend),
        };
        let listener =
            launch::bind_public(&config, config.api.port, "the HTTP API", &shutdown).await?;
        tracing::info!(addr = %listener.local_addr()?, "api-service listening");
        api_service::run(listener, deps, shutdown).await;
        Ok(())
    })
}
