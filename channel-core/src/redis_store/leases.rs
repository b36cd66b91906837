//! Edge leases in Redis, and removing what a dead edge held.

use std::time::Duration;

use async_trait::async_trait;

use super::connection::ttl_ms;
use super::keys::{channel_holding, conn_prefix, parse_holding, user_holding, CONNECTIONS_HOLDING};
use super::RedisStore;
use crate::store::{CountTransition, Holding, LeaseStore, ReapResult, FENCED_FOR};
use crate::CoreError;

#[async_trait]
impl LeaseStore for RedisStore {
    async fn touch_edge(&self, edge: &str, ttl: Duration) -> Result<bool, CoreError> {
        let mut inv = self.scripts.touch_edge.prepare_invoke();
        inv.key(self.keys.leases())
            .key(self.keys.reaping())
            .key(self.keys.dead())
            .key(self.keys.provisional())
            .arg(edge)
            .arg(ttl_ms(ttl));
        let live: i64 = self.eval(&inv).await?;
        Ok(live == 1)
    }

    async fn claim_expired_edge(&self, claim: Duration) -> Result<Option<String>, CoreError> {
        let mut inv = self.scripts.claim_edge.prepare_invoke();
        inv.key(self.keys.leases())
            .key(self.keys.reaping())
            .key(self.keys.provisional())
            .arg(ttl_ms(claim));
        self.eval(&inv).await
    }

    async fn fence_edge(&self, edge: &str) -> Result<(), CoreError> {
        let mut pipe = redis::pipe();
        pipe.smembers(self.keys.edge_apps(edge));
        let (apps,): (Vec<String>,) = self.query(&pipe).await?;
        if apps.is_empty() {
            return Ok(());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let keep = ttl_ms(FENCED_FOR);
        let mut pipe = redis::pipe();
        for app_id in &apps {
            let app = self.keys.app(app_id);
            pipe.zadd(app.fenced(), edge, now)
                .ignore()
                .zrembyscore(app.fenced(), "-inf", now.saturating_sub(keep))
                .ignore()
                .pexpire(app.fenced(), keep as i64)
                .ignore()
                .hdel(app.registered(), edge)
                .ignore();
        }
        self.query(&pipe).await
    }

    async fn edge_holdings(&self, edge: &str) -> Result<Vec<Holding>, CoreError> {
        let mut pipe = redis::pipe();
        pipe.smembers(self.keys.edge_apps(edge));
        let (apps,): (Vec<String>,) = self.query(&pipe).await?;
        if apps.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for app_id in &apps {
            pipe.smembers(self.keys.app(app_id).holdings(edge));
        }
        let held: Vec<Vec<String>> = self.query(&pipe).await?;
        let mut out: Vec<Holding> = apps
            .iter()
            .zip(held)
            .flat_map(|(app_id, values)| {
                values
                    .into_iter()
                    .filter_map(move |value| parse_holding(app_id, &value))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    async fn reap_channel(
        &self,
        app_id: &str,
        channel: &str,
        edge: &str,
    ) -> Result<ReapResult, CoreError> {
        let app = self.keys.app(app_id);
        let mut inv = self.scripts.reap_channel.prepare_invoke();
        inv.key(app.counts(channel))
            .key(app.members(channel))
            .key(app.order(channel))
            .key(app.conns(channel))
            .key(app.user_conns(channel))
            .key(app.edge_sockets(channel, edge))
            .key(app.occupied())
            .key(app.holdings(edge))
            .key(app.member_seq(channel))
            .key(&app.outbox())
            .arg(edge)
            .arg(channel)
            .arg(conn_prefix(edge))
            .arg(channel_holding(channel));
        let (before, after, users_left, seq): (u64, u64, Vec<String>, u64) =
            self.eval_outbox(app_id, &inv).await?;
        Ok(ReapResult {
            transition: CountTransition { before, after },
            users_left,
            seq,
        })
    }

    async fn reap_user(&self, app_id: &str, user_id: &str, edge: &str) -> Result<bool, CoreError> {
        let app = self.keys.app(app_id);
        let mut inv = self.scripts.reap_user.prepare_invoke();
        inv.key(app.online(user_id))
            .key(app.user_sockets(user_id, edge))
            .key(app.holdings(edge))
            .key(&app.outbox())
            .arg(conn_prefix(edge))
            .arg(user_holding(user_id))
            .arg(user_id);
        self.eval_outbox(app_id, &inv).await
    }

    async fn reap_connections(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        let app = self.keys.app(app_id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(app.connections(), edge)
            .ignore()
            .srem(app.holdings(edge), CONNECTIONS_HOLDING)
            .ignore();
        self.query(&pipe).await
    }

    async fn forget_edge(&self, edge: &str) -> Result<(), CoreError> {
        let mut pipe = redis::pipe();
        pipe.smembers(self.keys.edge_apps(edge));
        let (apps,): (Vec<String>,) = self.query(&pipe).await?;
        // After reaping, the holdings sets are already empty (so already gone); deleting them
        // here only matters for ones a reap missed, which would otherwise never be visited.
        let mut pipe = redis::pipe();
        for app_id in &apps {
            let app = self.keys.app(app_id);
            pipe.del(app.holdings(edge))
                .ignore()
                .hdel(app.registered(), edge)
                .ignore();
        }
        let mut inv = self.scripts.forget_edge.prepare_invoke();
        inv.key(self.keys.reaping())
            .key(self.keys.dead())
            .key(self.keys.edge_apps(edge))
            .arg(edge)
            .arg(ttl_ms(FENCED_FOR));
        if !apps.is_empty() {
            self.query::<()>(&pipe).await?;
        }
        let _: i64 = self.eval(&inv).await?;
        Ok(())
    }
}
