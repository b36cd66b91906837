//! Signing of HTTP API requests: `METHOD\npath\nsorted-query`, plus timestamp and body MD5.

use md5::{Digest, Md5};
use thiserror::Error;

use crate::signature;

/// How far `auth_timestamp` may be from the server's clock, as Pusher allows.
pub const TIMESTAMP_WINDOW_SECS: i64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestAuthError {
    #[error("missing {0} parameter")]
    Missing(&'static str),
    #[error("auth_timestamp is not a number")]
    BadTimestamp,
    #[error("auth_timestamp is more than {TIMESTAMP_WINDOW_SECS} seconds from server time")]
    Expired,
    #[error("unsupported auth_version, expected 1.0")]
    BadVersion,
    #[error("body_md5 does not match the request body")]
    BodyMd5Mismatch,
    #[error("invalid signature: expected a HMAC-SHA256 hex digest of {0:?}")]
    BadSignature(String),
}

/// A query string split into decoded `(key, value)` pairs, keys lowercased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Query {
        let pairs = raw
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                (percent_decode(k).to_ascii_lowercase(), percent_decode(v))
            })
            .collect();
        Query { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The signed form: every parameter but `auth_signature`, sorted by key, `k=v&…`.
    pub fn string_to_sign(&self) -> String {
        let mut pairs: Vec<&(String, String)> = self
            .pairs
            .iter()
            .filter(|(k, _)| k != "auth_signature")
            .collect();
        pairs.sort();
        // Built in one buffer: this runs for every API request.
        let len = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut out = String::with_capacity(len);
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }
}

/// Verifies a signed API request. `now_secs` is the server's Unix time.
pub fn verify(
    secret: &str,
    method: &str,
    path: &str,
    query: &Query,
    body: &[u8],
    now_secs: i64,
) -> Result<(), RestAuthError> {
    let timestamp: i64 = query
        .get("auth_timestamp")
        .ok_or(RestAuthError::Missing("auth_timestamp"))?
        .parse()
        .map_err(|_| RestAuthError::BadTimestamp)?;
    // abs_diff: a timestamp near i64::MIN must not overflow the subtraction.
    if now_secs.abs_diff(timestamp) > TIMESTAMP_WINDOW_SECS.unsigned_abs() {
        return Err(RestAuthError::Expired);
    }
    match query.get("auth_version") {
        Some("1.0") | None => {}
        Some(_) => return Err(RestAuthError::BadVersion),
    }
    // The Python SDK sends body_md5 of the empty body even on GET: accept it when it matches.
    match query.get("body_md5") {
        Some(md5) if !md5.eq_ignore_ascii_case(&body_md5(body)) => {
            return Err(RestAuthError::BodyMd5Mismatch)
        }
        None if !body.is_empty() => return Err(RestAuthError::Missing("body_md5")),
        _ => {}
    }
    let signature = query
        .get("auth_signature")
        .ok_or(RestAuthError::Missing("auth_signature"))?;
    let to_sign = string_to_sign(method, path, query);
    if signature::verify(secret, to_sign.as_bytes(), signature) {
        Ok(())
    } else {
        Err(RestAuthError::BadSignature(to_sign))
    }
}

pub fn string_to_sign(method: &str, path: &str, query: &Query) -> String {
    format!("{method}\n{path}\n{}", query.string_to_sign())
}

pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// Decodes `%XX` escapes (a `%` not followed by two hex digits stays as it is); `+` is left
/// alone, so this serves path segments as well as query parts.
pub fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: this overflowed (a panic in debug builds) before the signature check.
    #[test]
    fn extreme_timestamps_are_refused_without_overflow() {
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let q = Query::parse(&format!(
                "auth_key=k&auth_timestamp={ts}&auth_version=1.0&auth_signature=x"
            ));
            assert!(verify("s", "GET", "/apps/1/channels", &q, b"", 1_700_000_000).is_err());
        }
    }

    const SECRET: &str = "7ad3773142a6692b25b8";
    const BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    const SIG: &str = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

    fn vector_query() -> Query {
        Query::parse(&format!(
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature={SIG}"
        ))
    }

    #[test]
    fn published_vector_verifies() {
        assert_eq!(
            body_md5(BODY.as_bytes()),
            "ec365a775a4cd0599faeb73354201b6f"
        );
        let q = vector_query();
        assert_eq!(
            string_to_sign("POST", "/apps/3/events", &q),
            "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179\
             &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
        );
        assert_eq!(
            verify(
                SECRET,
                "POST",
                "/apps/3/events",
                &q,
                BODY.as_bytes(),
                1353088179
            ),
            Ok(())
        );
    }

    #[test]
    fn tampering_is_detected() {
        let q = vector_query();
        let now = 1353088179;
        assert_eq!(
            verify(SECRET, "POST", "/apps/3/events", &q, b"{}", now),
            Err(RestAuthError::BodyMd5Mismatch)
        );
        assert!(matches!(
            verify(SECRET, "POST", "/apps/4/events", &q, BODY.as_bytes(), now),
            Err(RestAuthError::BadSignature(_))
        ));
        assert!(matches!(
            verify("other", "POST", "/apps/3/events", &q, BODY.as_bytes(), now),
            Err(RestAuthError::BadSignature(_))
        ));
        assert_eq!(
            verify(
                SECRET,
                "POST",
                "/apps/3/events",
                &q,
                BODY.as_bytes(),
                now + 601
            ),
            Err(RestAuthError::Expired)
        );
    }

    #[test]
    fn body_without_md5_is_refused() {
        let q = Query::parse("auth_key=k&auth_timestamp=10&auth_signature=00");
        assert_eq!(
            verify(SECRET, "POST", "/p", &q, b"{}", 10),
            Err(RestAuthError::Missing("body_md5"))
        );
    }

    #[test]
    fn query_values_are_decoded_and_keys_sorted() {
        let q = Query::parse("info=user_count%2Csubscription_count&Auth_Key=k&auth_signature=x");
        assert_eq!(q.get("info"), Some("user_count,subscription_count"));
        assert_eq!(
            q.string_to_sign(),
            "auth_key=k&info=user_count,subscription_count"
        );
    }
}
