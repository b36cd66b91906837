//! Held leaving webhooks in memory (the embedded mode: one process is every replica).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::MemoryStore;
use crate::store::{DueHold, HoldStore};
use crate::CoreError;

#[derive(Default)]
pub(super) struct Holds {
    /// (app, key) → (job, when it is due, whether a sender claimed it).
    pending: HashMap<(String, String), (String, Instant, bool)>,
}

impl Holds {
    pub(super) fn hold(
        &mut self,
        now: Instant,
        app_id: &str,
        key: &str,
        job: String,
        hold: Duration,
    ) {
        self.pending.insert(
            (app_id.to_owned(), key.to_owned()),
            (job, now + hold, false),
        );
    }

    /// A claimed hold is being sent: it stays, and false has the return sent too.
    pub(super) fn cancel(&mut self, app_id: &str, key: &str) -> bool {
        let k = (app_id.to_owned(), key.to_owned());
        match self.pending.get(&k) {
            Some((_, _, false)) => self.pending.remove(&k).is_some(),
            _ => false,
        }
    }

    pub(super) fn claim_due(
        &mut self,
        now: Instant,
        claim: Duration,
        limit: usize,
    ) -> Vec<DueHold> {
        let mut due = Vec::new();
        for ((app_id, key), (job, at, claimed)) in self.pending.iter_mut() {
            if due.len() == limit {
                break;
            }
            if *at <= now {
                *at = now + claim;
                *claimed = true;
                due.push(DueHold {
                    app_id: app_id.clone(),
                    key: key.clone(),
                    job: job.clone(),
                });
            }
        }
        due
    }

    pub(super) fn forget(&mut self, due: &DueHold) {
        let k = (due.app_id.clone(), due.key.clone());
        if self
            .pending
            .get(&k)
            .is_some_and(|(job, _, _)| *job == due.job)
        {
            self.pending.remove(&k);
        }
    }
}

#[async_trait]
impl HoldStore for MemoryStore {
    async fn hold(
        &self,
        app_id: &str,
        key: &str,
        job: String,
        hold: Duration,
    ) -> Result<(), CoreError> {
        let now = Instant::now();
        self.lock().holds.hold(now, app_id, key, job, hold);
        Ok(())
    }

    async fn cancel_hold(&self, app_id: &str, key: &str) -> Result<bool, CoreError> {
        Ok(self.lock().holds.cancel(app_id, key))
    }

    async fn claim_due_holds(
        &self,
        claim: Duration,
        limit: usize,
    ) -> Result<Vec<DueHold>, CoreError> {
        let now = Instant::now();
        Ok(self.lock().holds.claim_due(now, claim, limit))
    }

    async fn forget_hold(&self, due: &DueHold) -> Result<(), CoreError> {
        self.lock().holds.forget(due);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_come_due_once_and_returns_cancel_them() {
        let mut h = Holds::default();
        let t0 = Instant::now();
        let hold = Duration::from_secs(3);
        h.hold(t0, "a", "k1", "job1".into(), hold);
        h.hold(t0, "a", "k2", "job2".into(), hold);
        assert!(h.claim_due(t0, hold, 10).is_empty(), "not due yet");
        assert!(h.cancel("a", "k2"));
        assert!(!h.cancel("a", "k2"));
        let due = h.claim_due(t0 + hold, hold, 10);
        assert_eq!(due.len(), 1);
        assert!(h.claim_due(t0 + hold, hold, 10).is_empty(), "claimed");
        // A newer hold of the key replaces the claimed one; forgetting the old keeps it.
        h.hold(t0 + hold, "a", "k1", "job1b".into(), hold);
        h.forget(&due[0]);
        assert_eq!(h.claim_due(t0 + hold * 2, hold, 10)[0].job, "job1b");
    }
}
