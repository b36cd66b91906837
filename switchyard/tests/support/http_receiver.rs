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

/// Why a test receiver got no request out of a connection.
#[derive(Debug)]
pub enum ReadError {
    /// The sender stopped before the request was whole (end of stream or a reset). A sender
    /// killed with -9 mid-POST does this, and any receiver sees it after a crash: the job is
    /// redelivered, so a lost job shows up as a missing event, not here.
    Cut(String),
    /// A whole head that is not a valid request.
    Malformed(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Cut(m) => write!(f, "cut: {m}"),
            ReadError::Malformed(m) => write!(f, "malformed: {m}"),
        }
    }
}

/// Reads one request with a `Content-Length` body from `stream` (answering is the caller's).
pub async fn read_request(stream: &mut TcpStream) -> Result<HttpRequest, ReadError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| ReadError::Cut(format!("read: {e}")))?;
        if n == 0 {
            return Err(ReadError::Cut(format!(
                "connection closed inside the head: {:?}",
                String::from_utf8_lossy(&buf)
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
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
        .ok_or_else(|| ReadError::Malformed(format!("no content-length in {head:?}")))?;
    while buf.len() < head_end + length {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| ReadError::Cut(format!("read body: {e}")))?;
        if n == 0 {
            return Err(ReadError::Cut("connection closed inside the body".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    Ok(HttpRequest {
        head,
        headers,
        body,
    })
}
