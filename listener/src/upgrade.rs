//! WebSocket upgrades, answered by the listener. A connection whose first request is an
//! upgrade is read into a small buffer, answered with 101 and handed over as a raw stream,
//! without hyper's per-connection buffers: those take about 16 KB while a handshake runs,
//! which a burst of reconnecting clients multiplies, and the allocator keeps it afterwards.
//! Every other request, and an upgrade that comes later on a kept-alive connection, goes
//! through hyper and reaches the same hook.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::{Body, Stream};

/// What the hook decides for a WebSocket upgrade request.
pub enum Upgrade {
    /// Answer with this response; the connection does not switch protocols.
    Refuse(Response<Body>),
    /// Switch protocols: after the 101 is written, this gets the stream and the bytes the
    /// client sent after its request (WebSocket frames it did not wait to send).
    Accept(Box<dyn FnOnce(Stream, Vec<u8>) + Send>),
}

/// Decides upgrade requests; it sees the request and the client's address.
pub type UpgradeHook = Arc<dyn Fn(&UpgradeRequest<'_>, SocketAddr) -> Upgrade + Send + Sync>;

/// An upgrade request as the hook sees it, borrowed from the bytes read or from hyper's
/// request: nothing is copied for a handshake.
pub struct UpgradeRequest<'a> {
    pub path: &'a str,
    pub query: &'a str,
    headers: Headers<'a>,
}

enum Headers<'a> {
    Parsed(&'a [httparse::Header<'a>]),
    Map(&'a HeaderMap),
}

impl<'a> UpgradeRequest<'a> {
    /// A request that went through hyper.
    pub fn new(path: &'a str, query: &'a str, headers: &'a HeaderMap) -> UpgradeRequest<'a> {
        UpgradeRequest {
            path,
            query,
            headers: Headers::Map(headers),
        }
    }

    /// Every value of the header `name` (any case), in order.
    pub fn headers(&self, name: &'a str) -> impl DoubleEndedIterator<Item = &'a [u8]> + 'a {
        let (parsed, map) = match self.headers {
            Headers::Parsed(h) => (Some(h), None),
            Headers::Map(m) => (None, Some(m)),
        };
        let parsed = parsed
            .into_iter()
            .flatten()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value);
        let map = map
            .into_iter()
            .flat_map(move |m| m.get_all(name).iter().map(HeaderValue::as_bytes));
        parsed.chain(map)
    }

