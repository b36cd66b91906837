//! `POST /events` and `POST /batch_events`: validate, serialize each channel's frame once,
//! publish it on the channel's subject.

use std::time::{SystemTime, UNIX_EPOCH};

use channel_core::Quota;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use switchyard_apps::App;
use switchyard_bus::{channel_subject, Envelope};
use switchyard_protocol::{frame, socket_id, Channel, ChannelKind};
use switchyard_telemetry::metrics;

use crate::error::ApiError;
use crate::Api;

#[derive(Deserialize)]
struct EventBody {
    name: Option<String>,
    data: Option<Box<RawValue>>,
    channel: Option<String>,
    channels: Option<Vec<String>>,
    socket_id: Option<String>,
    info: Option<String>,
}

#[derive(Deserialize)]
struct BatchBody {
    batch: Vec<EventBody>,
}

/// A trigger that passed every check.
struct Trigger {
    name: String,
    data: String,
    channels: Vec<Channel>,
    socket_id: Option<String>,
    info: Info,
}

#[derive(Default, Clone, Copy)]
struct Info {
    user_count: bool,
    subscription_count: bool,
}

impl Info {
    fn parse(info: Option<&str>) -> Info {
        let mut out = Info::default();
        for part in info.unwrap_or("").split(',').map(str::trim) {
            match part {
                "user_count" => out.user_count = true,
                "subscription_count" => out.subscription_count = true,
                _ => {}
            }
        }
        out
    }

    fn any(&self) -> bool {
        self.user_count || self.subscription_count
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::InvalidJson)
}

