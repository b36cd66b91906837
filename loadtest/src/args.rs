//! Command-line options: `--name value` pairs with defaults.

use std::collections::HashMap;

use anyhow::{bail, Context};

#[derive(Debug, Clone)]
pub struct Options {
    /// WebSocket addresses, `host:port`; connections are spread over them in turn (edges).
    pub servers: Vec<String>,
    /// The HTTP API's address; defaults to the first WebSocket address (embedded mode).
    pub api: String,
    pub app_id: String,
    pub key: String,
    pub secret: String,
    pub connections: usize,
    pub channel: String,
    /// Events to trigger after every connection has subscribed.
    pub events: usize,
    /// Triggers per second.
    pub rate: f64,
    pub payload_bytes: usize,
    /// Connections opened concurrently while ramping up.
    pub connect_concurrency: usize,
    /// The server's process ids, for RSS and CPU time from /proc (comma-separated).
    pub server_pids: Vec<u32>,
    /// Seconds to wait for the last deliveries after the last trigger.
    pub drain_secs: u64,
    /// Seconds to hold the subscribed connections idle before measuring RSS.
    pub settle_secs: u64,
    /// Extra subscribers that never read after subscribing (stalled clients): the others'
    /// figures show whether they slow anyone else down.
    pub stalled: usize,
}

pub const USAGE: &str =
    "usage: loadgen fanout [--server 127.0.0.1:6001[,HOST:PORT…]] [--api HOST:PORT]
  [--app-id app-id] [--key app-key]
  [--secret app-secret] [--connections 1000] [--channel load] [--events 100] [--rate 10]
  [--payload-bytes 100] [--connect-concurrency 200] [--server-pid PID[,PID…]]
  [--drain-secs 5] [--settle-secs 2] [--stalled 0]
Opens the connections (spread over the --server addresses in turn), subscribes each to one channel, triggers timed events through the
HTTP API and prints one JSON object: connect rate, RSS per idle subscribed connection,
deliveries per second, latency percentiles, losses, server CPU per delivered message.";

impl Options {
    pub fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let Some(name) = flag.strip_prefix("--") else {
                bail!("unexpected argument {flag:?}");
            };
            let value = it
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            map.insert(name.to_owned(), value.clone());
        }
        let mut take =
            |name: &str, default: &str| map.remove(name).unwrap_or_else(|| default.to_owned());
        let opts = Options {
            servers: take("server", "127.0.0.1:6001")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            api: take("api", ""),
            app_id: take("app-id", "app-id"),
            key: take("key", "app-key"),
            secret: take("secret", "app-secret"),
            connections: take("connections", "1000")
                .parse()
                .context("--connections")?,
            channel: take("channel", "load"),
            events: take("events", "100").parse().context("--events")?,
            rate: take("rate", "10").parse().context("--rate")?,
            payload_bytes: take("payload-bytes", "100")
                .parse()
                .context("--payload-bytes")?,
            connect_concurrency: take("connect-concurrency", "200")
                .parse()
                .context("--connect-concurrency")?,
            server_pids: take("server-pid", "")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().context("--server-pid"))
                .collect::<anyhow::Result<_>>()?,
            drain_secs: take("drain-secs", "5").parse().context("--drain-secs")?,
            settle_secs: take("settle-secs", "2").parse().context("--settle-secs")?,
            stalled: take("stalled", "0").parse().context("--stalled")?,
        };
        let mut opts = opts;
        if opts.api.is_empty() {
            opts.api = opts.servers.first().cloned().unwrap_or_default();
        }
        if opts.servers.is_empty() {
            bail!("--server needs at least one address");
        }
        if let Some(unknown) = map.keys().next() {
            bail!("unknown option --{unknown}");
        }
        if opts.rate <= 0.0 {
            bail!("--rate must be positive");
        }
        Ok(opts)
    }
}
