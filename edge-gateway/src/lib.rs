//! edge-gateway: holds WebSocket connections and speaks Pusher protocol 7.
//!
//! Each connection is one task ([`connection`]); client events are handled one file per event
//! ([`events`]); the local index and fan-out live in [`hub`]. Everything the edge needs from
//! the rest of the system arrives as trait objects in [`EdgeDeps`].

mod admission;
mod connection;
mod deaf;
mod events;
mod hub;
mod lease;
mod peer;
mod presence_view;
mod removals;

pub use peer::slow_consumers_closed;
mod reporter;
mod resync;
mod session;
mod upgrade;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use channel_core::{CoreError, EdgeCore};
use hyper::{Response, StatusCode};
use switchyard_apps::AppStore;
use switchyard_bus::Bus;
use switchyard_listener::{Body, Service, UpgradeHook};
use switchyard_webhook::WebhookSink;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::{IpRate, LiveApps};
use crate::hub::Hub;
use crate::removals::Removals;
use crate::reporter::Reporter;

/// Edge settings; durations and sizes already parsed.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// This edge's name in core (leases, counts). Unique per running edge.
    pub edge_id: String,
    /// Silence after which the server pings the client (`activity_timeout` in the handshake).
    pub activity_timeout: Duration,
    /// Time allowed for a pong after the server's ping before closing with 4201.
    pub pong_timeout: Duration,
    /// Largest inbound message; larger ones close the connection with 1009.
    pub max_message_bytes: usize,
    /// Frames queued per socket before it counts as a slow consumer (closed with 4100).
    pub outbound_queue: usize,
    /// The same limit in bytes.
    pub outbound_queue_bytes: usize,
    /// Connections this edge holds at most (0: no limit); beyond it, 4100.
    pub max_connections: usize,
    /// How long shutdown waits for connections to close after sending 4200.
    pub shutdown_grace: Duration,
    /// How often the edge renews its lease in core.
    pub heartbeat_interval: Duration,
    /// How long a channel's bus subscription outlives its last local subscriber.
    pub linger: Duration,
    /// New connections accepted per second from one IP address; 0: no limit.
    pub max_connections_per_ip_per_second: u32,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            edge_id: "edge-1".into(),
            activity_timeout: Duration::from_secs(120),
            pong_timeout: Duration::from_secs(30),
            max_message_bytes: 64 * 1024,
            outbound_queue: 1024,
            outbound_queue_bytes: 1 << 20,
            max_connections: 0,
            shutdown_grace: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(2),
            linger: Duration::from_secs(2),
            max_connections_per_ip_per_second: 0,
        }
    }
}

/// What the edge talks to.
#[derive(Clone)]
pub struct EdgeDeps {
    pub apps: Arc<dyn AppStore>,
    pub core: Arc<dyn EdgeCore>,
    pub bus: Arc<dyn Bus>,
    pub webhooks: Arc<dyn WebhookSink>,
}

/// One running edge.
pub struct Edge {
    config: EdgeConfig,
    deps: EdgeDeps,
    hub: Arc<Hub>,
    reporter: Arc<Reporter>,
    socket_prefix: u64,
    next_socket: AtomicU64,
    live_apps: LiveApps,
    ip_rate: IpRate,
    shutdown: CancellationToken,
    connections: TaskTracker,
    /// The last heartbeat reached core: the edge can serve subscriptions.
    ready: AtomicBool,
    /// Starts as `config.edge_id`; replaced if core ever forgets this edge (see [`lease`]).
    id: RwLock<Arc<str>>,
    /// Core granted the lease of the current id.
    leased: AtomicBool,
    /// Asks for a heartbeat now (a new id needs its lease at once).
    beat_now: Notify,
    /// Removals core has yet to confirm.
    removals: Removals,
    /// Asks for the pending removals to be sent (core just answered a heartbeat).
    retry_removals: Notify,
}

