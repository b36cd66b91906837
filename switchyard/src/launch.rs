//! What every Switchyard binary does before and after its service runs: read `--config`,
//! validate the whole configuration (exit 64 on any problem), set up logging, turn SIGTERM and
//! Ctrl-C into a cancellation, and map the outcome to an exit status.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_config::{Config, LogFormat};
use switchyard_listener::Tls;
use tokio_util::sync::CancellationToken;

/// Exit status for an unusable configuration, as linkerd and sysexits' EX_USAGE use it.
const EXIT_CONFIG: u8 = 64;
/// Exit status for bad command-line usage.
const EXIT_USAGE: u8 = 2;

/// Parses arguments and config, then runs `service` on a tokio runtime until it returns.
pub fn main<F, Fut>(usage: &str, service: F) -> ExitCode
where
    F: FnOnce(Config, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config_path = match args.as_slice() {
        [] => None,
        [flag, path] if flag == "--config" || flag == "-c" => Some(path.clone()),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = match load(config_path.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("invalid configuration:\n{e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(config.server.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        service(config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the config file (if any) and the environment into a validated configuration.
pub fn load(path: Option<&str>) -> anyhow::Result<Config> {
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

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

/// Binds `host:port` with a message that names the setting on failure.
pub async fn bind(host: &str, port: u16, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    switchyard_listener::bind(host, port)
        .await
        .with_context(|| format!("cannot listen on {host}:{port} for {what}"))
}

/// Binds a public port (WebSockets, HTTP API): with TLS when `[server]` names a certificate,
/// whose files are then watched for renewals until `shutdown`.
pub async fn bind_public(
    config: &Config,
    port: u16,
    what: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<switchyard_listener::Listener> {
    let tcp = bind(&config.server.host, port, what).await?;
    let tls = tls(config)?;
    if let Some(tls) = &tls {
        watch_tls(config, tls, shutdown);
    }
    Ok(switchyard_listener::Listener::new(tcp, tls))
}

/// The certificate `[server]` names, loaded; `None` without one.
pub fn tls(config: &Config) -> anyhow::Result<Option<Arc<Tls>>> {
    let server = &config.server;
    if server.tls_cert_file.is_empty() {
        return Ok(None);
    }
    let tls = Tls::load(
        Path::new(&server.tls_cert_file),
        Path::new(&server.tls_key_file),
    )?;
    Ok(Some(tls))
}

/// Reloads a renewed certificate every `[server] tls_reload_secs` until `shutdown`.
pub fn watch_tls(config: &Config, tls: &Arc<Tls>, shutdown: &CancellationToken) {
    let every = Duration::from_secs(config.server.tls_reload_secs);
    tokio::spawn(tls.clone().watch(every, shutdown.clone()));
}
