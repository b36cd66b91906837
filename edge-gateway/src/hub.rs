//! The edge's local index: which sockets hold which channel and user, and fan-out to them.
//!
//! A channel's bus subscription lives exactly as long as it has a local subscriber. A frame is
//! turned into `Utf8Bytes` once per edge and cloned (a reference count) into each socket's
//! bounded queue; a socket whose queue is full is closed with 4100 instead of slowing the rest.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use channel_core::Presence;
use switchyard_bus::{Bus, BusError, Control, Envelope};
use switchyard_protocol::CloseCode;
use switchyard_telemetry::metrics::{self, AppMetrics};
use switchyard_telemetry::trace;
use tokio::sync::{Notify, OnceCell};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::field::Empty;
use tracing::Span;

use crate::peer::Peer;
use crate::presence_view::{parse_change, Verdict, View};

/// (app id, channel or user id)
pub(crate) type Key = (Arc<str>, Arc<str>);

#[derive(Default)]
pub(crate) struct Hub {
    channels: Mutex<HashMap<Key, Local>>,
    users: Mutex<HashMap<Key, Local>>,
    watchers: Mutex<HashMap<Key, Local>>,
    /// Presence channels whose views missed events and must be re-read from core.
    resync: Mutex<HashSet<Key>>,
    resync_wanted: Notify,
}

/// Local sockets of one channel or user, and the bus subscription feeding them.
struct Local {
    sockets: HashMap<Arc<str>, Peer>,
    feed: Arc<OnceCell<Feed>>,
    /// When the last socket left. The entry (and its bus subscription) lingers a little, so a
    /// client that leaves and comes back at once does not churn bus subscriptions.
    emptied: Option<Instant>,
    /// The app's metrics, held so a fan-out looks nothing up.
    metrics: Arc<AppMetrics>,
    /// For a presence channel, what its local subscribers know of the members (see
    /// [`presence_view`](crate::presence_view)); `None` until the first join answers.
    presence: Option<Box<View>>,
}

/// The task that moves bus messages into the hub; aborting it drops the bus subscription.
pub(crate) struct Feed(JoinHandle<()>);

impl Drop for Feed {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single map operation; a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which index a key lives in.
#[derive(Clone, Copy)]
pub(crate) enum Index {
    /// Subscribers of a channel.
    Channel,
    /// Connections signed in as a user.
    User,
    /// Connections watching a user (watchlist).
    Watch,
}

impl Hub {
    fn map(&self, index: Index) -> &Mutex<HashMap<Key, Local>> {
        match index {
            Index::Channel => &self.channels,
            Index::User => &self.users,
            Index::Watch => &self.watchers,
        }
    }

    /// Adds a socket; returns the local count after, and the cell holding the bus feed, which
    /// the caller must initialise (once, shared by concurrent first subscribers) before
    /// telling the client it is subscribed.
    pub(crate) fn add(
        &self,
        index: Index,
        key: &Key,
        socket_id: &Arc<str>,
        peer: &Peer,
    ) -> (usize, Arc<OnceCell<Feed>>) {
        let mut map = lock(self.map(index));
        let local = map.entry(key.clone()).or_insert_with(|| Local {
            sockets: HashMap::new(),
            feed: Arc::new(OnceCell::new()),
            emptied: None,
            metrics: metrics::app(&key.0),
            presence: None,
        });
        let added = local
            .sockets
            .insert(socket_id.clone(), peer.clone())
            .is_none();
        if added && matches!(index, Index::Channel) {
            local.metrics.subscriptions.inc();
            if local.sockets.len() == 1 {
                local.metrics.channels.inc();
                // Nobody here relies on the old view; the first join's answer starts a new one
                // (the channel may have emptied and started its numbers again meanwhile).
                local.presence = None;
            }
        }
        local.emptied = None;
        (local.sockets.len(), local.feed.clone())
    }

    /// Removes a socket; returns the local count after. After the last one the bus feed
    /// lingers until [`Hub::sweep`] finds it unused for long enough.
    pub(crate) fn remove(&self, index: Index, key: &Key, socket_id: &str) -> usize {
        let mut map = lock(self.map(index));
        let Some(local) = map.get_mut(key) else {
            return 0;
        };
        let removed = local.sockets.remove(socket_id).is_some();
        let left = local.sockets.len();
        if removed && matches!(index, Index::Channel) {
            local.metrics.subscriptions.dec();
            if left == 0 {
                local.metrics.channels.dec();
            }
        }
        if left == 0 && local.emptied.is_none() {
            local.emptied = Some(Instant::now());
        }
        left
    }

    /// Drops entries that have had no socket for `linger`, and with them their bus
    /// subscriptions.
    pub(crate) fn sweep(&self, linger: Duration) {
        let now = Instant::now();
        for index in [Index::Channel, Index::User, Index::Watch] {
            lock(self.map(index)).retain(|_, local| {
                local
                    .emptied
                    .is_none_or(|at| now.duration_since(at) < linger)
            });
        }
    }

    /// Asks every socket this edge indexes to close with `code`.
    pub(crate) fn close_all(&self, code: CloseCode) {
        for index in [Index::Channel, Index::User, Index::Watch] {
            for local in lock(self.map(index)).values() {
                for peer in local.sockets.values() {
                    peer.close(code);
                }
            }
        }
    }

    pub(crate) fn count(&self, index: Index, key: &Key) -> usize {
        lock(self.map(index))
            .get(key)
            .map_or(0, |l| l.sockets.len())
    }

