//! Leaving webhooks (`channel_vacated`, `member_removed`) wait a few seconds and are dropped
//! if the channel or member returns in that window; the matching return event
//! (`channel_occupied`, `member_added`) is then dropped too, so a page reload sends nothing.
//!
//! The holds live in the store, so every core replica sees them: a return handled by another
//! replica cancels a hold, and a replica that dies loses none (another sends it when due).

use std::time::Duration;

use switchyard_apps::App;
use switchyard_webhook::{WebhookEvent, WebhookJob};

use crate::core::{now_ms, Core};
use crate::store::DueHold;
use crate::CoreError;

/// How long a replica may take to send a due hold before another may send it (or it tries
/// again after a failed push). Short, so a webhook queue outage delays held webhooks by about
/// this much after it ends; a push slower than this may be sent twice (same job, at least
/// once), never lost.
const CLAIM: Duration = Duration::from_secs(5);
/// Holds sent per pass.
const BATCH: usize = 100;

/// What is held: a channel (`user_id: None`) or one member of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HoldKey {
    pub app_id: String,
    pub channel: String,
    pub user_id: Option<String>,
}

impl HoldKey {
    /// One member of a presence channel.
    pub(crate) fn member(app_id: &str, channel: &str, user_id: &str) -> HoldKey {
        HoldKey {
            app_id: app_id.to_owned(),
            channel: channel.to_owned(),
            user_id: Some(user_id.to_owned()),
        }
    }

    /// The key's name in the store: distinct for every (channel, user) pair.
    fn field(&self) -> String {
        match &self.user_id {
            None => format!("v{}", self.channel),
            Some(user) => format!("m{}:{}:{user}", self.channel.len(), self.channel),
        }
    }
}

impl Core {
    /// A return (occupied / member added): sent unless it cancels a held leave.
    pub(crate) async fn arrival(
        &self,
        app: &App,
        key: HoldKey,
        event: WebhookEvent,
        id: Option<String>,
    ) -> Result<(), CoreError> {
        if app.webhooks.is_empty() {
            return Ok(());
        }
        match self.store.cancel_hold(&key.app_id, &key.field()).await {
            Ok(true) => Ok(()),
            Ok(false) => self.webhook(app, event, id).await,
            Err(e) => {
                // Better a leave and a return both sent than a return lost.
                tracing::warn!(app_id = %app.id, error = %e, "webhook hold check failed");
                self.webhook(app, event, id).await
            }
        }
    }

    /// A leave (vacated / member removed): sent after the hold unless the key returns.
    pub(crate) async fn departure(
        &self,
        app: &App,
        key: HoldKey,
        event: WebhookEvent,
        id: Option<String>,
    ) -> Result<(), CoreError> {
        if app.webhooks.is_empty() {
            return Ok(());
        }
        let job = WebhookJob {
            app_id: app.id.clone(),
            event,
            time_ms: now_ms(),
            only_url: None,
            id,
        };
        let json =
            serde_json::to_string(&job).map_err(|e| CoreError::Unavailable(e.to_string()))?;
        self.store
            .hold(&key.app_id, &key.field(), json, self.hold)
            .await
    }

    /// Sends the held webhooks whose time has come; returns how many.
    pub async fn release_due_holds(&self) -> Result<usize, CoreError> {
        let due = self.store.claim_due_holds(CLAIM, BATCH).await?;
        let sent = due.len();
        for hold in due {
            self.send_hold(&hold).await?;
        }
        Ok(sent)
    }

    async fn send_hold(&self, hold: &DueHold) -> Result<(), CoreError> {
        match serde_json::from_str::<WebhookJob>(&hold.job) {
            Ok(mut job) => {
                job.time_ms = now_ms();
                // On failure the claim lapses and the hold is sent later, here or elsewhere.
                self.webhooks
                    .push(job)
                    .await
                    .map_err(|e| CoreError::Unavailable(e.to_string()))?;
            }
            Err(e) => {
                tracing::error!(app_id = %hold.app_id, error = %e, "dropping an unreadable webhook hold")
            }
        }
        self.store.forget_hold(hold).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_fields_are_distinct_per_channel_and_user() {
        let key = |channel: &str, user: Option<&str>| HoldKey {
            app_id: "a".into(),
            channel: channel.into(),
            user_id: user.map(str::to_owned),
        };
        assert_ne!(key("a:b", Some("c")).field(), key("a", Some("b:c")).field());
        assert_ne!(key("mx", None).field(), key("x", Some("")).field());
    }
}
