//! Connection counts and per-second quotas in memory: the embedded mode's cluster-wide limits
//! (one process is the whole cluster).

use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;

use super::MemoryStore;
use crate::store::{Holding, LimitStore};
use crate::CoreError;

#[derive(Default)]
pub(super) struct Limits {
    /// app → edge → connections.
    connections: HashMap<String, HashMap<String, u64>>,
    /// (app, bucket) → (start of the current one-second window, amount used in it).
    quotas: HashMap<(String, String), (Instant, u64)>,
}

impl Limits {
    pub(super) fn admit(&mut self, app_id: &str, edge: &str, max: u64) -> bool {
        let per_edge = self.connections.entry(app_id.to_owned()).or_default();
        if max > 0 && per_edge.values().sum::<u64>() >= max {
            return false;
        }
        *per_edge.entry(edge.to_owned()).or_default() += 1;
        true
    }

    pub(super) fn release(&mut self, app_id: &str, edge: &str) {
        let Some(per_edge) = self.connections.get_mut(app_id) else {
            return;
        };
        if let Some(n) = per_edge.get_mut(edge) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_edge.remove(edge);
            }
        }
        if per_edge.is_empty() {
            self.connections.remove(app_id);
        }
    }

    pub(super) fn reap(&mut self, app_id: &str, edge: &str) {
        if let Some(per_edge) = self.connections.get_mut(app_id) {
            per_edge.remove(edge);
            if per_edge.is_empty() {
                self.connections.remove(app_id);
            }
        }
    }

    pub(super) fn holdings<'a>(&'a self, edge: &'a str) -> impl Iterator<Item = Holding> + 'a {
        self.connections
            .iter()
            .filter(move |(_, per_edge)| per_edge.contains_key(edge))
            .map(|(app_id, _)| Holding::Connections {
                app_id: app_id.clone(),
            })
    }

    pub(super) fn take(
        &mut self,
        now: Instant,
        app_id: &str,
        bucket: &str,
        amount: u64,
        per_second: u64,
    ) -> bool {
        // Old windows are dropped as they go stale, so the map holds only live buckets.
        self.quotas
            .retain(|_, (start, _)| now.duration_since(*start).as_secs() < 1);
        let (_, used) = self
            .quotas
            .entry((app_id.to_owned(), bucket.to_owned()))
            .or_insert((now, 0));
        if used.saturating_add(amount) > per_second {
            return false;
        }
        *used += amount;
        true
    }
}

#[async_trait]
impl LimitStore for MemoryStore {
    async fn admit_connection(
        &self,
        app_id: &str,
        edge: &str,
        max: u64,
    ) -> Result<bool, CoreError> {
        let mut state = self.lock();
        state.admit_write(edge)?;
        Ok(state.limits.admit(app_id, edge, max))
    }

    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        self.lock().limits.release(app_id, edge);
        Ok(())
    }

    async fn take_quota(
        &self,
        app_id: &str,
        bucket: &str,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, CoreError> {
        let now = Instant::now();
        Ok(self
            .lock()
            .limits
            .take(now, app_id, bucket, amount, per_second))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn connections_are_capped_across_edges() {
        let mut l = Limits::default();
        assert!(l.admit("a", "e1", 2));
        assert!(l.admit("a", "e2", 2));
        assert!(!l.admit("a", "e1", 2));
        assert!(l.admit("b", "e1", 2), "apps are counted apart");
        l.release("a", "e1");
        assert!(l.admit("a", "e2", 2));
        l.reap("a", "e2");
        assert!(l.admit("a", "e1", 2));
        assert_eq!(l.holdings("e1").count(), 2);
    }

    #[test]
    fn quotas_allow_exactly_the_limit_per_window() {
        let mut l = Limits::default();
        let t0 = Instant::now();
        assert!(l.take(t0, "a", "events", 3, 5));
        assert!(l.take(t0, "a", "events", 2, 5));
        assert!(!l.take(t0, "a", "events", 1, 5));
        assert!(l.take(t0, "a", "reads", 1, 5), "buckets are apart");
        assert!(!l.take(t0 + Duration::from_millis(999), "a", "events", 1, 5));
        assert!(l.take(t0 + Duration::from_secs(1), "a", "events", 5, 5));
    }
}
