//! Cluster-wide limits in Redis: each app's connection count (per edge, so a dead edge's share
//! can be reaped) and per-second quotas.

use super::keys::CONNECTIONS_HOLDING;
use super::RedisStore;
use crate::store::LimitStore;
use crate::CoreError;
use async_trait::async_trait;

impl RedisStore {
    pub(super) async fn admit(
        &self,
        app_id: &str,
        edge: &str,
        max: u64,
    ) -> Result<bool, CoreError> {
        let app = self.keys.app(app_id);
        let mut inv = self.scripts.admit_connection.prepare_invoke();
        inv.key(app.connections())
            .key(app.holdings(edge))
            .arg(edge)
            .arg(max)
            .arg(CONNECTIONS_HOLDING);
        let admitted: i64 = self.eval_indexed(edge, app_id, &inv).await?;
        Ok(admitted == 1)
    }

    pub(super) async fn release(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        let mut inv = self.scripts.release_connection.prepare_invoke();
        inv.key(self.keys.app(app_id).connections()).arg(edge);
        let _left: i64 = self.eval(&inv).await?;
        Ok(())
    }

    pub(super) async fn reap_conns(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        let app = self.keys.app(app_id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(app.connections(), edge)
            .ignore()
            .srem(app.holdings(edge), CONNECTIONS_HOLDING)
            .ignore();
        self.query(&pipe).await
    }

    pub(super) async fn take(
        &self,
        app_id: &str,
        bucket: &str,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, CoreError> {
        let mut inv = self.scripts.take_quota.prepare_invoke();
        inv.key(self.keys.app(app_id).quota(bucket))
            .arg(amount)
            .arg(per_second);
        let taken: i64 = self.eval(&inv).await?;
        Ok(taken == 1)
    }
}

#[async_trait]
impl LimitStore for RedisStore {
    async fn admit_connection(
        &self,
        app_id: &str,
        edge: &str,
        max: u64,
    ) -> Result<bool, CoreError> {
        self.admit(app_id, edge, max).await
    }

    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        self.release(app_id, edge).await
    }

    async fn take_quota(
        &self,
        app_id: &str,
        bucket: &str,
        amount: u64,
        per_second: u64,
    ) -> Result<bool, CoreError> {
        self.take(app_id, bucket, amount, per_second).await
    }
}