    /// Writes a bus message to every local socket of `key`.
    ///
    /// Telemetry costs one span per fan-out inside a sampled trace (none otherwise) and a few
    /// atomic adds per fan-out; per socket, only a local count.
    pub(crate) fn deliver(&self, index: Index, key: &Key, envelope: Envelope) {
        let span = if envelope.trace.is_some_and(|t| t.sampled) && trace::enabled() {
            tracing::info_span!(
                "edge.fanout",
                app_id = %key.0,
                channel = %key.1,
                recipients = Empty,
            )
        } else {
            Span::none()
        };
        let mut map = lock(self.map(index));
        let Some(local) = map.get_mut(key) else {
            return;
        };
        if let (Some(seq), Some(view)) = (envelope.seq, local.presence.as_mut()) {
            match view.apply(seq, parse_change(&envelope.payload)) {
                Verdict::Deliver => {}
                Verdict::Stale => return,
                Verdict::Gap => self.want_resync(key),
            }
        }
        if let Some(Control::TerminateUser) = envelope.control {
            for peer in local.sockets.values() {
                peer.close(CloseCode::Unauthorized);
            }
            return;
        }
        let text = match Utf8Bytes::try_from(envelope.payload) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "bus frame is not UTF-8; dropped");
                return;
            }
        };
        let except = envelope.except_socket.as_deref();
        let mut recipients = 0u64;
        for (socket_id, peer) in &local.sockets {
            if Some(socket_id.as_ref()) != except && peer.send(text.clone()) {
                recipients += 1;
            }
        }
        span.record("recipients", recipients);
        if recipients == 0 {
            return;
        }
        let m = &local.metrics;
        m.messages_sent.add(recipients);
        m.bytes_sent.add(recipients * text.len() as u64);
        if let Some(accepted) = envelope.accepted_at_us {
            m.fanout_latency
                .observe_us(now_us().saturating_sub(accepted));
        }
    }
}

impl Hub {
    /// Starts the channel's presence view from a join's answer, or merges the answer into
    /// the running one (the joining client starts from this list).
    pub(crate) fn init_presence(&self, key: &Key, presence: &Presence) {
        if let Some(local) = lock(&self.channels).get_mut(key) {
            match local.presence.as_mut() {
                Some(view) => view.merge_join(presence),
                None => local.presence = Some(Box::new(View::new(presence))),
            }
        }
    }

    /// Marks a presence channel for re-reading from core.
    pub(crate) fn want_resync(&self, key: &Key) {
        lock(&self.resync).insert(key.clone());
        self.resync_wanted.notify_one();
    }

    /// Marks every presence channel with a view for re-reading, whatever its holes say (after
    /// the bus lost messages).
    pub(crate) fn want_resync_all(&self) {
        let keys: Vec<Key> = lock(&self.channels)
            .iter_mut()
            .filter_map(|(key, local)| {
                local.presence.as_mut()?.force_resync();
                Some(key.clone())
            })
            .collect();
        lock(&self.resync).extend(keys);
        self.resync_wanted.notify_one();
    }

    /// Waits until some channel is marked, then takes the marks.
    pub(crate) async fn resync_wanted(&self) -> Vec<Key> {
        self.resync_wanted.notified().await;
        lock(&self.resync).drain().collect()
    }

    /// The users this edge's connections watch (watchlists), as (app, user) keys.
    pub(crate) fn watched(&self) -> Vec<Key> {
        lock(&self.watchers).keys().cloned().collect()
    }

    /// Writes `frame` to every local socket of `key` (a frame made here, not from the bus).
    pub(crate) fn send_local(&self, index: Index, key: &Key, frame: String) {
        if let Some(local) = lock(self.map(index)).get(key) {
            local.send_all(frame);
        }
    }

    /// Whether the channel's view still misses events (a late one may have filled its holes).
    pub(crate) fn needs_resync(&self, key: &Key) -> bool {
        lock(&self.channels)
            .get(key)
            .and_then(|local| local.presence.as_ref())
            .is_some_and(|view| view.has_holes())
    }

    /// Brings the channel's view to `now`, telling its local subscribers what changed.
    pub(crate) fn resync(&self, key: &Key, now: &Presence) {
        let mut map = lock(&self.channels);
        let Some(local) = map.get_mut(key) else {
            return;
        };
        let Some(view) = local.presence.as_mut() else {
            return;
        };
        let frames = view.resync(&key.1, now);
        if !frames.is_empty() {
            tracing::info!(app_id = %key.0, channel = %key.1, events = frames.len(), "presence resynced");
        }
        for frame in frames {
            local.send_all(frame);
        }
    }
}

impl Local {
    /// Writes one frame made on this edge to every local socket.
    fn send_all(&self, frame: String) {
        let text = Utf8Bytes::from(frame);
        for peer in self.sockets.values() {
            peer.send(text.clone());
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Subscribes to `subject` and spawns the task that feeds its messages to `key`'s sockets.
pub(crate) async fn start_feed(
    hub: Arc<Hub>,
    bus: &dyn Bus,
    index: Index,
    key: Key,
    subject: &str,
) -> Result<Feed, BusError> {
    let mut sub = bus.subscribe(subject).await?;
    let task = tokio::spawn(async move {
        while let Some(envelope) = sub.next().await {
            match envelope.trace.filter(|t| t.sampled && trace::enabled()) {
                None => hub.deliver(index, &key, envelope),
                Some(parent) => {
                    let span = tracing::info_span!("edge.receive", otel.kind = "consumer");
                    trace::set_parent(&span, parent);
                    span.in_scope(|| hub.deliver(index, &key, envelope));
                }
            }
        }
    });
    Ok(Feed(task))
}
