//! Presence `channel_data` and the member list sent on `subscription_succeeded`.

use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

/// Pusher's documented cap on a presence user id.
pub const MAX_USER_ID_LEN: usize = 128;

/// A presence member as the client announced it. `user_info` is raw JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub user_info: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelDataError {
    #[error("channel_data is required for presence channels")]
    Missing,
    #[error("channel_data is not a JSON object: {0}")]
    InvalidJson(String),
    #[error("channel_data must have a string or number user_id")]
    MissingUserId,
    #[error("user_id is longer than {MAX_USER_ID_LEN} characters")]
    UserIdTooLong,
    #[error("user_info is larger than {max} bytes")]
    UserInfoTooLarge { max: usize },
}

#[derive(Deserialize)]
struct ChannelData<'a> {
    #[serde(borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow)]
    user_info: Option<&'a RawValue>,
}

/// Parses presence `channel_data`; numeric user ids become their decimal string.
pub fn parse_channel_data(data: &str, max_info_bytes: usize) -> Result<Member, ChannelDataError> {
    if !crate::frame::is_object(data) {
        return Err(ChannelDataError::InvalidJson("expected an object".into()));
    }
    let parsed: ChannelData<'_> =
        serde_json::from_str(data).map_err(|e| ChannelDataError::InvalidJson(e.to_string()))?;
    let raw_id = parsed.user_id.ok_or(ChannelDataError::MissingUserId)?.get();
    let user_id = match serde_json::from_str::<serde_json::Value>(raw_id) {
        Ok(serde_json::Value::String(s)) if !s.is_empty() => s,
        Ok(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(ChannelDataError::MissingUserId),
    };
    if user_id.chars().count() > MAX_USER_ID_LEN {
        return Err(ChannelDataError::UserIdTooLong);
    }
    let user_info = parsed.user_info.map_or("null", RawValue::get).to_owned();
    if user_info.len() > max_info_bytes {
        return Err(ChannelDataError::UserInfoTooLarge {
            max: max_info_bytes,
        });
    }
    Ok(Member { user_id, user_info })
}

/// The `data` string of a presence `subscription_succeeded`:
/// `{"presence":{"ids":[…],"hash":{id:info},"count":N}}`.
pub fn subscription_data<'a>(members: impl IntoIterator<Item = &'a Member>) -> String {
    let mut ids = Vec::new();
    let mut hash = String::from("{");
    for m in members {
        if !ids.is_empty() {
            hash.push(',');
        }
        hash.push_str(&json_string(&m.user_id));
        hash.push(':');
        hash.push_str(&m.user_info);
        ids.push(json_string(&m.user_id));
    }
    hash.push('}');
    format!(
        r#"{{"presence":{{"ids":[{}],"hash":{hash},"count":{}}}}}"#,
        ids.join(","),
        ids.len()
    )
}

/// The `data` string of `pusher_internal:member_added`.
pub fn member_added_data(member: &Member) -> String {
    format!(
        r#"{{"user_id":{},"user_info":{}}}"#,
        json_string(&member.user_id),
        member.user_info
    )
}

/// The `data` string of `pusher_internal:member_removed`.
pub fn member_removed_data(user_id: &str) -> String {
    format!(r#"{{"user_id":{}}}"#, json_string(user_id))
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| unreachable!("strings serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_and_string_user_ids() {
        let m = parse_channel_data(r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#, 1024)
            .expect("valid");
        assert_eq!(m.user_id, "10");
        assert_eq!(m.user_info, r#"{"name":"Mr. Pusher"}"#);
        let m = parse_channel_data(r#"{"user_id":"u1"}"#, 1024).expect("valid");
        assert_eq!((m.user_id.as_str(), m.user_info.as_str()), ("u1", "null"));
    }

    #[test]
    fn invalid_channel_data_is_refused() {
        assert_eq!(
            parse_channel_data(r#"{"user_info":{}}"#, 1024),
            Err(ChannelDataError::MissingUserId)
        );
        assert_eq!(
            parse_channel_data(r#"{"user_id":""}"#, 1024),
            Err(ChannelDataError::MissingUserId)
        );
        assert!(matches!(
            parse_channel_data("nope", 1024),
            Err(ChannelDataError::InvalidJson(_))
        ));
        let long = format!(r#"{{"user_id":"{}"}}"#, "x".repeat(129));
        assert_eq!(
            parse_channel_data(&long, 1024),
            Err(ChannelDataError::UserIdTooLong)
        );
        assert_eq!(
            parse_channel_data(r#"{"user_id":"a","user_info":"0123456789"}"#, 8),
            Err(ChannelDataError::UserInfoTooLarge { max: 8 })
        );
    }

    #[test]
    fn member_list_encoding() {
        let members = [
            Member {
                user_id: "1".into(),
                user_info: r#"{"n":"a"}"#.into(),
            },
            Member {
                user_id: "2".into(),
                user_info: "null".into(),
            },
        ];
        let data = subscription_data(&members);
        assert_eq!(
            data,
            r#"{"presence":{"ids":["1","2"],"hash":{"1":{"n":"a"},"2":null},"count":2}}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&data).expect("json");
        assert_eq!(parsed["presence"]["count"], 2);
        assert_eq!(
            subscription_data(&[]),
            r#"{"presence":{"ids":[],"hash":{},"count":0}}"#
        );
        assert_eq!(
            member_added_data(&members[0]),
            r#"{"user_id":"1","user_info":{"n":"a"}}"#
        );
        assert_eq!(member_removed_data("2"), r#"{"user_id":"2"}"#);
    }
}
