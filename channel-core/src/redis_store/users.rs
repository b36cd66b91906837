//! Signed-in users in Redis: one script per first/last decision.

use async_trait::async_trait;

use super::connection::Write;
use super::keys::{conn, user_holding};
use super::RedisStore;
use crate::store::UserStore;
use crate::CoreError;

#[async_trait]
impl UserStore for RedisStore {
    async fn user_connect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, CoreError> {
        let app = self.keys.app(app_id);
        let outbox = app.outbox();
        let base = || {
            let mut inv = self.scripts.user_connect.prepare_invoke();
            inv.key(app.online(user_id))
                .key(app.user_sockets(user_id, edge))
                .key(app.holdings(edge))
                .key(&outbox)
                .arg(conn(edge, socket_id))
                .arg(socket_id)
                .arg(user_holding(user_id))
                .arg(user_id);
            inv
        };
        self.eval_guarded(edge, app_id, Write::Adds, base).await
    }

    async fn user_disconnect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, CoreError> {
        let app = self.keys.app(app_id);
        let mut inv = self.scripts.user_disconnect.prepare_invoke();
        inv.key(app.online(user_id))
            .key(app.user_sockets(user_id, edge))
            .key(app.holdings(edge))
            .key(&app.outbox())
            .arg(conn(edge, socket_id))
            .arg(socket_id)
            .arg(user_holding(user_id))
            .arg(user_id);
        self.eval_outbox(app_id, &inv).await
    }

    async fn users_online(
        &self,
        app_id: &str,
        user_ids: &[String],
    ) -> Result<Vec<String>, CoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let app = self.keys.app(app_id);
        let mut pipe = redis::pipe();
        for user_id in user_ids {
            pipe.exists(app.online(user_id));
        }
        let online: Vec<bool> = self.query(&pipe).await?;
        Ok(user_ids
            .iter()
            .zip(online)
            .filter(|(_, online)| *online)
            .map(|(id, _)| id.clone())
            .collect())
    }
}