    /// The first value of the header `name`, when it is text.
    pub fn header(&self, name: &'a str) -> Option<&'a str> {
        self.headers(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// A WebSocket opening handshake (RFC 6455 §4.2.1), as far as a server must check; the
    /// method (GET) is checked apart.
    pub fn is_websocket(&self) -> bool {
        self.has_token("connection", "upgrade")
            && self.has_token("upgrade", "websocket")
            && self.header("sec-websocket-key").is_some()
    }

    fn has_token(&self, name: &'a str, token: &str) -> bool {
        self.headers(name).any(|v| {
            std::str::from_utf8(v)
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    }
}

/// Splits a request target into path and query.
pub(crate) fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// The bytes first read for a request head; it grows, to [`MAX_HEAD`], for larger heads.
pub(crate) const HEAD_BUFFER: usize = 1024;
/// A head larger than this goes to hyper, which has its own limit.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Headers looked at in a head; a request with more goes to hyper.
pub(crate) const MAX_HEADERS: usize = 48;

/// What the bytes read so far from a new connection are.
#[derive(Debug, PartialEq)]
pub(crate) enum Head {
    /// The request head is not complete yet.
    Partial,
    /// Anything but a complete WebSocket upgrade request: hyper serves it.
    Http,
    /// A WebSocket upgrade request whose head is `len` bytes long.
    WebSocket { len: usize },
}

/// Parses a complete request head at the start of `buf`: the request, and the head's length.
/// `None` for an incomplete or malformed head.
pub(crate) fn parse<'b>(
    buf: &'b [u8],
    headers: &'b mut [httparse::Header<'b>],
) -> Result<Option<(UpgradeRequest<'b>, usize)>, ()> {
    let mut req = httparse::Request::new(headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    if req.method != Some("GET") || req.version != Some(1) {
        return Err(());
    }
    let (path, query) = split_target(req.path.unwrap_or("/"));
    let parsed = UpgradeRequest {
        path,
        query,
        headers: Headers::Parsed(req.headers),
    };
    Ok(Some((parsed, len)))
}

/// Classifies the first bytes of a connection.
pub(crate) fn parse_head(buf: &[u8]) -> Head {
    // Only a GET can be an upgrade: anything else goes to hyper at its first bytes.
    let start = buf.len().min(4);
    if buf[..start] != b"GET "[..start] {
        return Head::Http;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match parse(buf, &mut headers) {
        Ok(Some((req, len))) if req.is_websocket() => Head::WebSocket { len },
        Ok(None) if buf.len() < MAX_HEAD => Head::Partial,
        // Not an upgrade, malformed, too many headers or too large: hyper answers those.
        _ => Head::Http,
    }
}

/// The 101 answer to an upgrade request with this `Sec-WebSocket-Key`.
pub(crate) fn switching_protocols(key: &[u8]) -> Response<Body> {
    let mut res = Response::new(Body::default());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key)) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

/// `res` as HTTP/1.1 bytes. A refusal also closes the connection, so it says so.
pub(crate) async fn encode(res: Response<Body>) -> Vec<u8> {
    let (parts, body) = res.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let status = parts.status;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /app/key?protocol=7 HTTP/1.1\r\nHost: x\r\n\
        Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn an_upgrade_request_is_taken_with_its_length() {
        let mut bytes = UPGRADE.to_vec();
        bytes.extend_from_slice(b"\x81\x05early");
        assert_eq!(parse_head(&bytes), Head::WebSocket { len: UPGRADE.len() });
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (req, len) = parse(&bytes, &mut headers)
            .expect("valid")
            .expect("complete");
        assert_eq!(len, UPGRADE.len());
        assert_eq!((req.path, req.query), ("/app/key", "protocol=7"));
        assert_eq!(req.header("HOST"), Some("x"));
        assert_eq!(req.header("origin"), None);
    }

    #[test]
    fn a_request_through_hyper_reads_the_same() {
        let mut map = HeaderMap::new();
        map.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        map.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        map.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("k"));
        map.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1"));
        map.append("x-forwarded-for", HeaderValue::from_static("2.2.2.2"));
        let req = UpgradeRequest::new("/app/key", "", &map);
        assert!(req.is_websocket());
        assert_eq!(
            req.headers("X-Forwarded-For").next_back(),
            Some(&b"2.2.2.2"[..])
        );
        map.remove(header::SEC_WEBSOCKET_KEY);
        assert!(!UpgradeRequest::new("/", "", &map).is_websocket());
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        for cut in [1, 3, 4, 20, UPGRADE.len() - 1] {
            assert_eq!(parse_head(&UPGRADE[..cut]), Head::Partial, "cut at {cut}");
        }
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        let cases: [&[u8]; 6] = [
            b"POST /apps/1/events HTTP/1.1\r\n",
            b"PUT",
            b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n",
            // An upgrade to something else, and one without a key.
            b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
        ];
        for bytes in cases {
            assert_eq!(
                parse_head(bytes),
                Head::Http,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_head_too_large_for_the_buffer_goes_to_hyper() {
        let mut bytes = b"GET / HTTP/1.1\r\nCookie: ".to_vec();
        bytes.resize(MAX_HEAD, b'a');
        assert_eq!(parse_head(&bytes), Head::Http);
    }

    #[tokio::test]
    async fn the_switching_answer_carries_the_accept_key() {
        let bytes = encode(switching_protocols(b"dGhlIHNhbXBsZSBub25jZQ==")).await;
        let text = String::from_utf8(bytes).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        // The example of RFC 6455 §1.3.
        assert!(text.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        assert!(!text.contains("content-length"));
    }

    #[tokio::test]
    async fn a_refusal_has_a_length_and_closes() {
        let res = crate::error(StatusCode::TOO_MANY_REQUESTS, "slow down");
        let text = String::from_utf8(encode(res).await).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(text.contains("connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n{\"error\":\"slow down\"}"));
        assert!(text.contains(&format!(
            "content-length: {}\r\n",
            r#"{"error":"slow down"}"#.len()
        )));
    }
}
