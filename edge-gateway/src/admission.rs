//! Which apps this edge serves connections of, and how a connection is let in: the app's
//! connection limit (counted across the cluster by core), the per-IP connection rate, and
//! closing every connection of an app that is disabled or removed while they are open.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use slab::Slab;
use switchyard_apps::App;
use switchyard_protocol::CloseCode;

use crate::peer::Peer;
use crate::removals::Removal;
use crate::session::RateWindow;
use crate::Edge;

/// How often the edge re-reads the apps it has connections of. The app store's cache decides
/// how fresh that read is; an announced change is seen at the next look.
pub(crate) const APP_WATCH_EVERY: Duration = Duration::from_secs(1);

/// Why a connection was not let in, named after the condition; [`ConnectionRefusal::code`] is
/// the one mapping to the code it is closed with, whose label the rejection metric counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionRefusal {
    /// The path or protocol version; the protocol crate names each with its code.
    Handshake(CloseCode),
    AppNotFound,
    AppDisabled,
    OriginNotAllowed,
    /// The edge holds as many connections as it is configured for.
    EdgeFull,
    /// The app holds as many connections as it may, across the cluster.
    AppOverQuota,
    AppLookupFailed,
    ConnectionCountUnavailable,
}

impl ConnectionRefusal {
    pub(crate) fn code(self) -> CloseCode {
        match self {
            ConnectionRefusal::Handshake(code) => code,
            ConnectionRefusal::AppNotFound => CloseCode::AppNotFound,
            ConnectionRefusal::AppDisabled => CloseCode::AppDisabled,
            ConnectionRefusal::OriginNotAllowed => CloseCode::Unauthorized,
            ConnectionRefusal::AppOverQuota => CloseCode::OverConnectionQuota,
            // 4100 tells the client to back off and retry: the condition may pass.
            ConnectionRefusal::EdgeFull
            | ConnectionRefusal::AppLookupFailed
            | ConnectionRefusal::ConnectionCountUnavailable => CloseCode::OverCapacity,
        }
    }
}

/// The apps with open connections here, and a handle on each of those connections.
#[derive(Default)]
pub(crate) struct LiveApps {
    apps: Mutex<Apps>,
    /// Connections of every app together, for the edge's own cap.
    total: AtomicUsize,
}

#[derive(Default)]
struct Apps {
    by_id: HashMap<String, LiveApp>,
    /// Tells apart an app's entry from an earlier one that was closed and removed.
    next_epoch: u64,
    /// Set at shutdown: a connection let in afterwards is closed at once.
    shut: bool,
}

/// The connections of one app. Closing them goes through their outbound queues, which each
/// connection already waits on: no per-connection waiter is needed for a rare event.
struct LiveApp {
    epoch: u64,
    peers: Slab<Peer>,
}

/// A connection that was let in; give it back with [`Edge::release`].
pub(crate) struct Admission {
    /// Where the connection's handle is kept: its app entry and its slot there.
    epoch: u64,
    slot: usize,
    /// The edge id the connection was counted under in core, for apps with a limit.
    counted_as: Option<Arc<str>>,
}

