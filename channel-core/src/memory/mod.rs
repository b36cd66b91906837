use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchyard_protocol::presence::Member;

use crate::store::{
    ChannelStore, CountTransition, DueHold, Holding, JoinResult, LeaveResult, ReapResult,
    StoreError,
};
use crate::ChannelCounts;
use holds::Holds;
use limits::Limits;

mod holds;
mod limits;

type Key = (String, String);

/// Channel state in process memory, for the embedded mode. One mutex makes every operation
/// atomic; each holds it for a map lookup or two, never across an await.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    channels: HashMap<Key, ChannelState>,
    cache: HashMap<Key, (String, Instant)>,
    /// (app, user) → signed-in connections as (edge, socket).
    online: HashMap<Key, Vec<(String, String)>>,
    /// edge → lease expiry.
    leases: HashMap<String, Instant>,
    /// edge → deadline of the reaper that claimed it.
    reaping: HashMap<String, Instant>,
    last_sweep: Option<Instant>,
    limits: Limits,
    holds: Holds,
}

/// How often expired cache entries are swept; reads ignore them in between.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct ChannelState {
    edge_counts: HashMap<String, u64>,
    total: u64,
    /// user id → (member, its connections as (edge, socket)); insertion order kept in `order`.
    users: HashMap<String, (Member, Vec<(String, String)>)>,
    order: Vec<String>,
}

impl ChannelState {
    fn is_empty(&self) -> bool {
        self.total == 0 && self.users.is_empty()
    }

