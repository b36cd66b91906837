//! One connection's protocol state, owned by its task.

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
    pub channels: Channels,
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
    pub presence_user: Option<Box<str>>,
}

/// The channels a connection is subscribed to: a list, not a map. Most connections have a
/// few, and the smallest hash map (about 200 bytes) would be a large part of an idle
/// connection's memory; a scan of a few entries is as fast as hashing the name.
#[derive(Default)]
pub(crate) struct Channels(Vec<(Box<str>, Subscribed)>);

impl Channels {
    pub fn get(&self, name: &str) -> Option<&Subscribed> {
        self.0.iter().find(|(n, _)| **n == *name).map(|(_, s)| s)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Adds or replaces the subscription to `name`.
    pub fn insert(&mut self, name: &str, sub: Subscribed) {
        if let Some(entry) = self.0.iter_mut().find(|(n, _)| **n == *name) {
            entry.1 = sub;
            return;
        }
        if self.0.len() == self.0.capacity() {
            // Exact room for the first few (a Vec would jump to 4), then doubling.
            let more = if self.0.len() < 4 { 1 } else { self.0.len() };
            self.0.reserve_exact(more);
        }
        self.0.push((name.into(), sub));
    }

    pub fn remove(&mut self, name: &str) -> Option<Subscribed> {
        let at = self.0.iter().position(|(n, _)| **n == *name)?;
        let (_, sub) = self.0.swap_remove(at);
        if self.0.is_empty() {
            self.0 = Vec::new();
        }
        Some(sub)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| &**n)
    }
}

impl Session {
    pub fn new(socket_id: Arc<str>, app: Arc<App>, peer: Peer) -> Session {
        Session {
            socket_id,
            metrics: metrics::app(&app.id),
            app_id: app.id.as_str().into(),
            app,
            peer,
            channels: Channels::default(),
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

    fn presence(user: &str) -> Subscribed {
        Subscribed {
            presence_user: Some(user.into()),
        }
    }

    #[test]
    fn channels_add_replace_and_remove() {
        let mut c = Channels::default();
        for name in ["a", "b", "c", "d", "e", "f"] {
            c.insert(
                name,
                Subscribed {
                    presence_user: None,
                },
            );
        }
        c.insert("c", presence("u1"));
        assert_eq!(c.names().count(), 6, "replacing adds nothing");
        assert_eq!(
            c.get("c").and_then(|s| s.presence_user.as_deref()),
            Some("u1")
        );
        assert!(c.contains_key("f") && !c.contains_key("g"));
        assert!(c.remove("a").is_some());
        assert!(c.remove("a").is_none());
        let mut left: Vec<String> = c.names().map(str::to_owned).collect();
        left.sort_unstable();
        assert_eq!(left, ["b", "c", "d", "e", "f"]);
        for name in &left {
            c.remove(name);
        }
        assert_eq!(c.0.capacity(), 0, "an empty list holds no memory");
    }

    #[test]
    fn one_channel_takes_room_for_one() {
        let mut c = Channels::default();
        c.insert(
            "only",
            Subscribed {
                presence_user: None,
            },
        );
        assert_eq!(c.0.capacity(), 1);
    }

    #[test]
    fn rate_window_allows_exactly_the_limit_per_second() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        assert!((0..10).all(|_| w.allow(t0, 10)));
        assert!(!w.allow(t0 + Duration::from_millis(999), 10));
        assert!(w.allow(t0 + Duration::from_secs(1), 10));
    }
}
