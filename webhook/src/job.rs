use serde::{Deserialize, Serialize};

/// One webhook event for one app, as Pusher names and shapes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum WebhookEvent {
    ChannelOccupied {
        channel: String,
    },
    ChannelVacated {
        channel: String,
    },
    MemberAdded {
        channel: String,
        user_id: String,
    },
    MemberRemoved {
        channel: String,
        user_id: String,
    },
    ClientEvent {
        channel: String,
        event: String,
        data: String,
        socket_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    CacheMiss {
        channel: String,
    },
    SubscriptionCount {
        channel: String,
        subscription_count: u64,
    },
}

impl WebhookEvent {
    /// The event's Pusher name, used by per-webhook event-type filters.
    pub fn name(&self) -> &'static str {
        match self {
            WebhookEvent::ChannelOccupied { .. } => "channel_occupied",
            WebhookEvent::ChannelVacated { .. } => "channel_vacated",
            WebhookEvent::MemberAdded { .. } => "member_added",
            WebhookEvent::MemberRemoved { .. } => "member_removed",
            WebhookEvent::ClientEvent { .. } => "client_event",
            WebhookEvent::CacheMiss { .. } => "cache_miss",
            WebhookEvent::SubscriptionCount { .. } => "subscription_count",
        }
    }

    pub fn channel(&self) -> &str {
        match self {
            WebhookEvent::ChannelOccupied { channel }
            | WebhookEvent::ChannelVacated { channel }
            | WebhookEvent::MemberAdded { channel, .. }
            | WebhookEvent::MemberRemoved { channel, .. }
            | WebhookEvent::ClientEvent { channel, .. }
            | WebhookEvent::CacheMiss { channel }
            | WebhookEvent::SubscriptionCount { channel, .. } => channel,
        }
    }
}

/// A queued webhook: which app, what happened, and when (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookJob {
    pub app_id: String,
    pub event: WebhookEvent,
    pub time_ms: u64,
    /// Deliver only to the app's webhook with this URL: set when a dead letter is replayed,
    /// so webhooks that already took the event do not get it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_url: Option<String>,
    /// A stable id of the event, sent with it (`"id"` in the body's event object), when the
    /// event may be sent more than once: channel-core carries out each change's effects at
    /// least once, and a receiver drops a repeat by this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_pusher_names_them() {
        let e = WebhookEvent::MemberAdded {
            channel: "presence-a".into(),
            user_id: "1".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"name":"member_added","channel":"presence-a","user_id":"1"}"#
        );
        assert_eq!(e.name(), "member_added");
    }
}
