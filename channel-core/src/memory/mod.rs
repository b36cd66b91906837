use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchyard_protocol::presence::Member;

use crate::store::{
    CacheStore, CountStore, CountTransition, Effect, JoinResult, LeaveResult, Presence,
    PresenceStore,
};
use crate::{ChannelCounts, CoreError};
use holds::Holds;
use limits::Limits;
use outbox::Outbox;

mod holds;
mod leases;
mod limits;
mod outbox;
mod users;

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
    /// Claimed or reaped edges → when: refused any write that adds, and any new lease.
    fenced: HashMap<String, Instant>,
    /// Edges whose lease a write made before their first heartbeat.
    provisional: std::collections::HashSet<String>,
    last_sweep: Option<Instant>,
    /// Membership numbers of channels that emptied → when.
    idle_seqs: HashMap<Key, (u64, Instant)>,
    limits: Limits,
    holds: Holds,
    outbox: Outbox,
}

/// How often expired cache entries are swept; reads ignore them in between.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// See `redis_store`'s `register_edge`.
const PROVISIONAL_LEASE: Duration = Duration::from_secs(30);
/// How long an empty channel's membership number is kept.
const SEQ_KEPT: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct ChannelState {
    edge_counts: HashMap<String, u64>,
    total: u64,
    /// user id → (member, its connections as (edge, socket)); insertion order kept in `order`.
    users: HashMap<String, (Member, Vec<(String, String)>)>,
    order: Vec<String>,
    /// Membership sequence number. It outlives the channel for [`SEQ_KEPT`] (in
    /// `State::idle_seqs`), so a channel that empties and fills again keeps counting up and an
    /// edge never mistakes a new event for an old one.
    seq: u64,
}

impl ChannelState {
    fn is_empty(&self) -> bool {
        self.total == 0 && self.users.is_empty()
    }

    fn members(&self) -> Vec<Member> {
        self.order
            .iter()
            .filter_map(|id| self.users.get(id).map(|(m, _)| m.clone()))
            .collect()
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

impl State {
    /// The channel's state, made (with its kept membership number) if it had none.
    fn channel(&mut self, k: &Key) -> &mut ChannelState {
        if !self.channels.contains_key(k) {
            let seq = self.idle_seqs.remove(k).map_or(0, |(seq, _)| seq);
            self.channels.insert(
                k.clone(),
                ChannelState {
                    seq,
                    ..ChannelState::default()
                },
            );
        }
        self.channels.get_mut(k).expect("just made")
    }

    /// Drops an empty channel, keeping its membership number for a while.
    fn drop_if_empty(&mut self, k: &Key) {
        if self.channels.get(k).is_some_and(ChannelState::is_empty) {
            if let Some(ch) = self.channels.remove(k) {
                let now = Instant::now();
                if self.idle_seqs.len() % 1024 == 1023 {
                    self.idle_seqs
                        .retain(|_, (_, at)| now.duration_since(*at) < SEQ_KEPT);
                }
                self.idle_seqs.insert(k.clone(), (ch.seq, now));
            }
        }
    }

    /// Refuses a write that adds to what `edge` holds once a reaper has taken the edge; gives
    /// an edge without a lease (a new id whose first beat is on its way) a provisional one, so
    /// what it writes is reaped even if it dies before it beats.
    fn admit_write(&mut self, edge: &str) -> Result<(), CoreError> {
        if self.fenced.contains_key(edge) {
            return Err(CoreError::Fenced(edge.to_owned()));
        }
        if !self.leases.contains_key(edge) {
            self.leases
                .insert(edge.to_owned(), Instant::now() + PROVISIONAL_LEASE);
            self.provisional.insert(edge.to_owned());
        }
        Ok(())
    }
}

fn key(app_id: &str, channel: &str) -> Key {
    (app_id.to_owned(), channel.to_owned())
}

#[async_trait]
impl CountStore for MemoryStore {
    async fn set_edge_count(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        count: u64,
    ) -> Result<CountTransition, CoreError> {
        let mut state = self.lock();
        if count > 0 {
            state.admit_write(edge)?;
        }
        let k = key(app_id, channel);
        let ch = state.channel(&k);
        let before = ch.total;
        let old = if count == 0 {
            ch.edge_counts.remove(edge).unwrap_or(0)
        } else {
            ch.edge_counts.insert(edge.to_owned(), count).unwrap_or(0)
        };
        ch.total = ch.total - old + count;
        let after = ch.total;
        state.drop_if_empty(&k);
        if before != after {
            let effect = Effect::Count {
                channel: channel.to_owned(),
                before,
                after,
            };
            state.outbox.emit(Instant::now(), app_id, effect);
        }
        Ok(CountTransition { before, after })
    }

    async fn counts(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, CoreError> {
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
    ) -> Result<Vec<(String, ChannelCounts)>, CoreError> {
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
}

#[async_trait]
impl PresenceStore for MemoryStore {
    async fn join(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
        member: Member,
        max_members: usize,
    ) -> Result<JoinResult, CoreError> {
        let mut state = self.lock();
        state.admit_write(edge)?;
        let ch = state.channel(&key(app_id, channel));
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
                return Err(CoreError::PresenceFull(max_members));
            }
            None => {
                ch.order.push(member.user_id.clone());
                ch.users
                    .insert(member.user_id.clone(), (member.clone(), vec![conn]));
                ch.seq += 1;
                true
            }
        };
        let result = JoinResult {
            first,
            members: ch.members(),
            seq: ch.seq,
        };
        if first {
            let effect = Effect::MemberAdded {
                channel: channel.to_owned(),
                user_id: member.user_id,
                user_info: member.user_info,
                except: Some(socket_id.to_owned()),
                seq: result.seq,
            };
            state.outbox.emit(Instant::now(), app_id, effect);
        }
        Ok(result)
    }

    async fn leave(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<Option<LeaveResult>, CoreError> {
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
            ch.seq += 1;
        }
        let seq = ch.seq;
        state.drop_if_empty(&k);
        if last {
            let effect = Effect::MemberRemoved {
                channel: channel.to_owned(),
                user_id: user_id.clone(),
                seq,
            };
            state.outbox.emit(Instant::now(), app_id, effect);
        }
        Ok(Some(LeaveResult { user_id, last, seq }))
    }

    async fn presence(&self, app_id: &str, channel: &str) -> Result<Presence, CoreError> {
        let state = self.lock();
        let k = key(app_id, channel);
        Ok(state
            .channels
            .get(&k)
            .map(|ch| Presence {
                members: ch.members(),
                seq: ch.seq,
            })
            .unwrap_or_else(|| Presence {
                members: Vec::new(),
                seq: state.idle_seqs.get(&k).map_or(0, |(seq, _)| *seq),
            }))
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn cache_put(
        &self,
        app_id: &str,
        channel: &str,
        frame: String,
        ttl: Duration,
    ) -> Result<(), CoreError> {
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
    ) -> Result<Option<(String, Duration)>, CoreError> {
        let state = self.lock();
        let now = Instant::now();
        Ok(state
            .cache
            .get(&key(app_id, channel))
            .filter(|(_, expires)| *expires > now)
            .map(|(frame, expires)| (frame.clone(), *expires - now)))
    }
}

#[cfg(test)]
mod tests;
