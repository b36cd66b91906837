//! `pusher:signin` user data.

use serde::Deserialize;
use thiserror::Error;

/// Pusher's cap on the number of watched user ids.
pub const MAX_WATCHLIST: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    pub id: String,
    pub watchlist: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserDataError {
    #[error("user_data is not a JSON object: {0}")]
    InvalidJson(String),
    #[error("user_data must have a non-empty string id")]
    MissingId,
    #[error("watchlist has more than {MAX_WATCHLIST} user ids")]
    WatchlistTooLarge,
}

#[derive(Deserialize)]
struct Raw {
    id: Option<serde_json::Value>,
    #[serde(default)]
    watchlist: Vec<String>,
}

pub fn parse_user_data(data: &str) -> Result<UserData, UserDataError> {
    if !crate::frame::is_object(data) {
        return Err(UserDataError::InvalidJson("expected an object".into()));
    }
    let raw: Raw =
        serde_json::from_str(data).map_err(|e| UserDataError::InvalidJson(e.to_string()))?;
    let id = match raw.id {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(UserDataError::MissingId),
    };
    if raw.watchlist.len() > MAX_WATCHLIST {
        return Err(UserDataError::WatchlistTooLarge);
    }
    Ok(UserData {
        id,
        watchlist: raw.watchlist,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_id_and_watchlist() {
        let u = parse_user_data(r#"{"id":"12345","user_info":{"a":1},"watchlist":["1","2"]}"#)
            .expect("valid");
        assert_eq!(u.id, "12345");
        assert_eq!(u.watchlist, vec!["1".to_string(), "2".to_string()]);
    }

    #[test]
    fn refuses_missing_id_and_long_watchlists() {
        assert_eq!(
            parse_user_data(r#"{"name":"x"}"#),
            Err(UserDataError::MissingId)
        );
        let ids: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        let data = serde_json::json!({"id": "1", "watchlist": ids}).to_string();
        assert_eq!(
            parse_user_data(&data),
            Err(UserDataError::WatchlistTooLarge)
        );
    }
}
