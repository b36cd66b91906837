//! Client → server frames (parsed) and server → client frames (encoded once).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

/// A frame sent by a client, with the fields each event needs already extracted.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame {
    Ping,
    Pong,
    Subscribe {
        channel: String,
        auth: Option<String>,
        /// The exact text the presence signature covers.
        channel_data: Option<String>,
    },
    Unsubscribe {
        channel: String,
    },
    Signin {
        auth: String,
        /// The exact text the sign-in signature covers.
        user_data: String,
    },
    /// A `client-*` event. `data` is the raw JSON value as received, relayed untouched.
    ClientEvent {
        event: String,
        channel: String,
        data: RawJson,
    },
    Unknown {
        event: String,
    },
}

/// Raw JSON text kept exactly as received, compared by its text.
#[derive(Debug)]
pub struct RawJson(pub Box<RawValue>);

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for RawJson {}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("{event} is missing {field}")]
    MissingField {
        event: &'static str,
        field: &'static str,
    },
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    channel: Option<String>,
    data: Option<Box<RawValue>>,
}

#[derive(Deserialize, Default)]
struct SubscribeData {
    channel: Option<String>,
    auth: Option<String>,
    channel_data: Option<Box<RawValue>>,
}

#[derive(Deserialize, Default)]
struct SigninData {
    auth: Option<String>,
    user_data: Option<Box<RawValue>>,
}

impl ClientFrame {
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        if !is_object(text) {
            return Err(FrameError::InvalidJson(
                "a frame must be a JSON object".into(),
            ));
        }
        let raw: RawFrame<'_> =
            serde_json::from_str(text).map_err(|e| FrameError::InvalidJson(e.to_string()))?;
        let event = raw.event.as_ref();
        Ok(match event {
            "pusher:ping" => ClientFrame::Ping,
            "pusher:pong" => ClientFrame::Pong,
            "pusher:subscribe" => {
                let d: SubscribeData = data_object(raw.data.as_deref())?;
                ClientFrame::Subscribe {
                    channel: d.channel.ok_or(FrameError::MissingField {
                        event: "pusher:subscribe",
                        field: "channel",
                    })?,
                    auth: d.auth,
                    channel_data: d.channel_data.as_deref().map(string_or_json),
                }
            }
            "pusher:unsubscribe" => {
                let d: SubscribeData = data_object(raw.data.as_deref())?;
                ClientFrame::Unsubscribe {
                    channel: d.channel.ok_or(FrameError::MissingField {
                        event: "pusher:unsubscribe",
                        field: "channel",
                    })?,
                }
            }
            "pusher:signin" => {
                let d: SigninData = data_object(raw.data.as_deref())?;
                let missing = |field| FrameError::MissingField {
                    event: "pusher:signin",
                    field,
                };
                ClientFrame::Signin {
                    auth: d.auth.ok_or(missing("auth"))?,
                    user_data: d
                        .user_data
                        .as_deref()
                        .map(string_or_json)
                        .ok_or(missing("user_data"))?,
                }
            }
            e if e.starts_with("client-") => ClientFrame::ClientEvent {
                event: e.to_owned(),
                channel: raw.channel.ok_or(FrameError::MissingField {
                    event: "client event",
                    field: "channel",
                })?,
                data: RawJson(raw.data.unwrap_or_else(null_value)),
            },
            other => ClientFrame::Unknown {
                event: other.to_owned(),
            },
        })
    }
}

/// `data` may arrive as an object or as a JSON-encoded string holding the object.
fn data_object<T: for<'de> Deserialize<'de> + Default>(
    data: Option<&RawValue>,
) -> Result<T, FrameError> {
    let Some(data) = data else {
        return Ok(T::default());
    };
    let text = data.get();
    let not_object = || FrameError::InvalidJson("data must be a JSON object".into());
    let parsed = if text.starts_with('"') {
        let inner: String =
            serde_json::from_str(text).map_err(|e| FrameError::InvalidJson(e.to_string()))?;
        if !is_object(&inner) {
            return Err(not_object());
        }
        serde_json::from_str(&inner)
    } else {
        if !is_object(text) {
            return Err(not_object());
        }
        serde_json::from_str(text)
    };
    parsed.map_err(|e| FrameError::InvalidJson(e.to_string()))
}

/// Whether `text` is a JSON object (or nothing else could parse). serde's derived
/// `Deserialize` for a struct also takes an array, field by field; the protocol says objects.
pub(crate) fn is_object(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// A JSON string's contents, or the raw text of any other JSON value.
fn string_or_json(value: &RawValue) -> String {
    serde_json::from_str::<String>(value.get()).unwrap_or_else(|_| value.get().to_owned())
}

fn null_value() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("null is JSON"))
}

#[derive(Serialize)]
struct EventOut<'a, D: Serialize + ?Sized> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    data: &'a D,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

fn encode<D: Serialize + ?Sized>(
    event: &str,
    channel: Option<&str>,
    data: &D,
    user_id: Option<&str>,
) -> String {
    let out = EventOut {
        event,
        channel,
        data,
        user_id,
    };
    // Serializing borrowed strings and raw values into a String cannot fail.
    serde_json::to_string(&out).unwrap_or_else(|_| unreachable!("frame serialization"))
}

/// A channel event whose `data` is a string (as triggered through the HTTP API).
pub fn channel_event(event: &str, channel: &str, data: &str, user_id: Option<&str>) -> String {
    encode(event, Some(channel), data, user_id)
}

/// An event with no channel whose `data` is a JSON-encoded string.
pub fn connection_event(event: &str, data: &str) -> String {
    encode(event, None, data, None)
}

