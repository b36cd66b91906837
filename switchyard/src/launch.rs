//! What every Switchyard binary does before and after its service runs: read `--config`,
//! validate the whole configuration (exit 64 on any problem), set up logging, span export and
//! metrics, turn SIGTERM and Ctrl-C into a cancellation, flush the last spans and map the
//! outcome to an exit status.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use switchyard_config::{Config, LogFormat};
use switchyard_listener::Tls;
use switchyard_telemetry::{Settings, Telemetry};
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Inside the runtime: the span exporter's gRPC channel is created on it.
    let telemetry = match runtime.block_on(async { telemetry(&config) }) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        service(config, shutdown).await
    });
    if let Err(e) = &result {
        tracing::error!("{e:#}");
    }
    // While the runtime still runs: the last spans leave through it.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// Logging, span export and metrics as `[server] log_format` and `[telemetry]` say. Spans
/// are named after the binary unless `service_name` (or `OTEL_SERVICE_NAME`) says otherwise.
fn telemetry(config: &Config) -> Result<Telemetry, switchyard_telemetry::TelemetryError> {
    let t = &config.telemetry;
    let binary = std::env::args()
        .next()
        .and_then(|arg0| {
            Path::new(&arg0)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "switchyard".to_owned());
    switchyard_telemetry::init(&Settings {
        service_name: Some(t.service_name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or(binary),
        json_logs: config.server.log_format == LogFormat::Json,
        otlp_endpoint: Some(t.otlp_endpoint.clone()).filter(|e| !e.is_empty()),
        sample_ratio: t.sample_ratio,
        parent_based: t.parent_based,
        metrics: t.metrics,
    })
}

/// Reads the config file (if any) and the environment into a validated configuration.
pub fn load(path: Option<&str>) -> anyhow::Result<Config> {
    let text = path
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {p}")))
        .transpose()?;
    let env: HashMap<String, String> = std::env::vars().collect();
    Ok(Config::load(text.as_deref(), &env)?)
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
    Ok(with_backpressure(
        config,
        switchyard_listener::Listener::new(tcp, tls),
    ))
}

/// With `[server] max_edge_connections`, accepting pauses a little above the cap: up to the
/// cap connections are served, the next few are refused with 4100 (so clients back off), and
/// beyond that new ones wait in the kernel's backlog rather than cost memory here.
pub fn with_backpressure(
    config: &Config,
    listener: switchyard_listener::Listener,
) -> switchyard_listener::Listener {
    match config.server.max_edge_connections {
        0 => listener,
        max => listener.with_max_open(max + max / 10 + 16),
    }
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
    tokio::spawn(
        tls.clone()
            .watch(config.server.tls_reload, shutdown.clone()),
    );
}

/// Runs a one-shot command (`switchyard apps …`, `webhook-worker dead-letters …`): loads the
/// config (exit 64 if it is unusable), runs `command` on a small runtime and prints the lines
/// it returns; an error is printed and exits 1.
pub fn command<F, Fut>(config_path: Option<&str>, command: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<String>>>,
{
    let config = match load(config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("invalid configuration:\n{e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(command(config)));
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
