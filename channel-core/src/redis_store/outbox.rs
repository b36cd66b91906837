//! The outbox in Redis: each app's effects live in its hash slot, written by the scripts that
//! make the changes (`outbox.lua`); `ns:fx-apps` lists the apps that may have some (a
//! superset, written before each such script).

use std::time::Duration;

use async_trait::async_trait;

use super::connection::ttl_ms;
use super::RedisStore;
use crate::store::{OutboxStore, PendingEffect};
use crate::CoreError;

#[async_trait]
impl OutboxStore for RedisStore {
    async fn claim_effects(
        &self,
        claim: Duration,
        limit: usize,
    ) -> Result<Vec<PendingEffect>, CoreError> {
        let mut pipe = redis::pipe();
        pipe.smembers(self.keys.effect_apps());
        let (mut apps,): (Vec<String>,) = self.query(&pipe).await?;
        // A different app first each time, so one busy app cannot starve the others.
        if !apps.is_empty() {
            let start = rand::random::<u32>() as usize % apps.len();
            apps.rotate_left(start);
        }
        let mut claimed = Vec::new();
        for app_id in apps {
            if claimed.len() >= limit {
                break;
            }
            let app = self.keys.app(&app_id);
            let [fx, fx_due, _] = app.outbox();
            let mut inv = self.scripts.effect_claim.prepare_invoke();
            inv.key(&fx)
                .key(&fx_due)
                .key(app.effects_claimed())
                .arg(ttl_ms(claim))
                .arg(limit - claimed.len());
            let flat: Vec<String> = self.eval(&inv).await?;
            if flat.is_empty() {
                self.unlist_if_empty(self.keys.effect_apps(), fx.clone(), &app_id)
                    .await?;
            }
            let mut it = flat.into_iter();
            while let (Some(id), Some(json)) = (it.next(), it.next()) {
                match serde_json::from_str(&json) {
                    Ok(effect) => claimed.push(PendingEffect {
                        app_id: app_id.clone(),
                        id,
                        effect,
                    }),
                    Err(e) => {
                        // Written by a newer core this one cannot read: leave it to that one.
                        tracing::warn!(app_id, id, error = %e, "skipping an effect this core cannot read");
                    }
                }
            }
        }
        Ok(claimed)
    }

    async fn forget_effect(&self, effect: &PendingEffect) -> Result<(), CoreError> {
        let app = self.keys.app(&effect.app_id);
        let [fx, fx_due, _] = app.outbox();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(fx, &effect.id)
            .ignore()
            .zrem(fx_due, &effect.id)
            .ignore()
            .hdel(app.effects_claimed(), &effect.id)
            .ignore();
        self.query(&pipe).await
    }
}
