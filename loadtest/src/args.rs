//! Command-line options: `--name value` pairs with defaults.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::net::SocketAddr;

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
    /// Triggers per second over all API connections; 0 triggers as fast as the API answers.
    pub rate: f64,
    /// Channels the subscribers and the events are spread over (`{channel}-{i % channels}`
    /// when more than one).
    pub channels: usize,
    /// Concurrent trigger loops, each with its own keep-alive HTTP connection.
    pub api_connections: usize,
    /// Local addresses 127.0.0.2… the WebSocket connections bind to in turn (0: the kernel
    /// chooses); at most [`MAX_SOURCE_IPS`].
    pub source_ips: usize,
    /// The first of those addresses (127.0.0.2 unless given): generators running side by side
    /// take distinct ranges, or they would share (and exhaust) one address's ports.
    pub source_base: Ipv4Addr,
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
    /// Connections opened and closed before the first RSS reading (see `fanout::run`).
    pub warmup: usize,
}

/// Source addresses 127.0.0.2 to 127.0.0.251.
pub const MAX_SOURCE_IPS: usize = 250;

pub const USAGE: &str =
    "usage: loadgen fanout [--server 127.0.0.1:6001[,HOST:PORT…]] [--api HOST:PORT]
  [--app-id app-id] [--key app-key]
  [--secret app-secret] [--connections 1000] [--channel load] [--channels 1] [--events 100]
  [--rate 10] [--api-connections 1] [--payload-bytes 100] [--connect-concurrency 200]
  [--source-ips 0] [--source-base 127.0.0.2] [--server-pid PID[,PID…]] [--drain-secs 5]
  [--settle-secs 2] [--stalled 0] [--warmup 0]
Opens the connections (spread over the --server addresses in turn) in two halves, each
followed by --settle-secs idle and an RSS reading, subscribes each to a channel, triggers
timed events through the HTTP API and prints one JSON object: connect rate and server CPU per
connection, RSS per idle subscribed connection (total and marginal: the second half's slope),
deliveries per second, latency percentiles, losses, server CPU per delivered message.
  --channels N         subscriber i joins {channel}-{i % N} and event j goes to
                       {channel}-{j % N}; with N = 1 everything uses {channel}.
  --rate R             triggers per second in total; 0: as fast as the API answers.
  --api-connections K  K trigger loops, each on its own keep-alive HTTP connection, taking
                       the next event from one shared sequence. With --rate R each loop
                       ticks at R/K, the loops' ticks staggered by 1/R.
  --source-ips N       connection i binds to the address --source-base + (i % N) before
                       connecting (1 to 250; 0: the kernel chooses), to get past the ~28,000
                       ephemeral ports of one source address. IPv4 loopback servers only.
  --source-base A      the first source address (default 127.0.0.2; within 127.0.0.0/8).
  --warmup N           open and close N connections before the first RSS reading, so memory
                       the server takes once is not counted per connection (default 0).";

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
            channels: take("channels", "1").parse().context("--channels")?,
            api_connections: take("api-connections", "1")
                .parse()
                .context("--api-connections")?,
            source_ips: take("source-ips", "0").parse().context("--source-ips")?,
            source_base: take("source-base", "127.0.0.2")
                .parse()
                .context("--source-base")?,
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
            warmup: take("warmup", "0").parse().context("--warmup")?,
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
        if !opts.rate.is_finite() || opts.rate < 0.0 {
            bail!("--rate must be a number, 0 or more");
        }
        if opts.channels == 0 {
            bail!("--channels must be at least 1");
        }
        if opts.api_connections == 0 {
            bail!("--api-connections must be at least 1");
        }
        if opts.source_ips > MAX_SOURCE_IPS {
            bail!("--source-ips must be at most {MAX_SOURCE_IPS}");
        }
        let last = u32::from(opts.source_base).checked_add(opts.source_ips.max(1) as u32 - 1);
        if !opts.source_base.is_loopback() || !last.is_some_and(|l| Ipv4Addr::from(l).is_loopback())
        {
            bail!("--source-base and the --source-ips addresses after it must be in 127.0.0.0/8");
        }
        if opts.source_ips > 0 {
            // Names are resolved (and checked) when connecting; addresses can be checked now.
            for server in &opts.servers {
                if let Ok(addr) = server.parse::<SocketAddr>() {
                    if !is_v4_loopback(&addr) {
                        bail!("--source-ips needs IPv4 loopback servers, not {server}");
                    }
                }
            }
        }
        Ok(opts)
    }
}

pub fn is_v4_loopback(addr: &SocketAddr) -> bool {
    matches!(addr, SocketAddr::V4(a) if a.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::Options;

    fn parse(args: &str) -> anyhow::Result<Options> {
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        Options::parse(&args)
    }

    fn error(args: &str) -> String {
        match parse(args) {
            Ok(opts) => panic!("{args:?} parsed: {opts:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn defaults() {
        let opts = parse("").expect("defaults");
        assert_eq!(opts.channels, 1);
        assert_eq!(opts.api_connections, 1);
        assert_eq!(opts.source_ips, 0);
        assert!((opts.rate - 10.0).abs() < f64::EPSILON);
        assert_eq!(opts.servers, ["127.0.0.1:6001"]);
        assert_eq!(opts.api, "127.0.0.1:6001");
    }

    #[test]
    fn new_options() {
        let opts = parse(
            "--server 127.0.0.1:7611 --channels 100 --rate 0 --api-connections 4 --source-ips 250",
        )
        .expect("valid");
        assert_eq!(opts.channels, 100);
        assert_eq!(opts.rate, 0.0);
        assert_eq!(opts.api_connections, 4);
        assert_eq!(opts.source_ips, 250);
        // Host names are checked when connecting.
        assert!(parse("--server localhost:7611 --source-ips 2").is_ok());
    }

    #[test]
    fn rejects_bad_values() {
        assert!(error("--channels 0").contains("--channels"));
        assert!(error("--channels -1").contains("--channels"));
        assert!(error("--channels x").contains("--channels"));
        assert!(error("--api-connections 0").contains("--api-connections"));
        assert!(error("--source-ips 251").contains("at most 250"));
        assert!(error("--source-ips x").contains("--source-ips"));
        assert!(error("--source-base 10.0.0.1").contains("127.0.0.0/8"));
        assert!(error("--source-base 127.255.255.250 --source-ips 10").contains("127.0.0.0/8"));
        assert!(parse("--source-base 127.0.3.1 --source-ips 4").is_ok());
        assert!(error("--rate -1").contains("--rate"));
        assert!(error("--rate NaN").contains("--rate"));
        assert!(error("--rate inf").contains("--rate"));
        assert!(error("--server [::1]:7611 --source-ips 2").contains("IPv4 loopback"));
        assert!(error("--server 10.0.0.1:7611 --source-ips 2").contains("IPv4 loopback"));
        assert!(error("--channels").contains("needs a value"));
        assert!(error("--chanels 2").contains("unknown option --chanels"));
    }
}