impl Edge {
    /// Builds an edge and starts its background reporter. Connections stop on `shutdown`.
    pub fn new(config: EdgeConfig, deps: EdgeDeps, shutdown: CancellationToken) -> Arc<Edge> {
        let config_id: Arc<str> = config.edge_id.as_str().into();
        let ip_rate = IpRate::new(config.max_connections_per_ip_per_second);
        let edge = Arc::new(Edge {
            config,
            deps,
            hub: Arc::new(Hub::default()),
            reporter: Arc::new(Reporter::default()),
            // Random so socket ids from different edges and restarts do not collide.
            socket_prefix: rand::random::<u32>() as u64,
            next_socket: AtomicU64::new(rand::random::<u32>() as u64),
            live_apps: LiveApps::default(),
            ip_rate,
            shutdown,
            connections: TaskTracker::new(),
            ready: AtomicBool::new(false),
            id: RwLock::new(config_id),
            leased: AtomicBool::new(false),
            beat_now: Notify::new(),
            removals: Removals::default(),
            retry_removals: Notify::new(),
        });
        tokio::spawn(edge.clone().report());
        tokio::spawn(edge.clone().beat());
        tokio::spawn(edge.clone().send_removals());
        tokio::spawn(edge.clone().resync());
        tokio::spawn(edge.clone().watch_bus());
        tokio::spawn(edge.clone().sweep());
        tokio::spawn(edge.clone().watch_apps());
        tokio::spawn(edge.clone().send_away_on_shutdown());
        edge
    }

    /// Lets go of bus subscriptions that have lingered unused.
    async fn sweep(self: Arc<Self>) {
        let linger = self.config.linger;
        let mut tick = tokio::time::interval((linger / 2).max(Duration::from_millis(100)));
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = tick.tick() => self.hub.sweep(linger),
            }
        }
    }

    /// Sends count changes to core until shutdown (see [`reporter`]).
    async fn report(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = self.reporter.changed() => {}
            }
            let id = self.id();
            match self
                .reporter
                .flush(&id, &self.hub, self.deps.core.as_ref())
                .await
            {
                Ok(()) => {}
                Err(CoreError::Fenced(_)) => self.start_afresh(&id),
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    /// This edge's current name in core.
    pub fn id(&self) -> Arc<str> {
        self.id
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether channel-core accepted the last heartbeat and the bus is connected (`/ready`).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.deps.bus.is_connected()
    }

    /// Decides WebSocket upgrades (`/app/{key}`): the listener's upgrade hook.
    pub fn upgrades(self: &Arc<Self>) -> UpgradeHook {
        let edge = self.clone();
        Arc::new(move |req, peer| upgrade::accept(&edge, req, peer))
    }

    /// Shutdown's first step, as soon as `shutdown` is cancelled: every open connection is
    /// closed with 4200 (reconnect now, to another edge), and so is any that is let in while
    /// the listener winds down. [`Edge::drain`] then waits for them to go.
    async fn send_away_on_shutdown(self: Arc<Self>) {
        self.shutdown.cancelled().await;
        self.live_apps.shut();
    }

    /// Waits until every connection has closed, at most the shutdown grace period, then sends
    /// the final counts to core.
    pub async fn drain(&self) {
        self.connections.close();
        if tokio::time::timeout(self.config.shutdown_grace, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the shutdown grace period");
        }
        let flushed = self
            .reporter
            .flush(&self.id(), &self.hub, self.deps.core.as_ref())
            .await;
        if let Err(e) = flushed {
            tracing::warn!(error = %e, "final count report failed; the lease's expiry removes the counts");
        }
    }

    fn next_socket_id(&self) -> Arc<str> {
        let n = self.next_socket.fetch_add(1, Ordering::Relaxed);
        switchyard_protocol::socket_id::format(self.socket_prefix, n).into()
    }
}

/// The answer to a plain request for a WebSocket path (upgrades never reach the handler).
pub fn not_an_upgrade() -> Response<Body> {
    switchyard_listener::error(
        StatusCode::BAD_REQUEST,
        "expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)",
    )
}

/// Runs a standalone edge on `listener` until `shutdown`, then drains.
pub async fn run(
    listener: impl Into<switchyard_listener::Listener>,
    config: EdgeConfig,
    deps: EdgeDeps,
    shutdown: CancellationToken,
) {
    let edge = Edge::new(config, deps, shutdown.clone());
    let handler_edge = edge.clone();
    let handler: switchyard_listener::Handler = Arc::new(move |req, _peer| {
        let edge = handler_edge.clone();
        Box::pin(async move {
            match req.uri().path() {
                "/up" => switchyard_listener::health(true),
                "/ready" => switchyard_listener::health(edge.is_ready()),
                "/metrics" => switchyard_telemetry::metrics::endpoint(),
                _ => not_an_upgrade(),
            }
        })
    });
    let service = Service {
        handler,
        upgrades: Some(edge.upgrades()),
    };
    let tracker = TaskTracker::new();
    switchyard_listener::serve(listener, service, shutdown, tracker.clone()).await;
    edge.drain().await;
    tracker.close();
    tracker.wait().await;
}
