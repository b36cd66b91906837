use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A secret that never prints: `Debug` and `Display` show `***`.
///
/// It does serialize as its text, because the app stores and the admin API must carry it;
/// whatever serializes an app for display leaves it out (see `changes::view`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret's text, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One application, with the defaults Pusher uses for every setting left out.
///
/// Serializing writes every field, defaults included, so that what a store saved keeps its
/// meaning if a default changes later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub id: String,
    pub key: String,
    pub secret: Secret,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub enable_client_messages: bool,
    /// Concurrent connections allowed; 0 means unlimited.
    #[serde(default)]
    pub max_connections: u64,
    #[serde(default)]
    pub enable_subscription_count: bool,
    /// When set, a connection must sign in (or subscribe to an authorized channel) within
    /// `authorization_timeout_secs` or it is closed with 4009.
    #[serde(default)]
    pub require_authorized_connections: bool,
    #[serde(default = "default_authorization_timeout")]
    pub authorization_timeout_secs: u64,
    /// Origins allowed to connect (`https://example.com`, or `*` for any); empty allows all.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    // Limits; the defaults are Pusher's documented ones.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
    #[serde(default = "default_max_channels")]
    pub max_channels_per_trigger: usize,
    #[serde(default = "default_max_batch")]
    pub max_batch_size: usize,
    #[serde(default = "default_max_channel_name")]
    pub max_channel_name_length: usize,
    #[serde(default = "default_max_event_name")]
    pub max_event_name_length: usize,
    #[serde(default = "default_max_members")]
    pub max_presence_members: usize,
    #[serde(default = "default_max_user_info")]
    pub max_presence_user_info_bytes: usize,
    #[serde(default = "default_client_event_rate")]
    pub client_events_per_second: u32,
    /// Events the HTTP API accepts per second for this app, across all API instances (each
    /// event of a batch counts); beyond it, 429. 0: no limit.
    #[serde(default)]
    pub max_backend_events_per_second: u32,
    /// Channel, user and presence queries per second across all API instances; beyond it,
    /// 429. 0: no limit.
    #[serde(default)]
    pub max_read_requests_per_second: u32,
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    /// When set, the webhook worker sends the app's events that it pulls together (and that
    /// match the same webhook) in one POST with several `events`, as Pusher may; receivers
    /// must then handle more than one event per body. Off: one event per POST.
    #[serde(default)]
    pub webhook_batching: bool,
}

/// Where an app's webhooks go and which of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// Event names to send (`channel_occupied`, …); empty sends every event.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub filter: WebhookFilter,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_suffix: Option<String>,
    /// A glob the whole channel name must match; `*` matches any run of characters (none
    /// included), every other character only itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_pattern: Option<String>,
}

impl App {
    /// A new app with every setting at its default.
    pub fn new(id: &str, key: &str, secret: &str) -> App {
        App {
            id: id.to_owned(),
            key: key.to_owned(),
            secret: Secret::new(secret),
            enabled: true,
            enable_client_messages: false,
            max_connections: 0,
            enable_subscription_count: false,
            require_authorized_connections: false,
            authorization_timeout_secs: default_authorization_timeout(),
            allowed_origins: Vec::new(),
            max_payload_bytes: default_max_payload(),
            max_channels_per_trigger: default_max_channels(),
            max_batch_size: default_max_batch(),
            max_channel_name_length: default_max_channel_name(),
            max_event_name_length: default_max_event_name(),
            max_presence_members: default_max_members(),
            max_presence_user_info_bytes: default_max_user_info(),
            client_events_per_second: default_client_event_rate(),
            max_backend_events_per_second: 0,
            max_read_requests_per_second: 0,
            webhooks: Vec::new(),
            webhook_batching: false,
        }
    }

    /// Whether a browser `Origin` header may connect.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        if self.allowed_origins.is_empty() {
            return true;
        }
        let Some(origin) = origin else {
            // Non-browser clients send no Origin; the allow-list guards browsers only.
            return true;
        };
        self.allowed_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }
}

fn yes() -> bool {
    true
}
fn default_authorization_timeout() -> u64 {
    30
}
fn default_max_payload() -> usize {
    10 * 1024
}
fn default_max_channels() -> usize {
    100
}
fn default_max_batch() -> usize {
    10
}
fn default_max_channel_name() -> usize {
    164
}
fn default_max_event_name() -> usize {
    200
}
fn default_max_members() -> usize {
    100
}
fn default_max_user_info() -> usize {
    1024
}
fn default_client_event_rate() -> u32 {
    10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let app = App::new("1", "k", "very-secret");
        let printed = format!("{app:?}");
        assert!(!printed.contains("very-secret"), "{printed}");
        assert_eq!(app.secret.expose(), "very-secret");
    }

    #[test]
    fn json_round_trip_is_lossless() {
        let mut app = App::new("1", "k", "very-secret");
        app.enabled = false;
        app.enable_client_messages = true;
        app.max_connections = 7;
        app.enable_subscription_count = true;
        app.require_authorized_connections = true;
        app.authorization_timeout_secs = 3;
        app.allowed_origins = vec!["https://a.example".into()];
        app.max_payload_bytes = 1;
        app.max_channels_per_trigger = 2;
        app.max_batch_size = 3;
        app.max_channel_name_length = 4;
        app.max_event_name_length = 5;
        app.max_presence_members = 6;
        app.max_presence_user_info_bytes = 7;
        app.client_events_per_second = 8;
        app.webhook_batching = true;
        app.webhooks = vec![Webhook {
            url: "https://hooks.example/a".into(),
            event_types: vec!["channel_occupied".into()],
            filter: WebhookFilter {
                channel_prefix: Some("private-".into()),
                channel_suffix: None,
                channel_pattern: Some("*-room".into()),
            },
            headers: BTreeMap::from([("X-Token".into(), "t".into())]),
        }];

        let json = serde_json::to_string(&app).expect("to string");
        assert!(json.contains(r#""secret":"very-secret""#), "{json}");
        let back: App = serde_json::from_str(&json).expect("from str");
        assert_eq!(back, app);
    }

    #[test]
    fn origin_allow_list() {
        let mut app = App::new("1", "k", "s");
        assert!(app.allows_origin(Some("https://a.example")));
        app.allowed_origins = vec!["https://a.example".into()];
        assert!(app.allows_origin(Some("https://a.example")));
        assert!(!app.allows_origin(Some("https://b.example")));
        assert!(app.allows_origin(None));
    }
}
