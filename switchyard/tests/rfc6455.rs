//! RFC 6455 at the frame level. A client library never sends a bad frame, so these tests
//! upgrade a plain TCP connection by hand and write every frame byte by byte; each checks the
//! exact close code the edge answers with, and that it then ends the TCP connection.

mod support;

use support::{app_toml, TestServer, APP_ID, KEY, SECRET, SERVER, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

const FIN: u8 = 0x80;
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
/// Any fixed key will do: masking is not a secret, only a defence against cache poisoning.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const PING_JSON: &str = r#"{"event":"pusher:ping","data":{}}"#;

/// A client frame, masked as RFC 6455 §5.3 requires. `head` is FIN, RSV1-3 and the opcode.
fn frame(head: u8, payload: &[u8]) -> Vec<u8> {
    encode(head, Some(MASK), payload)
}

fn encode(head: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![head];
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend(m);
            out.extend(payload.iter().zip(m.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => out.extend(payload),
    }
    out
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend(reason);
    p
}

/// A frame from the server.
#[derive(Debug)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl Frame {
    fn text(&self) -> Option<&str> {
        (self.opcode == TEXT).then(|| std::str::from_utf8(&self.payload).expect("UTF-8 text"))
    }

    /// The close code and reason, which must be UTF-8 (§5.5.1).
    fn close_code(&self) -> u16 {
        assert!(self.payload.len() >= 2, "close frame without a code");
        std::str::from_utf8(&self.payload[2..]).expect("close reason is UTF-8");
        u16::from_be_bytes([self.payload[0], self.payload[1]])
    }
}

/// A WebSocket connection to the main app over a raw TCP stream.
struct RawSocket {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl RawSocket {
    /// Upgrades by hand, checks the accept key and reads `connection_established`.
    async fn open(srv: &TestServer) -> RawSocket {
        let tcp = timeout(WAIT, TcpStream::connect(srv.addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        let mut ws = RawSocket {
            tcp,
            buf: Vec::new(),
        };
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let request = format!(
            "GET /app/{KEY}?protocol=7&client=js&version=8.6.0&flash=false HTTP/1.1\r\n\
             Host: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            srv.addr
        );
        ws.send(request.as_bytes()).await;
        let head = ws.response_head().await;
        assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
        let accept = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-accept"))
            })
            .map(|(_, v)| v.trim().to_owned());
        assert_eq!(accept, Some(derive_accept_key(key.as_bytes())));
        let hello = ws.next_frame().await.expect("connection_established");
        assert!(
            hello
                .text()
                .is_some_and(|t| t.contains("pusher:connection_established")),
            "{hello:?}"
        );
        ws
    }

    async fn send(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.tcp.write_all(bytes))
            .await
            .expect("write timed out")
            .expect("write");
    }

    /// Reads more bytes into the buffer; false when the server ended the connection.
    async fn fill(&mut self, deadline: Instant) -> bool {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, self.tcp.read(&mut chunk)).await {
            Err(_) => panic!("nothing from the server within {WAIT:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn response_head(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8(head).expect("UTF-8 response head");
            }
            assert!(
                self.fill(deadline).await,
                "connection ended in the response"
            );
        }
    }

    /// The next frame, or `None` when the TCP connection ended first.
    async fn next_frame(&mut self) -> Option<Frame> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(frame) = self.take_frame() {
                return Some(frame);
            }
            if !self.fill(deadline).await {
                return None;
            }
        }
    }

    fn take_frame(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[0] & 0x70, 0, "server set reserved bits");
        assert_eq!(b[1] & 0x80, 0, "server masked a frame (§5.1 forbids it)");
        let (len, start) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let n = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
                (usize::try_from(n).expect("frame length"), 10)
            }
            126 | 127 => return None,
            n => (usize::from(n), 2),
        };
        if b.len() < start + len {
            return None;
        }
        let frame = Frame {
            fin: b[0] & FIN != 0,
            opcode: b[0] & 0x0F,
            payload: b[start..start + len].to_vec(),
        };
        self.buf.drain(..start + len);
        Some(frame)
    }

    /// Reads up to the server's close frame, skipping other frames, and returns its code.
    async fn expect_close(&mut self) -> u16 {
        let mut skipped = Vec::new();
        loop {
            match self.next_frame().await {
                Some(f) if f.opcode == CLOSE => return f.close_code(),
                Some(f) => skipped.push(f),
                None => panic!("TCP connection ended without a close frame (after {skipped:?})"),
            }
        }
    }

    /// Answers the server's close as §5.5.1 asks, then expects the server to end the TCP
    /// connection with nothing more sent.
    async fn expect_end(&mut self, code: u16) {
        // The server may already have gone (it need not wait when failing the connection).
        let _ = self
            .tcp
            .write_all(&frame(FIN | CLOSE, &close_payload(code, b"")))
            .await;
        let deadline = Instant::now() + WAIT;
        while self.fill(deadline).await {}
        assert!(
            self.buf.is_empty(),
            "bytes after the close frame: {:?}",
            self.buf
        );
    }
}

