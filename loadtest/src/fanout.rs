//! The fan-out scenario: N subscribers spread over `--channels` channels, timed triggers
//! (see [`crate::trigger`]), latency per delivery.

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Barrier, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::args::{self, Options};
use crate::procfs;
use crate::trigger::{self, channel_index, channel_name, now_us, EVENT};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What one subscriber saw: latencies in microseconds. A plain vector per subscriber, merged
/// into one histogram at the end, because a histogram per subscriber costs ~200 KB each.
struct Seen {
    latencies: Vec<u32>,
}

/// The local address connection `i` binds to: `base` onwards, in turn over `source_ips`
/// addresses; `None` (the kernel chooses) when `source_ips` is 0.
pub fn source_ip(i: usize, source_ips: usize, base: Ipv4Addr) -> Option<Ipv4Addr> {
    let n = source_ips.min(args::MAX_SOURCE_IPS);
    (n > 0).then(|| Ipv4Addr::from(u32::from(base).wrapping_add((i % n) as u32)))
}

/// Where to connect: each server's IPv4 loopback address when binding to source addresses,
/// so every connection does not resolve the name again; `None` otherwise.
async fn resolve(opts: &Options) -> anyhow::Result<Vec<Option<SocketAddr>>> {
    let mut addrs = Vec::with_capacity(opts.servers.len());
    for server in &opts.servers {
        if opts.source_ips == 0 {
            addrs.push(None);
            continue;
        }
        let addr = tokio::net::lookup_host(server)
            .await
            .with_context(|| format!("resolve {server}"))?
            .find(args::is_v4_loopback)
            .with_context(|| format!("--source-ips needs IPv4 loopback servers, not {server}"))?;
        addrs.push(Some(addr));
    }
    Ok(addrs)
}

/// Opens a WebSocket to `server`, from `source` if given (then `addr` is the server's
/// resolved address), and subscribes it to `channel`.
async fn open(
    opts: &Options,
    server: &str,
    addr: Option<SocketAddr>,
    source: Option<Ipv4Addr>,
    channel: &str,
) -> anyhow::Result<Ws> {
    let url = format!(
        "ws://{}/app/{}?protocol=7&client=loadgen&version=0.1",
        server, opts.key
    );
    // A small read buffer: 10,000 clients with the default 128 KB each would need 1.3 GB.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let mut ws = match (addr, source) {
        (Some(addr), Some(ip)) => {
            let socket = TcpSocket::new_v4()?;
            socket
                .bind(SocketAddr::from((ip, 0)))
                .with_context(|| format!("bind {ip}"))?;
            let tcp = socket.connect(addr).await.context("connect")?;
            tcp.set_nodelay(true)?;
            let stream = MaybeTlsStream::Plain(tcp);
            tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                .await
                .context("handshake")?
                .0
        }
        _ => {
            tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                .await
                .context("connect")?
                .0
        }
    };
    let hello = next_text(&mut ws).await?;
    if !hello.contains("pusher:connection_established") {
        bail!("unexpected first frame {hello}");
    }
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
    ws.send(Message::text(sub.to_string())).await?;
    let ok = next_text(&mut ws).await?;
    if !ok.contains("pusher_internal:subscription_succeeded") {
        bail!("subscribe failed: {ok}");
    }
    Ok(ws)
}

/// A subscriber that will never read: a tiny receive buffer, so the server's queue for it
/// fills after kilobytes rather than after the megabytes loopback buffers would absorb.
async fn open_stalled(
    opts: &Options,
    server: &str,
    channel: &str,
) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let addr = tokio::net::lookup_host(server)
        .await?
        .next()
        .context("resolve server")?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_recv_buffer_size(4096)?;
    let tcp = socket.connect(addr).await?;
    let url = format!(
        "ws://{server}/app/{}?protocol=7&client=loadgen&version=0.1",
        opts.key
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
    ws.send(Message::text(sub.to_string())).await?;
    // Read up to the subscription's answer, then never again.
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("timed out waiting for a frame")?
            .context("connection closed")??;
        if msg
            .to_text()
            .is_ok_and(|t| t.contains("subscription_succeeded"))
        {
            return Ok(ws);
        }
    }
}

async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("timed out waiting for a frame")?
            .context("connection closed")??;
        if let Message::Text(t) = msg {
            return Ok(t.to_string());
        }
    }
}

/// Reads deliveries until `expected` arrived or `deadline` passed.
async fn receive(
    mut ws: Ws,
    expected: u64,
    deadline: Arc<std::sync::Mutex<Option<Instant>>>,
) -> Seen {
    let mut seen = Seen {
        latencies: Vec::with_capacity(expected as usize),
    };
    while (seen.latencies.len() as u64) < expected {
        let until = deadline
            .lock()
            .ok()
            .and_then(|d| *d)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let msg = match tokio::time::timeout_at(until.into(), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
            _ => break,
        };
        if !msg.as_str().contains(EVENT) {
            continue;
        }
        let sent = sent_at(msg.as_str());
        if let Some(sent) = sent {
            let us = now_us().saturating_sub(sent).clamp(1, u32::MAX as u64);
            seen.latencies.push(us as u32);
        }
    }
    let _ = ws.close(None).await;
    seen
}

