//! Which apps this edge serves connections of, and how a connection is let in: the app's
//! connection limit (counted across the cluster by core), the per-IP connection rate, and
//! closing every connection of an app that is disabled or removed while they are open.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use switchyard_apps::App;
use switchyard_protocol::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::session::RateWindow;
use crate::Edge;

/// How often the edge re-reads the apps it has connections of. The app store's cache decides
/// how fresh that read is; an announced change is seen at the next look.
pub(crate) const APP_WATCH_EVERY: Duration = Duration::from_secs(1);

/// The apps with open connections here.
#[derive(Default)]
pub(crate) struct LiveApps {
    apps: Mutex<HashMap<String, LiveApp>>,
    /// Connections of every app together, for the edge's own cap.
    total: AtomicUsize,
}

struct LiveApp {
    connections: u64,
    /// Cancelled when the app is disabled or removed: every connection of it closes (4003).
    closed: CancellationToken,
}

/// A connection that was let in; give it back with [`Edge::release`].
pub(crate) struct Admission {
    /// Stops the connection: on shutdown (4200) or when its app goes away (4003).
    pub stop: CancellationToken,
    /// The edge id the connection was counted under in core, for apps with a limit.
    counted_as: Option<Arc<str>>,
}

impl LiveApps {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, LiveApp>> {
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

    fn enter(&self, app_id: &str, shutdown: &CancellationToken) -> CancellationToken {
        let mut apps = self.lock();
        let live = apps.entry(app_id.to_owned()).or_insert_with(|| LiveApp {
            connections: 0,
            closed: shutdown.child_token(),
        });
        live.connections += 1;
        // A child per connection: polling one shared token from every connection on every
        // wake-up would make them all contend on its waiter list.
        live.closed.child_token()
    }

    fn leave(&self, app_id: &str) {
        let mut apps = self.lock();
        if let Some(live) = apps.get_mut(app_id) {
            live.connections = live.connections.saturating_sub(1);
            if live.connections == 0 {
                apps.remove(app_id);
            }
        }
    }

    fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Closes every connection of the app; later connections start from a fresh token.
    fn close(&self, app_id: &str) {
        if let Some(live) = self.lock().remove(app_id) {
            live.closed.cancel();
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
    /// Lets a connection of `app` in, or says which close code refuses it.
    pub(crate) async fn admit(&self, app: &App) -> Result<Admission, CloseCode> {
        if !self.live_apps.reserve(self.config.max_connections) {
            return Err(CloseCode::OverCapacity);
        }
        let counted = self.count_in_core(app).await;
        if counted.is_err() {
            self.live_apps.unreserve();
        }
        let counted_as = counted?;
        let stop = self.live_apps.enter(&app.id, &self.shutdown);
        Ok(Admission { stop, counted_as })
    }

    /// For apps with a connection limit: one more connection, counted across the cluster.
    async fn count_in_core(&self, app: &App) -> Result<Option<Arc<str>>, CloseCode> {
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
                Ok(false) => return Err(CloseCode::OverConnectionQuota),
                Err(e) => {
                    tracing::warn!(app_id = %app.id, error = %e, "connection count unavailable");
                    return Err(CloseCode::OverCapacity);
                }
            }
        }
        Ok(counted_as)
    }

    pub(crate) async fn release(&self, app_id: &str, admission: Admission) {
        self.live_apps.leave(app_id);
        self.live_apps.unreserve();
        let Some(edge) = admission.counted_as else {
            return;
        };
        if let Err(e) = self.deps.core.release_connection(app_id, &edge).await {
            // The count stays one too high until this edge's lease is reaped; worth a warning
            // but not a retry loop that could outlive the edge.
            tracing::warn!(app_id, error = %e, "releasing a connection count failed");
        }
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

    #[test]
    fn closing_an_app_stops_its_connections_only() {
        let live = LiveApps::default();
        let shutdown = CancellationToken::new();
        let a1 = live.enter("a", &shutdown);
        let b1 = live.enter("b", &shutdown);
        live.close("a");
        assert!(a1.is_cancelled());
        assert!(!b1.is_cancelled());
        let a2 = live.enter("a", &shutdown);
        assert!(!a2.is_cancelled(), "a re-enabled app starts afresh");
        live.leave("b");
        assert_eq!(live.ids(), vec!["a".to_owned()]);
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
