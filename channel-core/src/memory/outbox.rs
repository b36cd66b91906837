//! The outbox in memory: effects written under the same lock as the change that caused them.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::MemoryStore;
use crate::store::{Effect, OutboxStore, PendingEffect};
use crate::CoreError;

pub(super) struct Outbox {
    /// id → (app, effect, until when a relay holds it): ids grow, so this is the order made.
    entries: BTreeMap<u64, (String, Effect, Option<Instant>)>,
    next: u64,
    /// Set once per store: ids stay unique across restarts of the process.
    epoch: u32,
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox {
            entries: BTreeMap::new(),
            next: 0,
            epoch: rand::random(),
        }
    }
}

impl Outbox {
    pub(super) fn emit(&mut self, _now: Instant, app_id: &str, effect: Effect) {
        self.next += 1;
        self.entries
            .insert(self.next, (app_id.to_owned(), effect, None));
    }

    /// The next effects of each app in the order made; an app whose earliest effect is still
    /// held by a relay gives none, so no effect overtakes an earlier one of its app.
    fn claim(&mut self, now: Instant, claim: Duration, limit: usize) -> Vec<PendingEffect> {
        let mut blocked: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        for (id, (app_id, effect, held)) in self.entries.iter_mut() {
            if out.len() == limit {
                break;
            }
            if blocked.contains(app_id.as_str()) {
                continue;
            }
            if held.is_some_and(|until| until > now) {
                blocked.insert(app_id.clone());
                continue;
            }
            *held = Some(now + claim);
            out.push(PendingEffect {
                app_id: app_id.clone(),
                id: format!("{:08x}-{id}", self.epoch),
                effect: effect.clone(),
            });
        }
        out
    }

    fn forget(&mut self, id: &str) {
        if let Some(Ok(id)) = id.split_once('-').map(|(_, n)| n.parse::<u64>()) {
            self.entries.remove(&id);
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
        assert!(
            o.claim(t0, claim, 10).is_empty(),
            "a and b are claimed, and c waits behind them"
        );
        o.forget(&first[0].id);
        let again = o.claim(t0 + claim, claim, 10);
        let users: Vec<_> = again.iter().map(|p| p.effect.clone()).collect();
        assert_eq!(users, [online("b"), online("c")], "unforgotten ones return");
    }
}
