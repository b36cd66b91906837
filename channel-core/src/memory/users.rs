//! Signed-in users in memory.

use std::time::Instant;

use async_trait::async_trait;

use super::{key, MemoryStore};
use crate::store::{Effect, UserStore};
use crate::CoreError;

#[async_trait]
impl UserStore for MemoryStore {
    async fn user_connect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, CoreError> {
        let mut state = self.lock();
        state.admit_write(edge)?;
        let conns = state.online.entry(key(app_id, user_id)).or_default();
        let conn = (edge.to_owned(), socket_id.to_owned());
        let added = !conns.contains(&conn);
        if added {
            conns.push(conn);
        }
        let first = conns.len() == 1;
        if first && added {
            let effect = Effect::Online {
                user_id: user_id.to_owned(),
            };
            state.outbox.emit(Instant::now(), app_id, effect);
        }
        Ok(first)
    }

    async fn user_disconnect(
        &self,
        app_id: &str,
        user_id: &str,
        edge: &str,
        socket_id: &str,
    ) -> Result<bool, CoreError> {
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
        if last {
            let effect = Effect::Offline {
                user_id: user_id.to_owned(),
            };
            state.outbox.emit(Instant::now(), app_id, effect);
        }
        Ok(last)
    }

    async fn users_online(
        &self,
        app_id: &str,
        user_ids: &[String],
    ) -> Result<Vec<String>, CoreError> {
        let state = self.lock();
        Ok(user_ids
            .iter()
            .filter(|id| state.online.contains_key(&key(app_id, id)))
            .cloned()
            .collect())
    }
}