/// Sends `bytes` on a fresh connection: the server must close with `code`, then end the TCP
/// connection.
async fn fails_with(srv: &TestServer, bytes: &[u8], code: u16, case: &str) {
    let mut ws = RawSocket::open(srv).await;
    ws.send(bytes).await;
    assert_eq!(ws.expect_close().await, code, "{case}");
    ws.expect_end(code).await;
}

async fn server() -> TestServer {
    TestServer::with_main_app("").await
}

/// Reads frames until `want` returns true for one, within the bound; returns what was seen.
async fn read_until(ws: &mut RawSocket, mut want: impl FnMut(&Frame) -> bool) -> Vec<Frame> {
    let mut seen = Vec::new();
    loop {
        let f = ws
            .next_frame()
            .await
            .unwrap_or_else(|| panic!("connection ended: {seen:?}"));
        let done = want(&f);
        seen.push(f);
        if done {
            return seen;
        }
    }
}

fn is_pusher_pong(f: &Frame) -> bool {
    f.text()
        .is_some_and(|t| t.contains(r#""event":"pusher:pong""#))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_text_message_is_assembled() {
    let srv = server().await;
    let mut ws = RawSocket::open(&srv).await;
    let (a, rest) = PING_JSON.split_at(10);
    let (b, c) = rest.split_at(10);
    let mut bytes = frame(TEXT, a.as_bytes());
    bytes.extend(frame(CONTINUATION, b.as_bytes()));
    bytes.extend(frame(FIN | CONTINUATION, c.as_bytes()));
    ws.send(&bytes).await;
    let seen = read_until(&mut ws, is_pusher_pong).await;
    assert!(seen.iter().all(|f| f.fin), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_answered_with_its_payload_even_between_fragments() {
    let srv = server().await;
    let mut ws = RawSocket::open(&srv).await;
    for payload in [Vec::new(), vec![b'p'; 125]] {
        ws.send(&frame(FIN | PING, &payload)).await;
        let seen = read_until(&mut ws, |f| f.opcode == PONG).await;
        assert_eq!(seen.last().map(|f| &f.payload), Some(&payload));
    }

    let (a, b) = PING_JSON.split_at(15);
    let mut bytes = frame(TEXT, a.as_bytes());
    bytes.extend(frame(FIN | PING, b"between fragments"));
    bytes.extend(frame(FIN | CONTINUATION, b.as_bytes()));
    ws.send(&bytes).await;
    let (mut pong, mut pusher_pong) = (None, false);
    read_until(&mut ws, |f| {
        if f.opcode == PONG {
            pong = Some(f.payload.clone());
        }
        pusher_pong |= is_pusher_pong(f);
        pong.is_some() && pusher_pong
    })
    .await;
    assert_eq!(pong.as_deref(), Some(&b"between fragments"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_closes_1007() {
    let srv = server().await;
    let bad = b"{\"event\":\"pusher:ping\",\"data\":\"\xc3\x28\"}";
    fails_with(&srv, &frame(FIN | TEXT, bad), 1007, "invalid UTF-8").await;
    let mut split = frame(TEXT, b"{\"event\":\"\xe2\x82");
    split.extend(frame(FIN | CONTINUATION, b"\x28\"}"));
    fails_with(&srv, &split, 1007, "invalid UTF-8 across fragments").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmasked_client_frame_closes_1002() {
    let srv = server().await;
    let bytes = encode(FIN | TEXT, None, PING_JSON.as_bytes());
    fails_with(&srv, &bytes, 1002, "unmasked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_frame_over_125_bytes_closes_1002() {
    let srv = server().await;
    fails_with(&srv, &frame(FIN | PING, &[b'p'; 126]), 1002, "ping of 126").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_control_frame_closes_1002() {
    let srv = server().await;
    fails_with(&srv, &frame(PING, b"no FIN"), 1002, "ping without FIN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_without_a_message_closes_1002() {
    let srv = server().await;
    let bytes = frame(FIN | CONTINUATION, PING_JSON.as_bytes());
    fails_with(&srv, &bytes, 1002, "lone continuation").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_message_inside_a_fragmented_one_closes_1002() {
    let srv = server().await;
    let mut bytes = frame(TEXT, b"{\"event\":");
    bytes.extend(frame(FIN | TEXT, PING_JSON.as_bytes()));
    fails_with(&srv, &bytes, 1002, "text inside a fragmented text").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_bits_without_an_extension_close_1002() {
    let srv = server().await;
    for rsv in [0x40, 0x20, 0x10] {
        let bytes = frame(FIN | rsv | TEXT, PING_JSON.as_bytes());
        fails_with(&srv, &bytes, 1002, &format!("RSV bit {rsv:#x}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_opcodes_close_1002() {
    let srv = server().await;
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        let bytes = frame(FIN | opcode, b"?");
        fails_with(&srv, &bytes, 1002, &format!("opcode {opcode:#x}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_is_echoed_with_its_code() {
    let srv = server().await;
    for code in [1000, 1001, 3000, 4999] {
        let mut ws = RawSocket::open(&srv).await;
        ws.send(&frame(FIN | CLOSE, &close_payload(code, b"bye")))
            .await;
        assert_eq!(ws.expect_close().await, code);
        ws.expect_end(code).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_an_invalid_code_is_answered_1002() {
    let srv = server().await;
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let bytes = frame(FIN | CLOSE, &close_payload(code, b""));
        fails_with(&srv, &bytes, 1002, &format!("close code {code}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_close_frames_fail_the_connection() {
    let srv = server().await;
    fails_with(&srv, &frame(FIN | CLOSE, &[0x03]), 1002, "1-byte close").await;
    let bytes = frame(FIN | CLOSE, &close_payload(1000, b"\xff\xfe"));
    fails_with(&srv, &bytes, 1007, "close reason not UTF-8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_max_message_bytes_closes_1009() {
    let max = 4096;
    let config = format!(
        "{SERVER}max_message_bytes = {max}\n{}",
        app_toml(APP_ID, KEY, SECRET, "")
    );
    let srv = TestServer::start(&config).await;

    // Exactly at the limit is still served.
    let mut ws = RawSocket::open(&srv).await;
    let pad = max - PING_JSON.len() - r#","pad":"""#.len();
    let at_limit = format!(
        r#"{},"pad":"{}"}}"#,
        &PING_JSON[..PING_JSON.len() - 1],
        "x".repeat(pad)
    );
    assert_eq!(at_limit.len(), max);
    ws.send(&frame(FIN | TEXT, at_limit.as_bytes())).await;
    read_until(&mut ws, is_pusher_pong).await;

    let one_frame = frame(FIN | TEXT, &vec![b' '; max + 1]);
    fails_with(&srv, &one_frame, 1009, "one frame over the limit").await;
    let mut fragments = frame(TEXT, &vec![b' '; max / 2]);
    fragments.extend(frame(CONTINUATION, &vec![b' '; max / 2]));
    fragments.extend(frame(FIN | CONTINUATION, b" "));
    fails_with(&srv, &fragments, 1009, "fragments adding up past the limit").await;
}
