//! Per-receiver concurrency. The worker's request permits are shared by every app; without a
//! per-URL cap, one receiver that answers slowly (or never, until the request timeout) would
//! soon hold all of them and delay every other app's webhooks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Past this many known URLs, idle ones are forgotten on the next new URL, so the map follows
/// the apps' current webhook URLs instead of growing with every URL ever configured.
const PRUNE_AT: usize = 1024;

pub(crate) struct Receivers {
    each: usize,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Receivers {
    pub(crate) fn new(each: usize) -> Receivers {
        Receivers {
            each: each.max(1),
            limits: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for one of `url`'s slots; the permit keeps its semaphore alive while held.
    pub(crate) async fn acquire(&self, url: &str) -> Option<OwnedSemaphorePermit> {
        let limit = self.limit(url);
        limit.acquire_owned().await.ok()
    }

    fn limit(&self, url: &str) -> Arc<Semaphore> {
        // Plain data, consistent after any panic: a poisoned lock is fine to reuse.
        let mut limits = self.limits.lock().unwrap_or_else(PoisonError::into_inner);
        if limits.len() >= PRUNE_AT && !limits.contains_key(url) {
            // Only the map holds an idle semaphore; one in use is also held by its permits
            // and waiters, and must stay shared.
            limits.retain(|_, s| Arc::strong_count(s) > 1);
        }
        limits
            .entry(url.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.each)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_url_has_its_own_slots() {
        let receivers = Receivers::new(1);
        let a = receivers.acquire("http://a/").await;
        assert!(a.is_some());
        assert!(receivers.limit("http://a/").try_acquire().is_err());
        assert!(receivers.limit("http://b/").try_acquire().is_ok());
        drop(a);
        assert!(receivers.limit("http://a/").try_acquire().is_ok());
    }
}