/// The send time stamped in the event's data, read without parsing the whole frame: the
/// generator shares the machine with the server, so its per-message work must stay small.
fn sent_at(frame: &str) -> Option<u64> {
    // The data is a JSON string inside the frame, so its quotes arrive escaped: \"t\":123
    let start = frame.find(r#"\"t\":"#)? + 6;
    let digits = frame[start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    frame[start..start + digits].parse().ok()
}

/// The subscribers opened for one range of connection indices.
struct Opened {
    /// Each subscribed socket with its channel index.
    sockets: Vec<(usize, Ws)>,
    errors: u64,
    seconds: f64,
    /// Server CPU seconds from the first connect to the last subscription.
    cpu: Option<f64>,
}

async fn open_range(opts: &Options, addrs: &[Option<SocketAddr>], range: Range<usize>) -> Opened {
    let cpu_before = procfs::cpu_secs(&opts.server_pids);
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let mut opening = Vec::with_capacity(range.len());
    for i in range {
        let (opts, permits) = (opts.clone(), permits.clone());
        let server = opts.servers[i % opts.servers.len()].clone();
        let addr = addrs[i % addrs.len()];
        let index = channel_index(i, opts.channels);
        opening.push(tokio::spawn(async move {
            let _permit = permits.acquire().await?;
            let channel = channel_name(&opts.channel, opts.channels, index);
            let ws = open(
                &opts,
                &server,
                addr,
                source_ip(i, opts.source_ips, opts.source_base),
                &channel,
            )
            .await?;
            anyhow::Ok((index, ws))
        }));
    }
    let mut opened = Opened {
        sockets: Vec::with_capacity(opening.len()),
        errors: 0,
        seconds: 0.0,
        cpu: None,
    };
    let mut first_error = None;
    for handle in opening {
        match handle.await {
            Ok(Ok(socket)) => opened.sockets.push(socket),
            Ok(Err(e)) => {
                opened.errors += 1;
                first_error = first_error.or(Some(format!("{e:#}")));
            }
            Err(e) => {
                opened.errors += 1;
                first_error = first_error.or(Some(e.to_string()));
            }
        }
    }
    opened.seconds = started.elapsed().as_secs_f64();
    let cpu_after = procfs::cpu_secs(&opts.server_pids);
    opened.cpu = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    if let Some(e) = first_error {
        eprintln!(
            "loadgen: {} connections failed, the first: {e}",
            opened.errors
        );
    }
    opened
}

fn per(total: Option<f64>, count: u64) -> Option<f64> {
    total.filter(|_| count > 0).map(|t| t / count as f64)
}

pub async fn run(opts: Options) -> anyhow::Result<Value> {
    let addrs = resolve(&opts).await?;
    let settle = Duration::from_secs(opts.settle_secs);
    // Warm-up connections, opened and closed before the first reading: the memory a server
    // takes once (runtime and allocator growth, the buffers of a burst of concurrent
    // handshakes) then lands in "before" instead of being divided among the connections.
    if opts.warmup > 0 {
        let warm = open_range(&opts, &addrs, 0..opts.warmup).await;
        for (_, mut ws) in warm.sockets {
            let _ = ws.close(None).await;
        }
        tokio::time::sleep(settle).await;
    }
    let rss_before = procfs::rss_bytes(&opts.server_pids);
    // Two halves: the second half's RSS slope is the per-connection cost, without the one-off
    // memory of concurrent handshakes that the allocator keeps.
    let half = opts.connections / 2;
    let first = open_range(&opts, &addrs, 0..half).await;
    if half > 0 {
        tokio::time::sleep(settle).await;
    }
    let rss_half = procfs::rss_bytes(&opts.server_pids);
    let second = open_range(&opts, &addrs, half..opts.connections).await;
    tokio::time::sleep(settle).await;
    let rss_subscribed = procfs::rss_bytes(&opts.server_pids);
    let connect_secs = first.seconds + second.seconds;
    let connect_errors = first.errors + second.errors;
    let connect_cpu = first.cpu.zip(second.cpu).map(|(a, b)| a + b);
    let (half_connected, second_connected) =
        (first.sockets.len() as u64, second.sockets.len() as u64);
    let sockets: Vec<_> = first.sockets.into_iter().chain(second.sockets).collect();
    let connected = sockets.len() as u64;
    let mut subscribers = vec![0u64; opts.channels];
    for (index, _) in &sockets {
        subscribers[*index] += 1;
    }
    // Stalled clients: subscribed, then never read again; kept open until the end.
    let mut stalled = Vec::with_capacity(opts.stalled);
    for i in 0..opts.stalled {
        let channel = channel_name(
            &opts.channel,
            opts.channels,
            channel_index(i, opts.channels),
        );
        let server = &opts.servers[i % opts.servers.len()];
        stalled.push(open_stalled(&opts, server, &channel).await?);
    }

    let deadline = Arc::new(std::sync::Mutex::new(None));
    // Each subscriber waits for every event sent to its channel (fewer if some are rejected:
    // then it waits until the drain deadline).
    let sent = trigger::events_per_channel(opts.events, opts.channels);
    let barrier = Arc::new(Barrier::new(sockets.len() + 1));
    let receivers: Vec<_> = sockets
        .into_iter()
        .map(|(index, ws)| {
            let (deadline, barrier) = (deadline.clone(), barrier.clone());
            let expected = sent[index];
            tokio::spawn(async move {
                barrier.wait().await;
                receive(ws, expected, deadline).await
            })
        })
        .collect();
    barrier.wait().await;

    let cpu_before = procfs::cpu_secs(&opts.server_pids);
    let triggered = trigger::run(&opts).await?;
    if let Ok(mut d) = deadline.lock() {
        *d = Some(Instant::now() + Duration::from_secs(opts.drain_secs));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut delivered = 0u64;
    for r in receivers {
        let seen = r.await?;
        delivered += seen.latencies.len() as u64;
        for us in seen.latencies {
            all.record(u64::from(us).min(60_000_000))?;
        }
    }
    let deliver_secs = triggered.started.elapsed().as_secs_f64();
    let cpu_after = procfs::cpu_secs(&opts.server_pids);
    let accepted = triggered.accepted_total();
    let expected_total = trigger::expected_deliveries(&subscribers, &triggered.accepted);
    let cpu = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    let per_conn = rss_before
        .zip(rss_subscribed)
        .filter(|_| connected > 0)
        .map(|(a, b)| (b.saturating_sub(a)) as f64 / connected as f64);
    // Signed: a negative slope (the allocator returning memory) is reported as it is.
    let marginal = per(
        rss_half
            .zip(rss_subscribed)
            .map(|(a, b)| b as f64 - a as f64),
        second_connected,
    );
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    Ok(json!({
        "scenario": "fanout",
        "stalled_clients": stalled.len(),
        "connections": {"requested": opts.connections, "connected": connected, "errors": connect_errors,
                         "seconds": connect_secs, "per_second": connected as f64 / connect_secs,
                         "channels": opts.channels, "source_ips": opts.source_ips,
                         "server_cpu_seconds": connect_cpu,
                         "server_cpu_us_per_connection": per(connect_cpu.map(|c| c * 1e6), connected)},
        "server_rss_bytes": {"warmup_connections": opts.warmup, "before": rss_before, "half": rss_half, "half_connected": half_connected,
                             "subscribed": rss_subscribed, "per_idle_subscribed_connection": per_conn,
                             "per_connection_marginal": marginal},
        "events": {"triggered": opts.events, "accepted": accepted, "rejected": triggered.rejected,
                   "rate_per_second": opts.rate, "api_connections": opts.api_connections,
                   "payload_bytes": opts.payload_bytes, "trigger_seconds": triggered.seconds,
                   "accepted_per_second": accepted as f64 / triggered.seconds},
        "deliveries": {"expected": expected_total, "delivered": delivered,
                       "lost": expected_total.saturating_sub(delivered),
                       "per_second": delivered as f64 / deliver_secs},
        "latency_ms": {"p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "max": all.max() as f64 / 1000.0},
        "server_cpu": {"seconds": cpu, "us_per_delivered_message": per(cpu.map(|c| c * 1e6), delivered)},
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_timestamp_from_a_frame() {
        let data = serde_json::json!({"seq": 1, "t": 1234567, "pad": "x"}).to_string();
        let frame =
            serde_json::json!({"event": "load-event", "channel": "c", "data": data}).to_string();
        assert_eq!(super::sent_at(&frame), Some(1234567));
    }

    #[test]
    fn picks_source_addresses_in_turn() {
        use std::net::Ipv4Addr;
        assert_eq!(super::source_ip(5, 0, Ipv4Addr::new(127, 0, 0, 2)), None);
        assert_eq!(
            super::source_ip(0, 1, Ipv4Addr::new(127, 0, 0, 2)),
            Some(Ipv4Addr::new(127, 0, 0, 2))
        );
        assert_eq!(
            super::source_ip(7, 1, Ipv4Addr::new(127, 0, 0, 2)),
            Some(Ipv4Addr::new(127, 0, 0, 2))
        );
        assert_eq!(
            super::source_ip(5, 4, Ipv4Addr::new(127, 0, 0, 2)),
            Some(Ipv4Addr::new(127, 0, 0, 3))
        );
        assert_eq!(
            super::source_ip(3, 4, Ipv4Addr::new(127, 0, 2, 254)),
            Some(Ipv4Addr::new(127, 0, 3, 1))
        );
        assert_eq!(
            super::source_ip(249, 250, Ipv4Addr::new(127, 0, 0, 2)),
            Some(Ipv4Addr::new(127, 0, 0, 251))
        );
        assert_eq!(
            super::source_ip(250, 250, Ipv4Addr::new(127, 0, 0, 2)),
            Some(Ipv4Addr::new(127, 0, 0, 2))
        );
    }
}
