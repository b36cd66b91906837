//! `switchyard [--config FILE]`: the whole platform in one process.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use switchyard::Server;
use switchyard_config::{Config, LogFormat};
use tokio_util::sync::CancellationToken;

const USAGE: &str = "usage: switchyard [--config FILE]

Runs Switchyard in one process: WebSocket and HTTP API on one port (default 6001).
Without a config file the default app is app-id / app-key / app-secret.
SWITCHYARD_* environment variables override the file (see config/example.toml).";

/// Exit status for an unusable configuration (as linkerd and sysexits EX_USAGE do).
const EXIT_CONFIG: u8 = 64;
/// Exit status for bad command-line usage.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config_path = match args.as_slice() {
        [] => None,
        [flag, path] if flag == "--config" || flag == "-c" => Some(path.clone()),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = match load(config_path.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("switchyard: invalid configuration:\n{e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(config.server.log_format);
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&str>) -> anyhow::Result<Config> {
    let text = path
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {p}")))
        .transpose()?;
    let env: HashMap<String, String> = std::env::vars().collect();
    Ok(Config::load(text.as_deref(), &env)?)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn serve(config: Config) -> anyhow::Result<()> {
    let apps: Vec<&str> = config.apps.iter().map(|a| a.id.as_str()).collect();
    let server = Server::bind(config.clone()).await.with_context(|| {
        format!(
            "cannot listen on {}:{}",
            config.server.host, config.server.port
        )
    })?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, ?apps, "switchyard listening (embedded mode)");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    server.run(shutdown).await;
    tracing::info!("switchyard stopped");
    Ok(())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: clients are told to reconnect");
    shutdown.cancel();
}
