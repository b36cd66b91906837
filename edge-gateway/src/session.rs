//! One connection's protocol state, owned by its task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_apps::App;
use switchyard_protocol::user::UserData;
use switchyard_telemetry::metrics::{self, AppMetrics};
use tracing::Span;

use crate::peer::Peer;

pub(crate) struct Session {
    pub socket_id: Arc<str>,
    pub app: Arc<App>,
    pub app_id: Arc<str>,
    pub peer: Peer,
    pub channels: HashMap<String, Subscribed>,
    /// Set by a successful `pusher:signin`.
    pub user: Option<UserData>,
    /// Signed in, or subscribed to a channel that needed auth (for authorized-connection apps).
    pub authorized: bool,
    pub client_events: RateWindow,
    /// The app's metrics, looked up once per connection.
    pub metrics: Arc<AppMetrics>,
}

pub(crate) struct Subscribed {
    /// On presence channels, the user id this socket joined as.
    pub presence_user: Option<String>,
}

impl Session {
    pub fn new(socket_id: Arc<str>, app: Arc<App>, peer: Peer) -> Session {
        Session {
            socket_id,
            metrics: metrics::app(&app.id),
            app_id: app.id.as_str().into(),
            app,
            peer,
            channels: HashMap::new(),
            user: None,
            authorized: false,
            client_events: RateWindow::default(),
        }
    }

    /// Names the app and socket on the log lines of this connection's event handling. Made
    /// per use rather than held: a span kept for the connection's life costs every idle
    /// connection several hundred bytes, and client messages are rare next to deliveries.
    pub fn span(&self) -> Span {
        tracing::info_span!("connection", app_id = %self.app_id, socket_id = %self.socket_id)
    }

    pub fn key(&self, name: &str) -> (Arc<str>, Arc<str>) {
        (self.app_id.clone(), name.into())
    }
}

/// A fixed one-second window counter: cheap and exact enough for "N per second".
#[derive(Default)]
pub(crate) struct RateWindow {
    start: Option<Instant>,
    count: u32,
}

impl RateWindow {
    /// Counts one event at `now`; false when it exceeds `limit` in the current second.
    pub fn allow(&mut self, now: Instant, limit: u32) -> bool {
        match self.start {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.start = Some(now);
                self.count = 0;
            }
        }
        self.count += 1;
        self.count <= limit
    }

    /// The window has ended: nothing counted now would be counted against it.
    pub fn is_over(&self, now: Instant) -> bool {
        self.start
            .is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window_allows_exactly_the_limit_per_second() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        assert!((0..10).all(|_| w.allow(t0, 10)));
        assert!(!w.allow(t0 + Duration::from_millis(999), 10));
        assert!(w.allow(t0 + Duration::from_secs(1), 10));
    }
}
