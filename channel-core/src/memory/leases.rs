//! Edge leases in memory, and removing what a dead edge held.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{key, MemoryStore};
use crate::store::{CountTransition, Effect, Holding, LeaseStore, ReapResult, FENCED_FOR};
use crate::CoreError;

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn touch_edge(&self, edge: &str, ttl: Duration) -> Result<bool, CoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        if state.fenced.contains_key(edge) {
            return Ok(false);
        }
        let before = state.leases.insert(edge.to_owned(), now + ttl);
        // A lease a write made is not one a beat was granted: this is still the first.
        let provisional = state.provisional.remove(edge);
        Ok(before.is_some() && !provisional)
    }

    async fn claim_expired_edge(&self, claim: Duration) -> Result<Option<String>, CoreError> {
        let mut state = self.lock();
        let now = Instant::now();
        let stalled = state
            .reaping
            .iter()
            .find(|(_, deadline)| **deadline <= now)
            .map(|(edge, _)| edge.clone());
        let edge = match stalled {
            Some(edge) => edge,
            None => {
                let expired = state
                    .leases
                    .iter()
                    .find(|(_, expiry)| **expiry <= now)
                    .map(|(edge, _)| edge.clone());
                let Some(edge) = expired else {
                    return Ok(None);
                };
                state.leases.remove(&edge);
                state.provisional.remove(&edge);
                edge
            }
        };
        state.reaping.insert(edge.clone(), now + claim);
        state.fenced.insert(edge.clone(), now);
        state
            .fenced
            .retain(|_, at| now.duration_since(*at) < FENCED_FOR);
        Ok(Some(edge))
    }

    async fn fence_edge(&self, edge: &str) -> Result<(), CoreError> {
        // Claiming already fenced it (one lock makes the two one step here).
        self.lock()
            .fenced
            .entry(edge.to_owned())
            .or_insert_with(Instant::now);
        Ok(())
    }

    async fn edge_holdings(&self, edge: &str) -> Result<Vec<Holding>, CoreError> {
        // A scan is fine here: it runs only when an edge dies, and in the embedded mode never.
        let state = self.lock();
        let channels = state.channels.iter().filter(|(_, ch)| {
            ch.edge_counts.contains_key(edge)
                || ch
                    .users
                    .values()
                    .any(|(_, conns)| conns.iter().any(|(e, _)| e == edge))
        });
        let mut out: Vec<Holding> = channels
            .map(|((app_id, channel), _)| Holding::Channel {
                app_id: app_id.clone(),
                channel: channel.clone(),
            })
            .collect();
        out.extend(
            state
                .online
                .iter()
                .filter(|(_, conns)| conns.iter().any(|(e, _)| e == edge))
                .map(|((app_id, user_id), _)| Holding::User {
                    app_id: app_id.clone(),
                    user_id: user_id.clone(),
                }),
        );
        out.extend(state.limits.holdings(edge));
        Ok(out)
    }

    async fn reap_channel(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
    ) -> Result<ReapResult, CoreError> {
        let mut state = self.lock();
        let k = key(app_id, channel);
        let Some(ch) = state.channels.get_mut(&k) else {
            return Ok(ReapResult {
                transition: CountTransition {
                    before: 0,
                    after: 0,
                },
                users_left: Vec::new(),
                seq: 0,
            });
        };
        let before = ch.total;
        ch.total -= ch.edge_counts.remove(edge).unwrap_or(0);
        let mut users_left = Vec::new();
        for (user_id, (_, conns)) in ch.users.iter_mut() {
            let had = conns.len();
            conns.retain(|(e, _)| e != edge);
            if had > 0 && conns.is_empty() {
                users_left.push(user_id.clone());
            }
        }
        for user_id in &users_left {
            ch.users.remove(user_id);
        }
        ch.order.retain(|id| ch.users.contains_key(id));
        let first_seq = ch.seq + 1;
        ch.seq += users_left.len() as u64;
        let seq = ch.seq;
        let after = ch.total;
        state.drop_if_empty(&k);
        let now = Instant::now();
        for (n, user_id) in (first_seq..).zip(&users_left) {
            let effect = Effect::MemberRemoved {
                channel: channel.to_owned(),
                user_id: user_id.clone(),
                seq: n,
            };
            state.outbox.emit(now, app_id, effect);
        }
        if before != after {
            let effect = Effect::Count {
                channel: channel.to_owned(),
                before,
                after,
            };
            state.outbox.emit(now, app_id, effect);
        }
        Ok(ReapResult {
            transition: CountTransition { before, after },
            users_left,
            seq,
        })
    }

    async fn reap_user(&self, app_id: &str, user_id: &str, edge: &str) -> Result<bool, CoreError> {
        let mut state = self.lock();
        let k = key(app_id, user_id);
        let Some(conns) = state.online.get_mut(&k) else {
            return Ok(false);
        };
        let had = conns.len();
        conns.retain(|(e, _)| e != edge);
        let last = had > 0 && conns.is_empty();
        if conns.is_empty() {
            state.online.remove(&k);
        }
        if last {
            let effect = Effect::Offline {
                user_id: user_id.to_owned(),
            };
            state.outbox.emit(Instant::now(), app_id, effect);
        }
        Ok(last)
    }

    async fn reap_connections(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        self.lock().limits.reap(app_id, edge);
        Ok(())
    }

    async fn forget_edge(&self, edge: &str) -> Result<(), CoreError> {
        let mut state = self.lock();
        state.reaping.remove(edge);
        // Dead from now on, even if no reaper claimed it (it stays fenced for FENCED_FOR).
        state
            .fenced
            .entry(edge.to_owned())
            .or_insert_with(Instant::now);
        Ok(())
    }
}
