//! An HTTP API request: `METHOD\npath\nquery\nbody…` (the body is every byte after the third
//! newline), checked by `rest::verify` at a fixed server time, and the WebSocket handshake URL
//! check that shares the query parser.
//!
//! Properties: nothing panics; `verify` accepts only a request whose signature, timestamp and
//! body MD5 really hold; a refused signature names the exact string it expected. Then the same
//! method, path, parameters and body signed the way the Pusher SDKs sign (parameters sorted by
//! key, values unencoded, then percent-encoded on the wire) must verify, decode to the same
//! values, and stop verifying when the body or method is changed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_protocol::handshake;
use switchyard_protocol::rest::{self, Query, RestAuthError, TIMESTAMP_WINDOW_SECS};
use switchyard_protocol::signature;

const KEY: &str = "278d425bdf160c739803";
const SECRET: &str = "7ad3773142a6692b25b8";
/// The time of Pusher's published signing example, so its request verifies as a seed.
const NOW: i64 = 1353088179;
/// Parameters the SDKs set themselves.
const RESERVED: [&str; 5] = [
    "auth_key",
    "auth_timestamp",
    "auth_version",
    "body_md5",
    "auth_signature",
];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let (Some(method), Some(path), Some(query)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let body = parts.next().unwrap_or_default();
    // hyper hands the API a `&str` method, path and query.
    let (Ok(method), Ok(path), Ok(query)) = (
        std::str::from_utf8(method),
        std::str::from_utf8(path),
        std::str::from_utf8(query),
    ) else {
        return;
    };
    check_as_received(method, path, query, body);
    check_handshake(path, query);
    check_signed_like_an_sdk(method, path, query, body);
});

fn check_as_received(method: &str, path: &str, raw_query: &str, body: &[u8]) {
    let query = Query::parse(raw_query);
    let to_sign = rest::string_to_sign(method, path, &query);
    match rest::verify(SECRET, method, path, &query, body, NOW) {
        Ok(()) => {
            let timestamp: i64 = query
                .get("auth_timestamp")
                .and_then(|t| t.parse().ok())
                .expect("an accepted request has a numeric auth_timestamp");
            assert!((NOW - timestamp).abs() <= TIMESTAMP_WINDOW_SECS);
            match query.get("body_md5") {
                Some(md5) => assert!(md5.eq_ignore_ascii_case(&rest::body_md5(body))),
                None => assert!(body.is_empty()),
            }
            let sig = query.get("auth_signature").expect("signed");
            assert!(signature::verify(SECRET, to_sign.as_bytes(), sig));
        }
        Err(RestAuthError::BadSignature(expected)) => assert_eq!(expected, to_sign),
        Err(_) => {}
    }
}

/// `/app/<key>` with a supported `protocol`: the key is the path's last segment, as it is.
fn check_handshake(path: &str, query: &str) {
    if let Ok(key) = handshake::app_key(path, query) {
        assert!(!key.is_empty() && !key.contains('/'));
        let rest = path
            .strip_prefix("/app/")
            .expect("an accepted path starts /app/");
        assert_eq!(rest.trim_end_matches('/'), key);
        let version: u32 = Query::parse(query)
            .get("protocol")
            .and_then(|v| v.parse().ok())
            .expect("an accepted URL has a numeric protocol");
        assert!((handshake::MIN_PROTOCOL..=handshake::MAX_PROTOCOL).contains(&version));
    }
}

/// The raw query's `k=v` parts, taken as an SDK user's unencoded parameters.
fn check_signed_like_an_sdk(method: &str, path: &str, raw_query: &str, body: &[u8]) {
    let mut params: Vec<(String, String)> = Vec::new();
    for part in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = k.to_ascii_lowercase();
        if !RESERVED.contains(&k.as_str()) && !params.iter().any(|(seen, _)| *seen == k) {
            params.push((k, v.to_owned()));
        }
    }
    params.push(("auth_key".into(), KEY.into()));
    params.push(("auth_timestamp".into(), NOW.to_string()));
    params.push(("auth_version".into(), "1.0".into()));
    if !body.is_empty() {
        params.push(("body_md5".into(), rest::body_md5(body)));
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let signed: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let to_sign = format!("{method}\n{path}\n{}", signed.join("&"));
    let sig = signature::sign(SECRET, to_sign.as_bytes());
    let mut wire: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    wire.push(format!("auth_signature={sig}"));
    let query = Query::parse(&wire.join("&"));

    for (k, v) in &params {
        assert_eq!(query.get(k), Some(v.as_str()), "parameter {k:?}");
    }
    assert_eq!(rest::string_to_sign(method, path, &query), to_sign);
    assert_eq!(
        rest::verify(SECRET, method, path, &query, body, NOW),
        Ok(())
    );
    let mut longer = body.to_vec();
    longer.push(b'x');
    assert_eq!(
        rest::verify(SECRET, method, path, &query, &longer, NOW),
        Err(if body.is_empty() {
            RestAuthError::Missing("body_md5")
        } else {
            RestAuthError::BodyMd5Mismatch
        })
    );
    let other_method = format!("{method}X");
    assert!(matches!(
        rest::verify(SECRET, &other_method, path, &query, body, NOW),
        Err(RestAuthError::BadSignature(_))
    ));
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as the SDKs do.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
