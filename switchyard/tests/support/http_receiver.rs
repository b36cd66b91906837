//! The receiving side of HTTP: one request read off a test receiver's connection.

use std::collections::HashMap;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// One HTTP/1.1 request as a test receiver reads it.
pub struct HttpRequest {
    /// The request line and headers, as text.
    pub head: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Reads one request with a `Content-Length` body from `stream` (answering is the caller's).
///
/// `None` when the sender stopped before the request was whole (end of stream or a reset): a
/// sender killed with -9 mid-POST does this, and any receiver sees it after a crash. Its job is
/// redelivered, so a lost job shows up as a missing event, not here. `Err` is a whole head
/// that is not a valid request.
pub async fn read_request(stream: &mut TcpStream) -> Result<Option<HttpRequest>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return Ok(None),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no content-length in {head:?}"))?;
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return Ok(None),
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    Ok(Some(HttpRequest {
        head,
        headers,
        body,
    }))
}
