//! Observability for every Switchyard service: logs (text or JSON lines), OpenTelemetry spans
//! exported over OTLP/gRPC, W3C trace context for the hops between services ([`trace`]), and
//! Prometheus metrics ([`metrics`]).
//!
//! [`init`] installs it all once per process, inside the tokio runtime (the exporter's gRPC
//! channel lives there); [`Telemetry::shutdown`] flushes the spans still buffered.

mod log;
pub mod metrics;
pub mod trace;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

pub use log::loggable_url;
pub use trace::TraceParent;

/// How the process reports on itself; the `[telemetry]` and `[server] log_format` settings
/// with the standard `OTEL_*` variables already applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `service.name` of the exported spans.
    pub service_name: String,
    pub json_logs: bool,
    /// Where spans go (an OTLP/gRPC endpoint such as `http://jaeger:4317`); `None`: nowhere.
    pub otlp_endpoint: Option<String>,
    /// The share of new traces exported, 0 to 1.
    pub sample_ratio: f64,
    /// Whether a span whose parent came from another service follows the parent's decision
    /// (the default) instead of sampling by ratio itself.
    pub parent_based: bool,
    pub metrics: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(String),
    #[error("logging is already set up: {0}")]
    AlreadyInstalled(String),
}

/// The installed telemetry; [`Telemetry::shutdown`] it before the runtime goes away.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter. Bounded: a collector that is
    /// down costs at most a few seconds at exit, never a hang.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown_with_timeout(std::time::Duration::from_secs(5)) {
                eprintln!("spans may have been lost at exit: {e}");
            }
        }
    }
}

/// Installs logging, span export and the metrics switch for this process. Must run inside a
/// tokio runtime when spans are exported.
pub fn init(settings: &Settings) -> Result<Telemetry, TelemetryError> {
    metrics::set_enabled(settings.metrics);
    let levels = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Our spans are always open to the log layer, whatever RUST_LOG says about events, so a
    // warning logged inside a connection or a request still names its app and socket.
    let log_filter = levels.or(filter_fn(|meta| meta.is_span() && is_ours(meta)));
    let logs = if settings.json_logs {
        tracing_subscriber::fmt::layer()
            .event_format(log::JsonLines)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().boxed()
    }
    .with_filter(log_filter);
    let (spans, provider) = match &settings.otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            let provider = provider(settings, endpoint)?;
            // Lean spans: no source location, thread or busy/idle timing attributes.
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("switchyard"))
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_filter(filter_fn(is_exported));
            (Some(layer), Some(provider))
        }
    };
    tracing_subscriber::registry()
        .with(log::ContextFields)
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    trace::set_enabled(provider.is_some());
    Ok(Telemetry { provider })
}

fn provider(settings: &Settings, endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let ratio = Sampler::TraceIdRatioBased(settings.sample_ratio.clamp(0.0, 1.0));
    let sampler = if settings.parent_based {
        Sampler::ParentBased(Box::new(ratio))
    } else {
        ratio
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build())
}

/// Spans and events of Switchyard's own crates, not of the libraries under them (h2, tonic,
/// hyper), whose spans would drown ours and whose export would trace the exporter itself.
fn is_ours(meta: &Metadata<'_>) -> bool {
    // `switchyard` also covers `switchyard_bus`, `switchyard_proto` and the other libraries.
    const OURS: [&str; 5] = [
        "switchyard",
        "edge_gateway",
        "api_service",
        "channel_core",
        "webhook_worker",
    ];
    OURS.iter().any(|ours| meta.target().starts_with(ours))
}

/// What becomes OpenTelemetry data: our spans except a connection's (it lives for hours and
/// exists to put the app and socket on log lines), and our warnings and errors as span events.
fn is_exported(meta: &Metadata<'_>) -> bool {
    if !is_ours(meta) {
        return false;
    }
    if meta.is_span() {
        meta.name() != "connection"
    } else {
        *meta.level() <= Level::WARN
    }
}
