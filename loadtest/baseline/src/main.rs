//! `baseline [--port 6001]`: the least a Pusher fan-out server can do, as a yardstick for
//! Switchyard's figures on the same machine with the same load generator. WebSocket on
//! `/app/<anything>`, `pusher:subscribe` to any channel without auth, `pusher:ping`, and
//! `POST /apps/<id>/events` with the signature ignored. No presence, no webhooks, no limits.
//!
//! The HTTP head is parsed by hand because one port serves both the API and the WebSocket
//! upgrade, and the upgrade needs the bytes already read handed to tungstenite.

mod hub;

use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use hub::Hub;

const MAX_HEAD: usize = 16 * 1024;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match args.as_slice() {
        [] => 6001,
        [flag, port] if flag == "--port" => port.parse().context("--port")?,
        _ => bail!("usage: baseline [--port 6001]"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(port))
}

async fn serve(port: u16) -> anyhow::Result<()> {
    // The same backlog as Switchyard's listener: with the default (128) a burst of connects
    // overflows the queue and waits a second for SYN retries, which would slow the baseline's
    // connect figures for reasons unrelated to the server.
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(([127, 0, 0, 1], port).into())?;
    let listener = socket.listen(4096)?;
    eprintln!("baseline listening on {}", listener.local_addr()?);
    let hub = Arc::new(Hub::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let hub = hub.clone();
        tokio::spawn(async move {
            let _ = connection(stream, hub).await;
        });
    }
}

/// One request head: method, path and the headers this server reads.
struct Head {
    method: String,
    path: String,
    content_length: usize,
    ws_key: Option<String>,
}

fn parse_head(raw: &str) -> Option<Head> {
    let mut lines = raw.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let mut head = Head {
        method,
        path,
        content_length: 0,
        ws_key: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            head.ws_key = Some(value.to_owned());
        }
    }
    Some(head)
}

/// Serves keep-alive HTTP requests until one is a WebSocket upgrade, which takes the socket.
async fn connection(mut stream: TcpStream, hub: Arc<Hub>) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD || stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = parse_head(std::str::from_utf8(&buf[..end])?).context("bad request head")?;
        buf.drain(..end);
        if let (Some(key), true) = (&head.ws_key, head.path.starts_with("/app/")) {
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let reply = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            stream.write_all(reply.as_bytes()).await?;
            return hub::websocket(stream, buf, hub).await;
        }
        while buf.len() < head.content_length {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body: Vec<u8> = buf.drain(..head.content_length).collect();
        let (status, reply) = respond(&head, &body, &hub);
        let out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        stream.write_all(out.as_bytes()).await?;
    }
}

fn respond(head: &Head, body: &[u8], hub: &Hub) -> (&'static str, &'static str) {
    let path = head.path.split('?').next().unwrap_or_default();
    match head.method.as_str() {
        "POST" if path.starts_with("/apps/") && path.ends_with("/events") => {
            match hub.trigger(body) {
                Ok(()) => ("200 OK", "{}"),
                Err(_) => ("400 Bad Request", r#"{"error":"bad event"}"#),
            }
        }
        "GET" if path == "/ready" || path == "/up" => ("200 OK", "{}"),
        _ => ("404 Not Found", "{}"),
    }
}
