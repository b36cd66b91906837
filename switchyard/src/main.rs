//! `switchyard [--config FILE]`: the whole platform in one process.
//! `switchyard apps …`: manage apps in the configured app store.

use std::process::ExitCode;

use switchyard::apps_cli::{self, AppsCommand};
use switchyard::{app_store, launch, Server};
use switchyard_bus::NatsBus;

const USAGE: &str = "usage: switchyard [--config FILE]
       switchyard apps [--config FILE] COMMAND   (switchyard apps --help)

Runs Switchyard in one process: WebSocket and HTTP API on one port (default 6001).
Without a config file the default app is app-id / app-key / app-secret.
SWITCHYARD_* environment variables override the file (see config/example.toml).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(("apps", rest)) = args.split_first().map(|(a, r)| (a.as_str(), r)) {
        return apps_command(rest);
    }
    launch::main(USAGE, |config, shutdown| async move {
        let apps: Vec<&str> = config.apps.iter().map(|a| a.id.as_str()).collect();
        let server = Server::bind(config.clone()).await?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, ?apps, store = %config.app_store.backend, "switchyard listening (embedded mode)");
        server.run(shutdown).await;
        tracing::info!("switchyard stopped");
        Ok(())
    })
}

fn apps_command(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", apps_cli::USAGE);
        return ExitCode::SUCCESS;
    }
    let (command, path) = match AppsCommand::parse(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}\n\n{}", apps_cli::USAGE);
            return ExitCode::from(2);
        }
    };
    launch::command(path.as_deref(), |config| async move {
        let store = app_store::backend(&config).await?;
        let changed = command.changes().map(str::to_owned);
        let lines = command.run(store.as_ref()).await?;
        if let Some(id) = changed {
            announce(&config, &id).await;
        }
        Ok(lines)
    })
}

/// Tells running services about the change at once; without NATS they see it within the
/// cache TTL, which is said rather than treated as a failure.
async fn announce(config: &switchyard_config::Config, app_id: &str) {
    match NatsBus::connect(&config.cluster.nats_url).await {
        Ok(bus) => {
            api_service::announce(&bus, app_id).await;
            // Publishing is buffered; give it a moment to leave before the process exits.
            if let Err(e) = bus.flush().await {
                eprintln!("note: the change may not have been announced: {e}");
            }
        }
        Err(_) => eprintln!(
            "note: NATS is not reachable, so running services see this change within {} ms",
            config.app_store.cache_ttl.as_millis()
        ),
    }
}
