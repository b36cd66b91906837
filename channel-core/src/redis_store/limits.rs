//! Cluster-wide limits in Redis: each app's connection count (per edge, so a dead edge's share
//! can be reaped) and per-second quotas.

use async_trait::async_trait;

use super::connection::Write;
use super::keys::CONNECTIONS_HOLDING;
use super::RedisStore;
use crate::store::LimitStore;
use crate::CoreError;

#[async_trait]
impl LimitStore for RedisStore {
    async fn admit_connection(
        &self,
        app_id: &str,
        edge: &str,
        max: u64,
    ) -> Result<bool, CoreError> {
        let app = self.keys.app(app_id);
        let base = || {
            let mut inv = self.scripts.admit_connection.prepare_invoke();
            inv.key(app.connections())
                .key(app.holdings(edge))
                .arg(edge)
                .arg(max)
                .arg(CONNECTIONS_HOLDING);
            inv
        };
        let admitted: i64 = self.eval_guarded(edge, app_id, Write::Adds, base).await?;
        Ok(admitted == 1)
    }

    async fn release_connection(&self, app_id: &str, edge: &str) -> Result<(), CoreError> {
        let mut inv = self.scripts.release_connection.prepare_invoke();
        inv.key(self.keys.app(app_id).connections()).arg(edge);
        let _left: i64 = self.eval(&inv).await?;
        Ok(())
    }

    async fn take_quota(
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