    fn counts(&self) -> ChannelCounts {
        ChannelCounts {
            subscription_count: self.total,
            user_count: self.users.len() as u64,
        }
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn key(app_id: &str, channel: &str) -> Key {
    (app_id.to_owned(), channel.to_owned())
}

#[async_trait]
impl ChannelStore for MemoryStore {
    async fn set_edge_count(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        count: u64,
    ) -> Result<CountTransition, StoreError> {
        let mut state = self.lock();
        let k = key(app_id, channel);
        let ch = state.channels.entry(k.clone()).or_default();
        let before = ch.total;
        let old = if count == 0 {
            ch.edge_counts.remove(edge).unwrap_or(0)
        } else {
            ch.edge_counts.insert(edge.to_owned(), count).unwrap_or(0)
        };
        ch.total = ch.total - old + count;
        let after = ch.total;
        if ch.is_empty() {
            state.channels.remove(&k);
        }
        Ok(CountTransition { before, after })
    }

    async fn join(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
        member: Member,
        max_members: usize,
    ) -> Result<JoinResult, StoreError> {
        let mut state = self.lock();
        let ch = state.channels.entry(key(app_id, channel)).or_default();
        let conn = (edge.to_owned(), socket_id.to_owned());
        let known = ch.users.len();
        let first = match ch.users.get_mut(&member.user_id) {
            Some((_, conns)) => {
                if !conns.contains(&conn) {
                    conns.push(conn);
                }
                false
            }
            None if known >= max_members => {
                return Err(StoreError::PresenceFull(max_members));
            }
            None => {
                ch.order.push(member.user_id.clone());
                ch.users
                    .insert(member.user_id.clone(), (member, vec![conn]));
                true
            }
        };
        let members = ch
            .order
            .iter()
            .filter_map(|id| ch.users.get(id).map(|(m, _)| m.clone()))
            .collect();
        Ok(JoinResult { first, members })
    }

    async fn leave(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<Option<LeaveResult>, StoreError> {
        let mut state = self.lock();
        let k = key(app_id, channel);
        let Some(ch) = state.channels.get_mut(&k) else {
            return Ok(None);
        };
        let found = ch.users.iter_mut().find_map(|(id, (_, conns))| {
            let before = conns.len();
            conns.retain(|(e, s)| !(e == edge && s == socket_id));
            (conns.len() < before).then(|| (id.clone(), conns.is_empty()))
        });
        let Some((user_id, last)) = found else {
            return Ok(None);
        };
        if last {
            ch.users.remove(&user_id);
            ch.order.retain(|id| id != &user_id);
        }
        if ch.is_empty() {
            state.channels.remove(&k);
        }
        Ok(Some(LeaveResult { user_id, last }))
    }

    async fn members(&self, app_id: &str, channel: &str) -> Result<Vec<Member>, StoreError> {
        let state = self.lock();
        Ok(state
            .channels
            .get(&key(app_id, channel))
            .map(|ch| {
                ch.order
                    .iter()
                    .filter_map(|id| ch.users.get(id).map(|(m, _)| m.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn counts(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, StoreError> {
        let state = self.lock();
        Ok(state
            .channels
            .get(&key(app_id, channel))
            .map(ChannelState::counts)
            .unwrap_or_default())
    }

    async fn occupied(
        &self,
        app_id: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ChannelCounts)>, StoreError> {
        let state = self.lock();
        let mut out: Vec<(String, ChannelCounts)> = state
            .channels
            .iter()
            .filter(|((app, name), ch)| app == app_id && name.starts_with(prefix) && ch.total > 0)
            .map(|((_, name), ch)| (name.clone(), ch.counts()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn cache_put(
        &self,
        app_id: &str,
        channel: &str,
        frame: String,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let now = Instant::now();
        // Sweeping at most once a minute keeps the map bounded without an O(n) step per put.
        if state.last_sweep.is_none_or(|t| now - t > SWEEP_EVERY) {
            state.cache.retain(|_, (_, expires)| *expires > now);
            state.last_sweep = Some(now);
        }
        state.cache.insert(key(app_id, channel), (frame, now + ttl));
        Ok(())
    }

    async fn cache_get(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<(String, Duration)>, StoreError> {
        let state = self.lock();
        let now = Instant::now();
        Ok(state
            .cache
            .get(&key(app_id, channel))
            .filter(|(_, expires)| *expires > now)
            .map(|(frame, expires)| (frame.clone(), *expires - now)))
    }

    async fn user_connect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let conns = state.online.entry(key(app_id, user_id)).or_default();
        let conn = (edge.to_owned(), socket_id.to_owned());
        if !conns.contains(&conn) {
            conns.push(conn);
        }
        Ok(conns.len() == 1)
    }

    async fn user_disconnect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let k = key(app_id, user_id);
        let Some(conns) = state.online.get_mut(&k) else {
            return Ok(false);
        };
        let before = conns.len();
        conns.retain(|(e, s)| !(e == edge && s == socket_id));
        let last = before > 0 && conns.is_empty();
        if conns.is_empty() {
            state.online.remove(&k);
        }
        Ok(last)
    }

    async fn users_online(
        &self,
        app_id: &str,
        user_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let state = self.lock();
        Ok(user_ids
            .iter()
            .filter(|id| state.online.contains_key(&key(app_id, id)))
            .cloned()
            .collect())
    }

    async fn touch_edge(&self, edge: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let before = self.lock().leases.insert(edge.to_owned(), now + ttl);
        Ok(before.is_some())
    }

    async fn claim_expired_edge(&self, claim: Duration) -> Result<Option<String>, StoreError> {
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
                edge
            }
        };
        state.reaping.insert(edge.clone(), now + claim);
        Ok(Some(edge))
    }

    async fn edge_holdings(&self, edge: &str) -> Result<Vec<Holding>, StoreError> {
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
    ) -> Result<ReapResult, StoreError> {
        let mut state = self.lock();
        let k = key(app_id, channel);
        let Some(ch) = state.channels.get_mut(&k) else {
            return Ok(ReapResult {
                transition: CountTransition {
                    before: 0,
                    after: 0,
                },
                users_left: Vec::new(),
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
        let after = ch.total;
        if ch.is_empty() {
            state.channels.remove(&k);
        }
        Ok(ReapResult {
            transition: CountTransition { before, after },
            users_left,
        })
    }

    async fn reap_user(&self, app_id: &str, user_id: &str, edge: &str) -> Result<bool, StoreError> {
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
        Ok(last)
    }

    async fn admit_connection(
        &self,
        app_id: &str,
        edge: &str,
        max: u64,
    ) -> Result<bool, StoreError> {
        Ok(self.lock().limits.admit(app_id, edge, max))
    }

    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), StoreError> {
        self.lock().limits.release(app_id, edge);
        Ok(())
    }

    async fn reap_connections(&self, app_id: &str, edge: &str) -> Result<(), StoreError> {
        self.lock().limits.reap(app_id, edge);
        Ok(())
    }

    async fn take_quota(
        &self,
        app_id: &str,
        bucket: &str,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        Ok(self
            .lock()
            .limits
            .take(now, app_id, bucket, amount, per_second))
    }

    async fn hold(
        &self,
        app_id: &str,
        key: &str,
        job: String,
        hold: Duration,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        self.lock().holds.hold(now, app_id, key, job, hold);
        Ok(())
    }

    async fn cancel_hold(&self, app_id: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self.lock().holds.cancel(app_id, key))
    }

    async fn claim_due_holds(
        &self,
        claim: Duration,
        limit: usize,
    ) -> Result<Vec<DueHold>, StoreError> {
        let now = Instant::now();
        Ok(self.lock().holds.claim_due(now, claim, limit))
    }

    async fn forget_hold(&self, due: &DueHold) -> Result<(), StoreError> {
        self.lock().holds.forget(due);
        Ok(())
    }

    async fn forget_edge(&self, edge: &str) -> Result<(), StoreError> {
        self.lock().reaping.remove(edge);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
