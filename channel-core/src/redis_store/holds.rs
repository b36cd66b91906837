//! Held leaving webhooks in Redis, shared by every core replica. Each app's holds live in its
//! hash slot; `ns:holds-apps` lists the apps that may have some (a superset).

use std::time::Duration;

use async_trait::async_trait;

use super::connection::ttl_ms;
use super::RedisStore;
use crate::store::{DueHold, HoldStore};
use crate::CoreError;

impl RedisStore {
    /// Removes `app_id` from the app list `index` once the app's `hash` (its holds, its
    /// effects) is empty. A writer lists the app around its write, and this re-lists it if an
    /// entry appeared meanwhile, so none goes unlisted.
    pub(super) async fn unlist_if_empty(
        &self,
        index: String,
        hash: String,
        app_id: &str,
    ) -> Result<(), CoreError> {
        let mut pipe = redis::pipe();
        pipe.srem(&index, app_id).ignore().hlen(hash);
        let (left,): (u64,) = self.query(&pipe).await?;
        if left > 0 {
            let mut pipe = redis::pipe();
            pipe.sadd(index, app_id).ignore();
            self.query::<()>(&pipe).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl HoldStore for RedisStore {
    async fn hold(
        &self,
        app_id: &str,
        key: &str,
        job: String,
        hold: Duration,
    ) -> Result<(), CoreError> {
        let app = self.keys.app(app_id);
        let mut inv = self.scripts.hold_put.prepare_invoke();
        inv.key(app.holds())
            .key(app.holds_due())
            .key(app.holds_claimed())
            .arg(key)
            .arg(job)
            .arg(ttl_ms(hold));
        let _: i64 = self.eval(&inv).await?;
        // Indexed after the hold exists, so an index cleanup racing with this cannot leave a
        // hold unlisted (see `claim`).
        let mut pipe = redis::pipe();
        pipe.sadd(self.keys.holds_apps(), app_id).ignore();
        self.query(&pipe).await
    }

    async fn cancel_hold(&self, app_id: &str, key: &str) -> Result<bool, CoreError> {
        let app = self.keys.app(app_id);
        let mut inv = self.scripts.hold_cancel.prepare_invoke();
        inv.key(app.holds())
            .key(app.holds_due())
            .key(app.holds_claimed())
            .arg(key);
        let dropped: i64 = self.eval(&inv).await?;
        Ok(dropped == 1)
    }

    async fn claim_due_holds(
        &self,
        claim: Duration,
        limit: usize,
    ) -> Result<Vec<DueHold>, CoreError> {
        let mut pipe = redis::pipe();
        pipe.smembers(self.keys.holds_apps());
        let (apps,): (Vec<String>,) = self.query(&pipe).await?;
        let mut due = Vec::new();
        for app_id in apps {
            if due.len() >= limit {
                break;
            }
            let app = self.keys.app(&app_id);
            let mut inv = self.scripts.hold_claim.prepare_invoke();
            inv.key(app.holds())
                .key(app.holds_due())
                .key(app.holds_claimed())
                .arg(ttl_ms(claim))
                .arg(limit - due.len());
            let flat: Vec<String> = self.eval(&inv).await?;
            if flat.is_empty() {
                let holds = self.keys.app(&app_id).holds();
                self.unlist_if_empty(self.keys.holds_apps(), holds, &app_id)
                    .await?;
            }
            let mut it = flat.into_iter();
            while let (Some(key), Some(job)) = (it.next(), it.next()) {
                due.push(DueHold {
                    app_id: app_id.clone(),
                    key,
                    job,
                });
            }
        }
        Ok(due)
    }

    async fn forget_hold(&self, due: &DueHold) -> Result<(), CoreError> {
        let app = self.keys.app(&due.app_id);
        let mut inv = self.scripts.hold_forget.prepare_invoke();
        inv.key(app.holds())
            .key(app.holds_due())
            .key(app.holds_claimed())
            .arg(&due.key)
            .arg(&due.job);
        let _: i64 = self.eval(&inv).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    /// Two replicas on one Redis (127.0.0.1:6379) share the holds.
    #[tokio::test]
    async fn replicas_share_holds() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let ns = format!("sytest:holds:{}:{nanos}", std::process::id());
        let a = RedisStore::connect("redis://127.0.0.1:6379", &ns)
            .await
            .expect("redis");
        let b = RedisStore::connect("redis://127.0.0.1:6379", &ns)
            .await
            .expect("redis");
        let hold = Duration::from_millis(300);
        let claim = Duration::from_secs(30);

        a.hold("app", "k1", "job1".into(), hold)
            .await
            .expect("hold");
        a.hold("app", "k2", "job2".into(), hold)
            .await
            .expect("hold");
        assert!(
            b.cancel_hold("app", "k2").await.expect("cancel"),
            "another replica cancels"
        );
        assert!(!b.cancel_hold("app", "k2").await.expect("cancel"));
        assert!(
            b.claim_due_holds(claim, 10)
                .await
                .expect("claim")
                .is_empty(),
            "not due yet"
        );
        tokio::time::sleep(hold + Duration::from_millis(50)).await;
        let due = b.claim_due_holds(claim, 10).await.expect("claim");
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!((due[0].key.as_str(), due[0].job.as_str()), ("k1", "job1"));
        assert!(
            a.claim_due_holds(claim, 10)
                .await
                .expect("claim")
                .is_empty(),
            "claimed by b"
        );
        b.forget_hold(&due[0]).await.expect("forget");
        assert!(
            !a.cancel_hold("app", "k1").await.expect("cancel"),
            "gone once sent"
        );

        // A claim that is never finished (its replica died) comes due again.
        a.hold("app", "k3", "job3".into(), Duration::ZERO)
            .await
            .expect("hold");
        let first = a
            .claim_due_holds(Duration::from_millis(200), 10)
            .await
            .expect("claim");
        assert_eq!(first.len(), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        let again = b.claim_due_holds(claim, 10).await.expect("claim");
        assert_eq!(again, first);
        b.forget_hold(&again[0]).await.expect("forget");
        // Nothing held: the app leaves the index.
        assert!(b
            .claim_due_holds(claim, 10)
            .await
            .expect("claim")
            .is_empty());
        let mut pipe = redis::pipe();
        pipe.scard(b.keys.holds_apps());
        let (listed,): (u64,) = b.query(&pipe).await.expect("index");
        assert_eq!(listed, 0);
    }
}
