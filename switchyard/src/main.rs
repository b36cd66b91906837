//! `switchyard [--config FILE]`: the whole platform in one process.

use std::process::ExitCode;

use switchyard::{launch, Server};

const USAGE: &str = "usage: switchyard [--config FILE]

Runs Switchyard in one process: WebSocket and HTTP API on one port (default 6001).
Without a config file the default app is app-id / app-key / app-secret.
SWITCHYARD_* environment variables override the file (see config/example.toml).";

fn main() -> ExitCode {
    launch::main(USAGE, |config, shutdown| async move {
        let apps: Vec<&str> = config.apps.iter().map(|a| a.id.as_str()).collect();
        let (host, port) = (config.server.host.clone(), config.server.port);
        let server = Server::bind(config.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {host}:{port}: {e}"))?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, ?apps, "switchyard listening (embedded mode)");
        server.run(shutdown).await;
        tracing::info!("switchyard stopped");
        Ok(())
    })
}
