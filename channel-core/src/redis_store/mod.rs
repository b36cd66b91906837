//! [`ChannelStore`] in Redis, for the distributed mode: several core replicas share one Redis.
//!
//! Every first/last decision (count totals, presence joins and leaves, signed-in users, reaping,
//! lease claims) is one Lua script, so replicas never read then write. Reads that decide nothing
//! use `MULTI` pipelines for a consistent snapshot.
//!
//! The key layout is in [`keys`]; Redis deletes empty hashes, sets and sorted sets by
//! itself, so an empty channel, an offline user or an edge with nothing left leaves no keys.
//!
//! Redis Cluster: all keys of an app share the `{app}` hash tag, so a script can update a
//! channel and the app's occupied index together, and the cluster shards per app, not per
//! channel: one very busy app lives on one shard. The lease list and the edge → apps index are
//! outside any app; no script touches them together with app keys. The layout is ready for a
//! cluster, but the connection is a single-node `ConnectionManager`: running on a cluster
//! means swapping in the cluster client, not changing keys or scripts.

mod connection;
mod holds;
mod keys;
mod leases;
mod limits;
mod outbox;
mod scripts;
mod users;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Value;
use switchyard_protocol::presence::Member;

use crate::store::{
    CacheStore, CountStore, CountTransition, JoinResult, LeaveResult, Presence, PresenceStore,
};
use crate::{ChannelCounts, CoreError};
use connection::{ttl_ms, unavailable, Write};
use keys::{channel_holding, conn, Keys};
use scripts::Scripts;

/// Channel state in Redis. Cheap to share: the connection is multiplexed and reconnects by
/// itself after Redis restarts.
pub struct RedisStore {
    con: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
}

fn members_from_pairs(flat: Vec<String>) -> Vec<Member> {
    let mut members = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(user_id), Some(user_info)) = (it.next(), it.next()) {
        members.push(Member { user_id, user_info });
    }
    members
}

/// ZRANGEBYLEX bounds for names starting with `prefix`. Byte 0xFF never occurs in UTF-8, so
/// `prefix + 0xFF` is above every name with that prefix and below every greater one.
fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (b"-".to_vec(), b"+".to_vec());
    }
    let min = [b"[", prefix.as_bytes()].concat();
    let max = [b"(", prefix.as_bytes(), &[0xFF]].concat();
    (min, max)
}

fn total(counts: &[u64]) -> u64 {
    counts.iter().sum()
}

#[async_trait]
impl CountStore for RedisStore {
    async fn set_edge_count(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        count: u64,
    ) -> Result<CountTransition, CoreError> {
        let app = self.keys.app(app_id);
        let outbox = app.outbox();
        let base = || {
            let mut inv = self.scripts.count.prepare_invoke();
            inv.key(app.counts(channel))
                .key(app.edge_sockets(channel, edge))
                .key(app.occupied())
                .key(app.holdings(edge))
                .key(&outbox)
                .arg(edge)
                .arg(count)
                .arg(channel);
            inv
        };
        let write = if count > 0 {
            Write::Adds
        } else {
            Write::Removes
        };
        let (before, after) = self.eval_guarded(edge, app_id, write, base).await?;
        Ok(CountTransition { before, after })
    }

