//! `edge-gateway [--config FILE]`: one WebSocket edge of a cluster.

use std::process::ExitCode;

use edge_gateway::EdgeDeps;
use switchyard::{app_store, cluster, compose, launch};

const USAGE: &str = "usage: edge-gateway [--config FILE]

Serves Pusher WebSocket connections on [edge] port (6101), /up and /ready on the same port.
Needs NATS ([cluster] nats_url), channel-core ([cluster] core_url) and Redis for webhooks.";

fn main() -> ExitCode {
    launch::main(USAGE, |config, shutdown| async move {
        let port = config.edge.port;
        let edge_id = match config.edge.id.as_str() {
            "" => cluster::instance_name("edge", port),
            id => id.to_owned(),
        };
        let bus = cluster::bus(&config).await?;
        let backend = app_store::backend(&config).await?;
        let deps = EdgeDeps {
            apps: app_store::lookup(&config, backend, Some(bus.clone()), shutdown.clone()),
            core: cluster::core_client(&config)?,
            bus,
            webhooks: cluster::webhook_queue(&config, &edge_id).await?,
        };
        let listener =
            launch::bind_public(&config, port, "WebSocket connections", &shutdown).await?;
        tracing::info!(addr = %listener.local_addr()?, edge_id, "edge-gateway listening");
        let edge_config = compose::edge_config(&config, edge_id);
        edge_gateway::run(listener, edge_config, deps, shutdown).await;
        Ok(())
    })
}
