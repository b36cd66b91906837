//! The outbox in memory: effects written under the same lock as the change that caused them.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::MemoryStore;
use crate::store::{Effect, OutboxStore, PendingEffect};
use crate::CoreError;

pub(super) struct Outbox {
    /// (due, id) → (app, effect): claimed in due order, then in the order made.
    due: BTreeMap<(Instant, u64), (String, Effect)>,
    /// id → its due time, to find an entry by id.
    at: HashMap<u64, Instant>,
    next: u64,
    /// Set once per store: ids stay unique across restarts of the process.
    epoch: u32,
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox {
            due: BTreeMap::new(),
            at: HashMap::new(),
            next: 0,
            epoch: rand::random(),
        }
    }
}

impl Outbox {
    pub(super) fn emit(&mut self, now: Instant, app_id: &str, effect: Effect) {
        self.next += 1;
        self.due
            .insert((now, self.next), (app_id.to_owned(), effect));
        self.at.insert(self.next, now);
    }

    fn claim(&mut self, now: Instant, claim: Duration, limit: usize) -> Vec<PendingEffect> {
        let ready: Vec<(Instant, u64)> = self
            .due
            .range(..=(now, u64::MAX))
            .take(limit)
            .map(|(key, _)| *key)
            .collect();
        let mut out = Vec::with_capacity(ready.len());
        for key in ready {
            let Some((app_id, effect)) = self.due.remove(&key) else {
                continue;
            };
            out.push(PendingEffect {
                app_id: app_id.clone(),
                id: format!("{:08x}-{}", self.epoch, key.1),
                effect: effect.clone(),
            });
            self.due.insert((now + claim, key.1), (app_id, effect));
            self.at.insert(key.1, now + claim);
        }
        out
    }

    fn forget(&mut self, id: &str) {
        let Some(Ok(id)) = id.split_once('-').map(|(_, n)| n.parse::<u64>()) else {
            return;
        };
        if let Some(at) = self.at.remove(&id) {
            self.due.remove(&(at, id));
        }
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn claim_effects(
        &self,
        claim: Duration,
        limit: usize,
    ) -> Result<Vec<PendingEffect>, CoreError> {
        Ok(self.lock().outbox.claim(Instant::now(), claim, limit))
    }

    async fn forget_effect(&self, effect: &PendingEffect) -> Result<(), CoreError> {
        self.lock().outbox.forget(&effect.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online(user: &str) -> Effect {
        Effect::Online {
            user_id: user.into(),
        }
    }

    #[test]
    fn effects_are_claimed_in_order_once_per_claim() {
        let mut o = Outbox::default();
        let t0 = Instant::now();
        let claim = Duration::from_secs(5);
        for user in ["a", "b", "c"] {
            o.emit(t0, "app", online(user));
        }
        let first = o.claim(t0, claim, 2);
        let users: Vec<_> = first.iter().map(|p| p.effect.clone()).collect();
        assert_eq!(users, [online("a"), online("b")]);
        assert_eq!(o.claim(t0, claim, 10).len(), 1, "a and b are claimed");
        o.forget(&first[0].id);
        let again = o.claim(t0 + claim, claim, 10);
        let users: Vec<_> = again.iter().map(|p| p.effect.clone()).collect();
        assert_eq!(users, [online("b"), online("c")], "unforgotten ones return");
    }
}