    async fn counts(&self, app_id: &str, channel: &str) -> Result<ChannelCounts, CoreError> {
        let app = self.keys.app(app_id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hvals(app.counts(channel))
            .hlen(app.members(channel));
        let (counts, users): (Vec<u64>, u64) = self.query(&pipe).await?;
        Ok(ChannelCounts {
            subscription_count: total(&counts),
            user_count: users,
        })
    }

    async fn occupied(
        &self,
        app_id: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ChannelCounts)>, CoreError> {
        let app = self.keys.app(app_id);
        let (min, max) = prefix_range(prefix);
        let mut pipe = redis::pipe();
        pipe.zrangebylex(app.occupied(), min, max);
        let (names,): (Vec<String>,) = self.query(&pipe).await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for name in &names {
            pipe.hvals(app.counts(name)).hlen(app.members(name));
        }
        let values: Vec<Value> = self.query(&pipe).await?;
        let mut out = Vec::with_capacity(names.len());
        let mut values = values.into_iter();
        for name in names {
            let (Some(counts), Some(users)) = (values.next(), values.next()) else {
                return Err(unavailable("short reply to a channel counts pipeline"));
            };
            let counts: Vec<u64> = redis::from_redis_value(counts).map_err(unavailable)?;
            let users: u64 = redis::from_redis_value(users).map_err(unavailable)?;
            // The index was read first: a channel vacated since then is skipped.
            if total(&counts) > 0 {
                let counts = ChannelCounts {
                    subscription_count: total(&counts),
                    user_count: users,
                };
                out.push((name, counts));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl PresenceStore for RedisStore {
    async fn join(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
        member: Member,
        max_members: usize,
    ) -> Result<JoinResult, CoreError> {
        let app = self.keys.app(app_id);
        let outbox = app.outbox();
        let base = || {
            let mut inv = self.scripts.join.prepare_invoke();
            inv.key(app.members(channel))
                .key(app.order(channel))
                .key(app.conns(channel))
                .key(app.user_conns(channel))
                .key(app.edge_sockets(channel, edge))
                .key(app.holdings(edge))
                .key(app.member_seq(channel))
                .key(&outbox)
                .arg(conn(edge, socket_id))
                .arg(socket_id)
                .arg(&member.user_id)
                .arg(&member.user_info)
                .arg(max_members)
                .arg(channel_holding(channel))
                .arg(channel);
            inv
        };
        let (first, flat, seq): (i64, Vec<String>, u64) =
            self.eval_guarded(edge, app_id, Write::Adds, base).await?;
        if first < 0 {
            return Err(CoreError::PresenceFull(max_members));
        }
        Ok(JoinResult {
            first: first == 1,
            members: members_from_pairs(flat),
            seq,
        })
    }

    async fn leave(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<Option<LeaveResult>, CoreError> {
        let app = self.keys.app(app_id);
        let mut inv = self.scripts.leave.prepare_invoke();
        inv.key(app.members(channel))
            .key(app.order(channel))
            .key(app.conns(channel))
            .key(app.user_conns(channel))
            .key(app.edge_sockets(channel, edge))
            .key(app.counts(channel))
            .key(app.holdings(edge))
            .key(app.member_seq(channel))
            .key(&app.outbox())
            .arg(conn(edge, socket_id))
            .arg(socket_id)
            .arg(edge)
            .arg(channel_holding(channel))
            .arg(channel);
        let left: Option<(String, i64, u64)> = self.eval_outbox(app_id, &inv).await?;
        Ok(left.map(|(user_id, last, seq)| LeaveResult {
            user_id,
            last: last == 1,
            seq,
        }))
    }

    async fn presence(&self, app_id: &str, channel: &str) -> Result<Presence, CoreError> {
        let app = self.keys.app(app_id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zrange(app.order(channel), 0, -1)
            .hgetall(app.members(channel))
            .get(app.member_seq(channel));
        let (order, mut infos, seq): (Vec<String>, HashMap<String, String>, Option<u64>) =
            self.query(&pipe).await?;
        let members = order
            .into_iter()
            .filter_map(|user_id| {
                let user_info = infos.remove(&user_id)?;
                Some(Member { user_id, user_info })
            })
            .collect();
        Ok(Presence {
            members,
            seq: seq.unwrap_or(0),
        })
    }
}

#[async_trait]
impl CacheStore for RedisStore {
    async fn cache_put(
        &self,
        app_id: &str,
        channel: &str,
        frame: String,
        ttl: Duration,
    ) -> Result<(), CoreError> {
        let key = self.keys.app(app_id).cache(channel);
        let mut pipe = redis::pipe();
        // Redis rejects PX 0; a zero TTL means the frame is already gone.
        match ttl_ms(ttl) {
            0 => pipe.del(key).ignore(),
            ms => pipe
                .cmd("SET")
                .arg(key)
                .arg(frame)
                .arg("PX")
                .arg(ms)
                .ignore(),
        };
        self.query(&pipe).await
    }

    async fn cache_get(
        &self,
        app_id: &str,
        channel: &str,
    ) -> Result<Option<(String, Duration)>, CoreError> {
        let key = self.keys.app(app_id).cache(channel);
        let mut pipe = redis::pipe();
        pipe.atomic().get(&key).pttl(&key);
        let (frame, pttl): (Option<String>, i64) = self.query(&pipe).await?;
        let remaining = Duration::from_millis(u64::try_from(pttl).unwrap_or(0));
        Ok(frame.map(|frame| (frame, remaining)))
    }
}
