//! The WebSocket URL: `/app/{key}?protocol=7&client=js&version=8.6.0`.

use crate::rest::Query;
use crate::CloseCode;

/// Oldest and newest protocol versions served; 5 and 6 differ from 7 only in features the
/// server does not need to treat differently.
pub const MIN_PROTOCOL: u32 = 5;
pub const MAX_PROTOCOL: u32 = 7;

/// Checks the path and protocol version; returns the app key or the close code to send.
pub fn app_key<'a>(path: &'a str, query: &str) -> Result<&'a str, CloseCode> {
    let key = path
        .strip_prefix("/app/")
        .map(|k| k.trim_end_matches('/'))
        .filter(|k| !k.is_empty() && !k.contains('/'))
        .ok_or(CloseCode::PathNotFound)?;
    let query = Query::parse(query);
    let version = query.get("protocol").ok_or(CloseCode::NoProtocolVersion)?;
    let version: u32 = version.parse().map_err(|_| CloseCode::InvalidVersion)?;
    if !(MIN_PROTOCOL..=MAX_PROTOCOL).contains(&version) {
        return Err(CloseCode::UnsupportedProtocol);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_pusher_js_urls() {
        assert_eq!(
            app_key(
                "/app/app-key",
                "protocol=7&client=js&version=8.6.0&flash=false"
            ),
            Ok("app-key")
        );
        assert_eq!(app_key("/app/k/", "protocol=5"), Ok("k"));
    }

    #[test]
    fn each_problem_has_its_code() {
        assert_eq!(
            app_key("/apps/k", "protocol=7"),
            Err(CloseCode::PathNotFound)
        );
        assert_eq!(app_key("/app/", "protocol=7"), Err(CloseCode::PathNotFound));
        assert_eq!(
            app_key("/app/k/x", "protocol=7"),
            Err(CloseCode::PathNotFound)
        );
        assert_eq!(
            app_key("/app/k", "client=js"),
            Err(CloseCode::NoProtocolVersion)
        );
        assert_eq!(
            app_key("/app/k", "protocol=seven"),
            Err(CloseCode::InvalidVersion)
        );
        assert_eq!(
            app_key("/app/k", "protocol=4"),
            Err(CloseCode::UnsupportedProtocol)
        );
        assert_eq!(
            app_key("/app/k", "protocol=8"),
            Err(CloseCode::UnsupportedProtocol)
        );
    }
}