fn validate(app: &App, body: EventBody, batch: bool) -> Result<Trigger, ApiError> {
    let name = body
        .name
        .ok_or_else(|| ApiError::InvalidRequest("missing event name".into()))?;
    if name.is_empty() || name.len() > app.max_event_name_length {
        return Err(ApiError::EventNameLength {
            max: app.max_event_name_length,
        });
    }
    if name.starts_with("pusher:") || name.starts_with("pusher_internal:") {
        return Err(ApiError::InvalidRequest(
            "event names starting with pusher: are reserved".into(),
        ));
    }
    let data = body
        .data
        .ok_or_else(|| ApiError::InvalidRequest("missing data".into()))?;
    // SDKs send data as a string; other JSON is relayed as its text, as Pusher does.
    let data = serde_json::from_str::<String>(data.get()).unwrap_or_else(|_| data.get().to_owned());
    if data.len() > app.max_payload_bytes {
        return Err(ApiError::PayloadTooLarge {
            size: data.len(),
            max: app.max_payload_bytes,
        });
    }
    let names = match (body.channel, body.channels) {
        (Some(c), None) => vec![c],
        (None, Some(cs)) if !batch => cs,
        (None, Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "batch events take one channel each".into(),
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "give channel or channels, not both".into(),
            ))
        }
        (None, None) => {
            return Err(ApiError::InvalidRequest(
                "missing channel or channels".into(),
            ))
        }
    };
    if names.is_empty() || names.len() > app.max_channels_per_trigger {
        return Err(ApiError::ChannelCount {
            max: app.max_channels_per_trigger,
        });
    }
    let channels = names
        .iter()
        .map(|n| {
            Channel::parse(n, app.max_channel_name_length).map_err(|source| {
                ApiError::InvalidChannelName {
                    name: n.clone(),
                    source,
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let encrypted = channels
        .iter()
        .any(|c| c.kind() == ChannelKind::PrivateEncrypted);
    if encrypted && channels.len() > 1 {
        return Err(ApiError::InvalidRequest(
            "encrypted channels cannot be triggered together with other channels".into(),
        ));
    }
    if let Some(id) = &body.socket_id {
        if !socket_id::is_valid(id) {
            return Err(ApiError::InvalidRequest(format!(
                "invalid socket_id {id:?}"
            )));
        }
    }
    Ok(Trigger {
        name,
        data,
        channels,
        socket_id: body.socket_id,
        info: Info::parse(body.info.as_deref()),
    })
}

/// Now in microseconds since the Unix epoch: when a trigger was accepted, carried to the edges
/// for the fan-out latency histogram.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Api {
    /// `accepted_us` is when the request passed authentication.
    async fn publish(&self, app: &App, t: &Trigger, accepted_us: u64) -> Result<(), ApiError> {
        for channel in &t.channels {
            let out = frame::channel_event(&t.name, channel.name(), &t.data, None);
            if channel.is_cache() {
                self.deps
                    .core
                    .cache_put(&app.id, channel.name(), out.clone())
                    .await?;
            }
            let envelope = Envelope::frame(out, t.socket_id.clone()).accepted_at(accepted_us);
            self.deps
                .bus
                .publish(&channel_subject(&app.id, channel.name()), envelope)
                .await?;
        }
        let m = metrics::app(&app.id);
        m.api_events.inc();
        m.api_bytes.add(t.data.len() as u64);
        Ok(())
    }

    async fn info(&self, app: &App, t: &Trigger) -> Result<Map<String, Value>, ApiError> {
        let mut out = Map::new();
        for channel in &t.channels {
            let counts = self.deps.core.channel(&app.id, channel.name()).await?;
            let mut entry = Map::new();
            if t.info.user_count && channel.kind() == ChannelKind::Presence {
                entry.insert("user_count".into(), counts.user_count.into());
            }
            if t.info.subscription_count {
                entry.insert(
                    "subscription_count".into(),
                    counts.subscription_count.into(),
                );
            }
            out.insert(channel.name().to_owned(), Value::Object(entry));
        }
        Ok(out)
    }

    pub(crate) async fn events(&self, app: &App, body: &[u8]) -> Result<Value, ApiError> {
        let accepted = now_us();
        let trigger = validate(app, parse_json(body)?, false)?;
        self.take_quota(app, Quota::BackendEvents, 1).await?;
        self.publish(app, &trigger, accepted).await?;
        if !trigger.info.any() {
            return Ok(Value::Object(Map::new()));
        }
        let channels = self.info(app, &trigger).await?;
        Ok(serde_json::json!({ "channels": channels }))
    }

    pub(crate) async fn batch_events(&self, app: &App, body: &[u8]) -> Result<Value, ApiError> {
        let accepted = now_us();
        let body: BatchBody = parse_json(body)?;
        if body.batch.is_empty() || body.batch.len() > app.max_batch_size {
            return Err(ApiError::BatchSize {
                max: app.max_batch_size,
            });
        }
        // Validate the whole batch before publishing any of it.
        let triggers = body
            .batch
            .into_iter()
            .map(|e| validate(app, e, true))
            .collect::<Result<Vec<_>, _>>()?;
        self.take_quota(app, Quota::BackendEvents, triggers.len() as u64)
            .await?;
        for t in &triggers {
            self.publish(app, t, accepted).await?;
        }
        if !triggers.iter().any(|t| t.info.any()) {
            return Ok(Value::Object(Map::new()));
        }
        let mut batch = Vec::with_capacity(triggers.len());
        for t in &triggers {
            let info = self.info(app, t).await?;
            // One channel per batch item: its attributes sit directly in the item.
            batch.push(
                info.into_iter()
                    .next()
                    .map_or(Value::Object(Map::new()), |(_, v)| v),
            );
        }
        Ok(serde_json::json!({ "batch": batch }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> EventBody {
        serde_json::from_str(json).expect("json")
    }

    fn app() -> App {
        App::new("1", "k", "s")
    }

    #[test]
    fn accepts_a_normal_trigger() {
        let t = validate(
            &app(),
            body(r#"{"name":"e","data":"{\"a\":1}","channels":["a","b"],"socket_id":"1.2"}"#),
            false,
        )
        .expect("valid");
        assert_eq!(t.data, r#"{"a":1}"#);
        assert_eq!(t.channels.len(), 2);
    }

    #[test]
    fn limits_are_enforced() {
        let big = format!(
            r#"{{"name":"e","data":"{}","channel":"a"}}"#,
            "x".repeat(10 * 1024 + 1)
        );
        assert!(matches!(
            validate(&app(), body(&big), false),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        let chans: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
        let many = serde_json::json!({"name":"e","data":"x","channels":chans}).to_string();
        assert!(matches!(
            validate(&app(), body(&many), false),
            Err(ApiError::ChannelCount { max: 100 })
        ));
        let long_name = format!(
            r#"{{"name":"{}","data":"x","channel":"a"}}"#,
            "e".repeat(201)
        );
        assert!(matches!(
            validate(&app(), body(&long_name), false),
            Err(ApiError::EventNameLength { max: 200 })
        ));
    }

    #[test]
    fn encrypted_channels_are_never_mixed() {
        let mixed = r#"{"name":"e","data":"x","channels":["private-encrypted-a","b"]}"#;
        assert!(matches!(
            validate(&app(), body(mixed), false),
            Err(ApiError::InvalidRequest(_))
        ));
        let alone = r#"{"name":"e","data":"x","channels":["private-encrypted-a"]}"#;
        assert!(validate(&app(), body(alone), false).is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        for bad in [
            r#"{"data":"x","channel":"a"}"#,
            r#"{"name":"e","channel":"a"}"#,
            r#"{"name":"e","data":"x"}"#,
            r#"{"name":"e","data":"x","channel":"a","socket_id":"nope"}"#,
            r#"{"name":"pusher:x","data":"x","channel":"a"}"#,
        ] {
            assert!(
                matches!(
                    validate(&app(), body(bad), false),
                    Err(ApiError::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
        let bad_channel = r#"{"name":"e","data":"x","channel":"a b"}"#;
        assert!(matches!(
            validate(&app(), body(bad_channel), false),
            Err(ApiError::InvalidChannelName { name, .. }) if name == "a b"
        ));
    }
}
