use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// What a state change causes beyond the store: broadcasts and webhooks. The store writes it
/// in the same atomic step as the change (the transactional outbox), so it is never lost to a
/// request a deadline cancels or to a core that dies; a relay carries it out.
///
/// Field names are short because Redis scripts write them (`outbox.lua`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Effect {
    /// A user's first connection joined a presence channel.
    MemberAdded {
        #[serde(rename = "ch")]
        channel: String,
        #[serde(rename = "u")]
        user_id: String,
        /// The user_info JSON, as given.
        #[serde(rename = "i")]
        user_info: String,
        /// The joining socket, which is not sent its own `member_added`.
        #[serde(rename = "x", default)]
        except: Option<String>,
        /// The membership sequence number the change took.
        #[serde(rename = "s")]
        seq: u64,
    },
    /// A user's last connection left a presence channel.
    MemberRemoved {
        #[serde(rename = "ch")]
        channel: String,
        #[serde(rename = "u")]
        user_id: String,
        #[serde(rename = "s")]
        seq: u64,
    },
    /// A channel's cluster-wide subscriber count changed.
    Count {
        #[serde(rename = "ch")]
        channel: String,
        #[serde(rename = "b")]
        before: u64,
        #[serde(rename = "a")]
        after: u64,
    },
    /// A user's first signed-in connection.
    Online {
        #[serde(rename = "u")]
        user_id: String,
    },
    /// A user's last signed-in connection ended.
    Offline {
        #[serde(rename = "u")]
        user_id: String,
    },
}

/// An effect waiting to be carried out, as a relay claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEffect {
    pub app_id: String,
    /// Unique within the app; stable across claims (a redelivered effect keeps it).
    pub id: String,
    pub effect: Effect,
}

/// The outbox: effects the other stores wrote with their changes, until a relay carried them
/// out.
///
/// Contract: every change that causes an effect writes it in the same atomic step; a claimed
/// effect goes to no other claimer until its claim lapses, and one not forgotten by then
/// (its relay died or failed) is claimed again: effects are carried out at least once. An
/// app's effects are claimed in the order they were made.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Up to `limit` effects that are due, claimed for `claim`.
    async fn claim_effects(
        &self,
        claim: Duration,
        limit: usize,
    ) -> Result<Vec<PendingEffect>, CoreError>;

    /// Drops an effect that was carried out.
    async fn forget_effect(&self, effect: &PendingEffect) -> Result<(), CoreError>;
}
