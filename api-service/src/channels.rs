//! `GET /channels`, `GET /channels/{name}`, `GET /channels/{name}/users`.

use serde_json::{Map, Value};
use switchyard_apps::App;
use switchyard_protocol::rest::Query;
use switchyard_protocol::{Channel, ChannelKind};

use crate::error::ApiError;
use crate::Api;

fn info_fields(query: &Query) -> Vec<String> {
    query
        .get("info")
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn channel(app: &App, name: &str) -> Result<Channel, ApiError> {
    Channel::parse(name, app.max_channel_name_length).map_err(|source| {
        ApiError::InvalidChannelName {
            name: name.to_owned(),
            source,
        }
    })
}

impl Api {
    pub(crate) async fn channels(&self, app: &App, query: &Query) -> Result<Value, ApiError> {
        let prefix = query.get("filter_by_prefix").unwrap_or("");
        let info = info_fields(query);
        let user_count = info.iter().any(|f| f == "user_count");
        if user_count && !prefix.starts_with("presence-") {
            return Err(ApiError::InvalidRequest(
                "info=user_count requires filter_by_prefix=presence-".into(),
            ));
        }
        let mut channels = Map::new();
        for (name, counts) in self.deps.core.channels(&app.id, prefix).await? {
            let mut entry = Map::new();
            if user_count {
                entry.insert("user_count".into(), counts.user_count.into());
            }
            if info.iter().any(|f| f == "subscription_count") {
                entry.insert(
                    "subscription_count".into(),
                    counts.subscription_count.into(),
                );
            }
            channels.insert(name, Value::Object(entry));
        }
        Ok(serde_json::json!({ "channels": channels }))
    }

    pub(crate) async fn channel(
        &self,
        app: &App,
        name: &str,
        query: &Query,
    ) -> Result<Value, ApiError> {
        let ch = channel(app, name)?;
        let info = info_fields(query);
        let presence = ch.kind() == ChannelKind::Presence;
        if info.iter().any(|f| f == "user_count") && !presence {
            return Err(ApiError::InvalidRequest(
                "user_count is only available for presence channels".into(),
            ));
        }
        let counts = self.deps.core.channel(&app.id, name).await?;
        let mut out = Map::new();
        out.insert("occupied".into(), (counts.subscription_count > 0).into());
        for field in &info {
            match field.as_str() {
                "user_count" => {
                    out.insert("user_count".into(), counts.user_count.into());
                }
                "subscription_count" => {
                    out.insert(
                        "subscription_count".into(),
                        counts.subscription_count.into(),
                    );
                }
                "cache" if ch.is_cache() => {
                    if let Some(cached) = self.deps.core.cache_peek(&app.id, name).await? {
                        let data = frame_data(&cached.frame);
                        out.insert(
                            "cache".into(),
                            serde_json::json!({"data": data, "ttl": cached.ttl_secs}),
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(Value::Object(out))
    }

    pub(crate) async fn users(&self, app: &App, name: &str) -> Result<Value, ApiError> {
        if channel(app, name)?.kind() != ChannelKind::Presence {
            return Err(ApiError::InvalidRequest(
                "users are only available for presence channels".into(),
            ));
        }
        let users: Vec<Value> = self
            .deps
            .core
            .members(&app.id, name)
            .await?
            .into_iter()
            .map(|m| serde_json::json!({ "id": m.user_id }))
            .collect();
        Ok(serde_json::json!({ "users": users }))
    }
}

/// The `data` string inside a stored frame.
fn frame_data(stored: &str) -> Value {
    serde_json::from_str::<Value>(stored)
        .ok()
        .and_then(|v| v.get("data").cloned())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_protocol::frame;

    #[test]
    fn data_is_read_back_from_a_stored_frame() {
        let stored = frame::channel_event("e", "cache-a", r#"{"x":1}"#, None);
        assert_eq!(frame_data(&stored), Value::String(r#"{"x":1}"#.into()));
    }
}
