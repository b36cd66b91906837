//! Prometheus metrics: process-wide atomics behind one registry, rendered as the text format on
//! `/metrics`.
//!
//! Hand-rolled rather than a metrics crate because the hot paths need exactly this: a counter
//! is one relaxed atomic add, a per-app handle is looked up once per event (or held, as the
//! edge holds one per channel) and never per socket, and no label set is built at record time.
//! Labels are the app and the instance only; nothing is labelled per channel or socket, so
//! the number of series grows with apps, not traffic.

mod histogram;
mod render;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, PoisonError, RwLock};

pub use histogram::Histogram;
pub use render::{endpoint, render, CONTENT_TYPE};

/// On unless the configuration turns metrics off at start: then nothing is recorded and
/// `/metrics` answers 404.
static ENABLED: AtomicBool = AtomicBool::new(true);

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

static INSTANCE: OnceLock<String> = OnceLock::new();

/// Names this process in the `instance` label; the first call wins. Without one the label is
/// `<hostname>-<pid>`, unique among the processes of one host and the containers of a cluster.
pub fn set_instance(name: &str) {
    let _ = INSTANCE.set(name.to_owned());
}

pub(crate) fn instance() -> &'static str {
    INSTANCE.get_or_init(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{host}-{}", std::process::id())
    })
}

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        if enabled() {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn dec(&self) {
        self.add(-1);
    }

    pub fn add(&self, n: i64) {
        if enabled() {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn set(&self, n: i64) {
        if enabled() {
            self.0.store(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Metrics of one labelled family member, keyed by a `'static` label value (a gRPC method, a
/// Redis operation, a rejection reason): the set is fixed by the code, so entries are created
/// once and live for the process.
pub struct Labeled<T: 'static> {
    entries: RwLock<Vec<(&'static str, &'static T)>>,
}

impl<T: Default + 'static> Labeled<T> {
    fn new() -> Labeled<T> {
        Labeled {
            entries: RwLock::new(Vec::new()),
        }
    }

    pub fn get(&self, label: &'static str) -> &'static T {
        let found = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, t)| *t);
        if let Some(t) = found {
            return t;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, t)) = entries.iter().find(|(l, _)| *l == label) {
            return t;
        }
        // Bounded by the label values written in the code, so the leak is a fixed cost.
        let t: &'static T = Box::leak(Box::default());
        entries.push((label, t));
        t
    }

    pub(crate) fn snapshot(&self) -> Vec<(&'static str, &'static T)> {
        let mut all = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        all.sort_by_key(|(l, _)| *l);
        all
    }
}

/// A call's latency and its failures (gRPC methods, Redis operations).
#[derive(Default)]
pub struct Timing {
    pub latency: Histogram,
    pub errors: Counter,
}

/// How one webhook POST ended.
#[derive(Debug, Clone, Copy)]
pub enum WebhookOutcome {
    Delivered,
    /// The receiver answered 4xx: not retried.
    Rejected,
    /// A network error, timeout, 5xx, 408 or 429: retried until the window ends.
    Failed,
}

impl WebhookOutcome {
    pub(crate) const ALL: [WebhookOutcome; 3] = [
        WebhookOutcome::Delivered,
        WebhookOutcome::Rejected,
        WebhookOutcome::Failed,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Delivered => "delivered",
            WebhookOutcome::Rejected => "rejected",
            WebhookOutcome::Failed => "failed",
        }
    }
}

/// Everything labelled by app.
#[derive(Default)]
pub struct AppMetrics {
    /// WebSocket connections open here.
    pub connections: Gauge,
    /// (socket, channel) subscriptions held here.
    pub subscriptions: Gauge,
    /// Channels with at least one subscriber here.
    pub channels: Gauge,
    /// Frames received from WebSocket clients, and their bytes.
    pub client_messages: Counter,
    pub client_bytes: Counter,
    /// Events accepted by the HTTP API (one per channel), and their data's bytes.
    pub api_events: Counter,
    pub api_bytes: Counter,
    /// Frames queued to WebSocket clients (fan-out and replies), and their bytes.
    pub messages_sent: Counter,
    pub bytes_sent: Counter,
    /// From the API accepting a trigger to its frame being queued on every local socket.
    pub fanout_latency: Histogram,
    webhook_attempts: [Counter; 3],
    pub webhook_dead_letters: Counter,
    rejections: RwLock<HashMap<&'static str, Arc<Counter>>>,
}

impl AppMetrics {
    /// Counts a refused connection, subscription, client event or API request.
    pub fn reject(&self, reason: &'static str) {
        if !enabled() {
            return;
        }
        let found = self
            .rejections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(reason)
            .cloned();
        let counter = found.unwrap_or_else(|| {
            self.rejections
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(reason)
                .or_default()
                .clone()
        });
        counter.inc();
    }

    pub fn rejections(&self, reason: &str) -> u64 {
        self.rejections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(reason)
            .map_or(0, |c| c.get())
    }

    pub fn webhook_attempt(&self, outcome: WebhookOutcome) {
        self.webhook_attempts[outcome as usize].inc();
    }

    pub(crate) fn webhook_attempts(&self, outcome: WebhookOutcome) -> u64 {
        self.webhook_attempts[outcome as usize].get()
    }
}

/// Everything about the process rather than an app.
pub struct ProcessMetrics {
    pub bus_published: Counter,
    pub bus_received: Counter,
    /// Bus failures by operation (`publish`, `subscribe`, `decode`).
    pub bus_errors: Labeled<Counter>,
    /// gRPC calls to channel-core by method, as the caller sees them.
    pub grpc_client: Labeled<Timing>,
    /// gRPC calls served by channel-core by method.
    pub grpc_server: Labeled<Timing>,
    /// Redis calls of channel-core's store by operation.
    pub redis: Labeled<Timing>,
    /// Webhook jobs waiting in the queue (the worker samples it).
    pub webhook_queue_depth: Gauge,
    /// Connections closed because their outbound queue overflowed (4100).
    pub slow_consumers: Counter,
}

struct Registry {
    apps: RwLock<HashMap<Arc<str>, Arc<AppMetrics>>>,
    process: ProcessMetrics,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    apps: RwLock::new(HashMap::new()),
    process: ProcessMetrics {
        bus_published: Counter::default(),
        bus_received: Counter::default(),
        bus_errors: Labeled::new(),
        grpc_client: Labeled::new(),
        grpc_server: Labeled::new(),
        redis: Labeled::new(),
        webhook_queue_depth: Gauge::default(),
        slow_consumers: Counter::default(),
    },
});

/// The metrics of app `app_id` (created on first use). Hold the handle where an event
/// repeats, rather than looking it up each time.
pub fn app(app_id: &str) -> Arc<AppMetrics> {
    let found = REGISTRY
        .apps
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(app_id)
        .cloned();
    found.unwrap_or_else(|| {
        REGISTRY
            .apps
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(app_id.into())
            .or_default()
            .clone()
    })
}

pub fn process() -> &'static ProcessMetrics {
    &REGISTRY.process
}

fn apps() -> Vec<(Arc<str>, Arc<AppMetrics>)> {
    let mut all: Vec<_> = REGISTRY
        .apps
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(id, m)| (id.clone(), m.clone()))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}