impl LiveApps {
    fn lock(&self) -> MutexGuard<'_, Apps> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one of the edge's `max` connection slots (0: no limit); false when all are taken.
    fn reserve(&self, max: usize) -> bool {
        let taken = self.total.fetch_add(1, Ordering::AcqRel);
        if max > 0 && taken >= max {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn unreserve(&self) {
        self.total.fetch_sub(1, Ordering::AcqRel);
    }

    /// Keeps `peer` among its app's connections; returns (epoch, slot) to leave with.
    fn enter(&self, app_id: &str, peer: &Peer) -> (u64, usize) {
        let mut apps = self.lock();
        if apps.shut {
            peer.close(CloseCode::ReconnectImmediately);
        }
        let epoch = apps.next_epoch;
        let live = match apps.by_id.entry(app_id.to_owned()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(LiveApp {
                epoch,
                peers: Slab::new(),
            }),
        };
        let at = (live.epoch, live.peers.insert(peer.clone()));
        if at.0 == epoch {
            apps.next_epoch += 1;
        }
        at
    }

    fn leave(&self, app_id: &str, epoch: u64, slot: usize) {
        let mut apps = self.lock();
        let Some(live) = apps.by_id.get_mut(app_id).filter(|l| l.epoch == epoch) else {
            return;
        };
        live.peers.try_remove(slot);
        // The slots stay at their peak count (16 bytes each) until the app has no connections.
        if live.peers.is_empty() {
            apps.by_id.remove(app_id);
        }
    }

    fn ids(&self) -> Vec<String> {
        self.lock().by_id.keys().cloned().collect()
    }

    /// Closes every connection of the app (4003); later connections start a fresh entry.
    fn close(&self, app_id: &str) {
        let removed = self.lock().by_id.remove(app_id);
        for (_, peer) in removed.iter().flat_map(|live| live.peers.iter()) {
            peer.close(CloseCode::AppDisabled);
        }
    }

    /// Shutdown: closes every connection (4200), and every one let in from now on.
    pub(crate) fn shut(&self) {
        let mut apps = self.lock();
        apps.shut = true;
        for live in apps.by_id.values() {
            for (_, peer) in live.peers.iter() {
                peer.close(CloseCode::ReconnectImmediately);
            }
        }
    }
}

/// New connections per second per client address.
pub(crate) struct IpRate {
    per_second: u32,
    windows: Mutex<HashMap<IpAddr, RateWindow>>,
}

impl IpRate {
    pub(crate) fn new(per_second: u32) -> IpRate {
        IpRate {
            per_second,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a connection attempt from `ip`; false when over the limit (0: no limit).
    pub(crate) fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.entry(ip).or_default().allow(now, self.per_second)
    }

    /// Forgets addresses that have been quiet for a second, so the map stays small.
    pub(crate) fn sweep(&self, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.retain(|_, w| !w.is_over(now));
    }
}

impl Edge {
    /// Lets a connection of `app` in, or says why not. `peer` is how the edge closes it when
    /// the app goes away or the edge shuts down.
    pub(crate) async fn admit(
        &self,
        app: &App,
        peer: &Peer,
    ) -> Result<Admission, ConnectionRefusal> {
        if !self.live_apps.reserve(self.config.max_connections) {
            return Err(ConnectionRefusal::EdgeFull);
        }
        let counted = self.count_in_core(app).await;
        if counted.is_err() {
            self.live_apps.unreserve();
        }
        let counted_as = counted?;
        let (epoch, slot) = self.live_apps.enter(&app.id, peer);
        Ok(Admission {
            epoch,
            slot,
            counted_as,
        })
    }

    /// For apps with a connection limit: one more connection, counted across the cluster.
    async fn count_in_core(&self, app: &App) -> Result<Option<Arc<str>>, ConnectionRefusal> {
        let mut counted_as = None;
        if app.max_connections > 0 {
            let edge = self.id();
            match self
                .deps
                .core
                .admit_connection(&app.id, &edge, app.max_connections)
                .await
            {
                Ok(true) => counted_as = Some(edge),
                Ok(false) => return Err(ConnectionRefusal::AppOverQuota),
                Err(channel_core::CoreError::Fenced(_)) => {
                    self.start_afresh(&edge);
                    return Err(ConnectionRefusal::ConnectionCountUnavailable);
                }
                Err(e) => {
                    tracing::warn!(app_id = %app.id, error = %e, "connection count unavailable");
                    return Err(ConnectionRefusal::ConnectionCountUnavailable);
                }
            }
        }
        Ok(counted_as)
    }

    pub(crate) async fn release(&self, app_id: &str, admission: Admission) {
        self.live_apps
            .leave(app_id, admission.epoch, admission.slot);
        self.live_apps.unreserve();
        let Some(edge) = admission.counted_as else {
            return;
        };
        let release = Removal::Release {
            app_id: app_id.into(),
            edge,
        };
        self.removals.send(release, self.deps.core.as_ref()).await;
    }

    /// Closes the connections of apps that were disabled or removed, until shutdown.
    pub(crate) async fn watch_apps(self: Arc<Self>) {
        let mut tick = tokio::time::interval(APP_WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.ip_rate.sweep(Instant::now());
            for app_id in self.live_apps.ids() {
                match self.deps.apps.by_id(&app_id).await {
                    Ok(Some(app)) if app.enabled => {}
                    Ok(_) => {
                        tracing::info!(app_id, "app disabled or removed: closing its connections");
                        self.live_apps.close(&app_id);
                    }
                    // Unknown is not "gone": keep serving and look again next time.
                    Err(e) => tracing::warn!(app_id, error = %e, "app lookup failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::peer::{Mailbox, Outgoing, QueueLimit};

    fn peer() -> (Peer, Mailbox) {
        crate::peer::pair(QueueLimit {
            frames: 4,
            bytes: 1024,
        })
    }

    fn closed_with(mailbox: &Mailbox) -> Option<CloseCode> {
        match mailbox.try_next() {
            Some(Outgoing::Close(code)) => Some(code),
            _ => None,
        }
    }

    #[test]
    fn closing_an_app_stops_its_connections_only() {
        let live = LiveApps::default();
        let (a1, a1_box) = peer();
        let (b1, b1_box) = peer();
        let a1_at = live.enter("a", &a1);
        let b1_at = live.enter("b", &b1);
        live.close("a");
        assert_eq!(closed_with(&a1_box), Some(CloseCode::AppDisabled));
        assert_eq!(closed_with(&b1_box), None);
        let (a2, a2_box) = peer();
        let a2_at = live.enter("a", &a2);
        assert_ne!(a2_at.0, a1_at.0, "a re-enabled app starts afresh");
        // The closed connection leaving must not take the new entry's slot with it.
        live.leave("a", a1_at.0, a1_at.1);
        live.close("a");
        assert_eq!(closed_with(&a2_box), Some(CloseCode::AppDisabled));
        live.leave("b", b1_at.0, b1_at.1);
        assert!(live.ids().is_empty());
    }

    #[test]
    fn shutting_closes_every_connection_and_every_later_one() {
        let live = LiveApps::default();
        let (a, a_box) = peer();
        let (b, b_box) = peer();
        live.enter("a", &a);
        live.enter("b", &b);
        live.shut();
        assert_eq!(closed_with(&a_box), Some(CloseCode::ReconnectImmediately));
        assert_eq!(closed_with(&b_box), Some(CloseCode::ReconnectImmediately));
        let (late, late_box) = peer();
        live.enter("a", &late);
        assert_eq!(
            closed_with(&late_box),
            Some(CloseCode::ReconnectImmediately)
        );
    }

    #[test]
    fn an_app_entry_goes_when_its_last_connection_leaves() {
        let live = LiveApps::default();
        let peers: Vec<_> = (0..100).map(|_| peer()).collect();
        let slots: Vec<_> = peers.iter().map(|(p, _)| live.enter("a", p)).collect();
        for (epoch, slot) in &slots[1..] {
            live.leave("a", *epoch, *slot);
        }
        assert_eq!(live.ids(), vec!["a".to_owned()]);
        live.close("a");
        assert_eq!(closed_with(&peers[0].1), Some(CloseCode::AppDisabled));
        assert_eq!(closed_with(&peers[1].1), None, "left before the close");
        live.leave("a", slots[0].0, slots[0].1);
        assert!(live.ids().is_empty());
    }

    /// The codes (and so metric labels) each refusal was closed with before it was named.
    #[test]
    fn each_connection_refusal_closes_as_before() {
        use ConnectionRefusal as R;
        let cases = [
            (
                R::Handshake(CloseCode::NoProtocolVersion),
                4008,
                "no_protocol_version",
            ),
            (R::AppNotFound, 4001, "app_not_found"),
            (R::AppDisabled, 4003, "app_disabled"),
            (R::OriginNotAllowed, 4009, "unauthorized"),
            (R::EdgeFull, 4100, "over_capacity"),
            (R::AppOverQuota, 4004, "over_connection_quota"),
            (R::AppLookupFailed, 4100, "over_capacity"),
            (R::ConnectionCountUnavailable, 4100, "over_capacity"),
        ];
        for (refusal, code, label) in cases {
            assert_eq!(refusal.code().code(), code, "{refusal:?}");
            assert_eq!(refusal.code().label(), label, "{refusal:?}");
        }
    }

    #[test]
    fn ip_rate_counts_each_address_apart() {
        let rate = IpRate::new(2);
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        );
        let t0 = Instant::now();
        assert!(rate.allow(a, t0) && rate.allow(a, t0));
        assert!(!rate.allow(a, t0));
        assert!(rate.allow(b, t0));
        rate.sweep(t0 + Duration::from_secs(2));
        assert!(rate.windows.lock().expect("lock").is_empty());
        assert!(IpRate::new(0).allow(a, t0));
    }
}