pub fn connection_established(socket_id: &str, activity_timeout_secs: u64) -> String {
    let data =
        serde_json::json!({"socket_id": socket_id, "activity_timeout": activity_timeout_secs});
    connection_event("pusher:connection_established", &data.to_string())
}

pub fn pong() -> String {
    connection_event("pusher:pong", "{}")
}

pub fn ping() -> String {
    connection_event("pusher:ping", "{}")
}

/// `pusher:error`, whose `data` is an object (not a string), as Pusher sends it.
pub fn error(code: u16, message: &str) -> String {
    let data = serde_json::json!({"code": code, "message": message});
    encode("pusher:error", None, &data, None)
}

pub fn subscription_error(channel: &str, error_type: &str, message: &str, status: u16) -> String {
    let data = serde_json::json!({"type": error_type, "error": message, "status": status});
    encode("pusher:subscription_error", Some(channel), &data, None)
}

pub fn subscription_succeeded(channel: &str, data: &str) -> String {
    channel_event(
        "pusher_internal:subscription_succeeded",
        channel,
        data,
        None,
    )
}

pub fn signin_success(user_data: &str) -> String {
    let data = serde_json::json!({"user_data": user_data});
    connection_event("pusher:signin_success", &data.to_string())
}

pub fn cache_miss(channel: &str) -> String {
    channel_event("pusher:cache_miss", channel, "{}", None)
}

pub fn subscription_count(channel: &str, count: u64) -> String {
    let data = serde_json::json!({"subscription_count": count});
    channel_event(
        "pusher_internal:subscription_count",
        channel,
        &data.to_string(),
        None,
    )
}

/// `pusher_internal:watchlist_events` with one event (`online` or `offline`) for `user_ids`.
pub fn watchlist_event(name: &str, user_ids: &[&str]) -> String {
    let data = serde_json::json!({"events": [{"name": name, "user_ids": user_ids}]});
    connection_event("pusher_internal:watchlist_events", &data.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: serde takes arrays for structs; the protocol does not.
    #[test]
    fn arrays_are_not_frames_or_data() {
        for text in [
            r#"["pusher:subscribe",null,{"channel":"private-a","auth":"k:s"}]"#,
            r#"["client-x","private-a",{"a":1}]"#,
            r#"{"event":"pusher:subscribe","data":["private-a"]}"#,
            r#"{"event":"pusher:subscribe","data":"["private-a"]"}"#,
        ] {
            assert!(ClientFrame::parse(text).is_err(), "{text}");
        }
        assert!(crate::presence::parse_channel_data(r#"[42,{"name":"x"}]"#, 1024).is_err());
        assert!(crate::user::parse_user_data(r#"["12345",["1","2"]]"#).is_err());
    }

    #[test]
    fn parses_subscribe_with_object_or_string_data() {
        let obj = r#"{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":1}"}}"#;
        let s =
            r#"{"event":"pusher:subscribe","data":"{\"channel\":\"private-a\",\"auth\":\"k:s\"}"}"#;
        assert_eq!(
            ClientFrame::parse(obj),
            Ok(ClientFrame::Subscribe {
                channel: "presence-a".into(),
                auth: Some("k:s".into()),
                channel_data: Some(r#"{"user_id":1}"#.into()),
            })
        );
        assert_eq!(
            ClientFrame::parse(s),
            Ok(ClientFrame::Subscribe {
                channel: "private-a".into(),
                auth: Some("k:s".into()),
                channel_data: None,
            })
        );
    }

    #[test]
    fn client_events_keep_their_raw_data() {
        let f = ClientFrame::parse(r#"{"event":"client-x","channel":"private-a","data":{"a": 1}}"#);
        match f {
            Ok(ClientFrame::ClientEvent {
                event,
                channel,
                data,
            }) => {
                assert_eq!(event, "client-x");
                assert_eq!(channel, "private-a");
                assert_eq!(data.0.get(), r#"{"a": 1}"#);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        assert!(matches!(
            ClientFrame::parse("{nope"),
            Err(FrameError::InvalidJson(_))
        ));
        assert!(matches!(
            ClientFrame::parse(r#"{"data":{}}"#),
            Err(FrameError::InvalidJson(_))
        ));
        assert_eq!(
            ClientFrame::parse(r#"{"event":"pusher:subscribe","data":{}}"#),
            Err(FrameError::MissingField {
                event: "pusher:subscribe",
                field: "channel"
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"event":"client-x","data":{}}"#),
            Err(FrameError::MissingField {
                event: "client event",
                field: "channel"
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"event":"pusher:bogus"}"#),
            Ok(ClientFrame::Unknown {
                event: "pusher:bogus".into()
            })
        );
    }

    #[test]
    fn server_frames_have_golden_bytes() {
        assert_eq!(
            connection_established("123.456", 120),
            r#"{"event":"pusher:connection_established","data":"{\"activity_timeout\":120,\"socket_id\":\"123.456\"}"}"#
        );
        assert_eq!(pong(), r#"{"event":"pusher:pong","data":"{}"}"#);
        assert_eq!(
            watchlist_event("online", &["1"]),
            r#"{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":\"online\",\"user_ids\":[\"1\"]}]}"}"#
        );
        assert_eq!(
            channel_event("my-event", "ch", r#"{"x":"y"}"#, None),
            r#"{"event":"my-event","channel":"ch","data":"{\"x\":\"y\"}"}"#
        );
        assert_eq!(
            error(4009, "no"),
            r#"{"event":"pusher:error","data":{"code":4009,"message":"no"}}"#
        );
        assert_eq!(
            channel_event("client-x", "presence-a", r#"{"a":1}"#, Some("7")),
            r#"{"event":"client-x","channel":"presence-a","data":"{\"a\":1}","user_id":"7"}"#
        );
    }
}
