//! The fan-out scenario: N subscribers on one channel, timed triggers, latency per delivery.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::args::Options;
use crate::http::Api;
use crate::procfs;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const EVENT: &str = "load-event";

/// What one subscriber saw: latencies in microseconds. A plain vector per subscriber, merged
/// into one histogram at the end, because a histogram per subscriber costs ~200 KB each.
struct Seen {
    latencies: Vec<u32>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

async fn open(opts: &Options, server: &str) -> anyhow::Result<Ws> {
    let url = format!(
        "ws://{}/app/{}?protocol=7&client=loadgen&version=0.1",
        server, opts.key
    );
    // A small read buffer: 10,000 clients with the default 128 KB each would need 1.3 GB.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .context("connect")?;
    let hello = next_text(&mut ws).await?;
    if !hello.contains("pusher:connection_established") {
        bail!("unexpected first frame {hello}");
    }
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": opts.channel}});
    ws.send(Message::text(sub.to_string())).await?;
    let ok = next_text(&mut ws).await?;
    if !ok.contains("pusher_internal:subscription_succeeded") {
        bail!("subscribe failed: {ok}");
    }
    Ok(ws)
}

/// A subscriber that will never read: a tiny receive buffer, so the server's queue for it
/// fills after kilobytes rather than after the megabytes loopback buffers would absorb.
async fn open_stalled(opts: &Options, server: &str) -> anyhow::Result<WebSocketStream<TcpStream>> {
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
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": opts.channel}});
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

pub async fn run(opts: Options) -> anyhow::Result<Value> {
    let rss_before = procfs::rss_bytes(&opts.server_pids);
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let mut opening = Vec::with_capacity(opts.connections);
    for i in 0..opts.connections {
        let (opts, permits) = (opts.clone(), permits.clone());
        let server = opts.servers[i % opts.servers.len()].clone();
        opening.push(tokio::spawn(async move {
            let _permit = permits.acquire().await?;
            open(&opts, &server).await
        }));
    }
    let mut sockets = Vec::with_capacity(opts.connections);
    let mut connect_errors = 0u64;
    for handle in opening {
        match handle.await {
            Ok(Ok(ws)) => sockets.push(ws),
            _ => connect_errors += 1,
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(opts.settle_secs)).await;
    let rss_subscribed = procfs::rss_bytes(&opts.server_pids);
    let connected = sockets.len() as u64;
    // Stalled clients: subscribed, then never read again; kept open until the end.
    let mut stalled = Vec::with_capacity(opts.stalled);
    for i in 0..opts.stalled {
        stalled.push(open_stalled(&opts, &opts.servers[i % opts.servers.len()]).await?);
    }

    let deadline = Arc::new(std::sync::Mutex::new(None));
    let expected = opts.events as u64;
    let barrier = Arc::new(Barrier::new(sockets.len() + 1));
    let receivers: Vec<_> = sockets
        .into_iter()
        .map(|ws| {
            let (deadline, barrier) = (deadline.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                receive(ws, expected, deadline).await
            })
        })
        .collect();
    barrier.wait().await;

    let cpu_before = procfs::cpu_secs(&opts.server_pids);
    let mut api = Api::connect(&opts.api, &opts.app_id, &opts.key, &opts.secret).await?;
    let padding = "x".repeat(opts.payload_bytes.saturating_sub(40));
    let interval = Duration::from_secs_f64(1.0 / opts.rate);
    let mut ticker = tokio::time::interval(interval);
    let trigger_start = Instant::now();
    let mut rejected = 0u64;
    for seq in 0..opts.events {
        ticker.tick().await;
        let data = json!({"seq": seq, "t": now_us(), "pad": padding}).to_string();
        let body = json!({"name": EVENT, "channel": opts.channel, "data": data}).to_string();
        if api.trigger(body).await? != 200 {
            rejected += 1;
        }
    }
    let trigger_secs = trigger_start.elapsed().as_secs_f64();
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
    let deliver_secs = trigger_start.elapsed().as_secs_f64();
    let cpu_after = procfs::cpu_secs(&opts.server_pids);
    let expected_total = connected * (opts.events as u64 - rejected);
    let cpu = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    let per_conn = rss_before
        .zip(rss_subscribed)
        .filter(|_| connected > 0)
        .map(|(a, b)| (b.saturating_sub(a)) as f64 / connected as f64);
    Ok(json!({
        "scenario": "fanout",
        "stalled_clients": stalled.len(),
        "connections": {"requested": opts.connections, "connected": connected, "errors": connect_errors,
                         "seconds": connect_secs, "per_second": connected as f64 / connect_secs},
        "server_rss_bytes": {"before": rss_before, "subscribed": rss_subscribed, "per_idle_subscribed_connection": per_conn},
        "events": {"triggered": opts.events, "rejected": rejected, "rate_per_second": opts.rate,
                   "payload_bytes": opts.payload_bytes, "trigger_seconds": trigger_secs},
        "deliveries": {"expected": expected_total, "delivered": delivered,
                       "lost": expected_total.saturating_sub(delivered),
                       "per_second": delivered as f64 / deliver_secs},
        "latency_ms": {"p50": all.value_at_quantile(0.50) as f64 / 1000.0, "p90": all.value_at_quantile(0.90) as f64 / 1000.0,
                       "p99": all.value_at_quantile(0.99) as f64 / 1000.0, "max": all.max() as f64 / 1000.0},
        "server_cpu": {"seconds": cpu, "us_per_delivered_message": cpu.filter(|_| delivered > 0).map(|c| c * 1e6 / delivered as f64)},
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
}
