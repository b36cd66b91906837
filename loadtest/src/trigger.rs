//! Triggering the fan-out scenario's events: `--api-connections` loops, each on its own
//! keep-alive HTTP connection, taking the next sequence number from one shared counter.
//!
//! With `--rate R` each of the K loops ticks at R/K, loop k's first tick k/R after the start,
//! so the ticks of all loops together come every 1/R. A loop that falls behind catches up in
//! a burst (tokio's default for missed ticks). With `--rate 0` there is no ticker: each loop
//! sends its next event as soon as the previous one was answered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::args::Options;
use crate::http::Api;

pub const EVENT: &str = "load-event";

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The index of the channel subscriber or event `i` uses, out of `channels`.
pub fn channel_index(i: usize, channels: usize) -> usize {
    i % channels.max(1)
}

/// The name of channel `index`: the base name alone when there is one channel.
pub fn channel_name(base: &str, channels: usize, index: usize) -> String {
    if channels <= 1 {
        base.to_owned()
    } else {
        format!("{base}-{index}")
    }
}

/// Events sent to each channel when `events` are spread over `channels` in turn.
pub fn events_per_channel(events: usize, channels: usize) -> Vec<u64> {
    let mut counts = vec![0u64; channels.max(1)];
    for seq in 0..events {
        counts[channel_index(seq, channels)] += 1;
    }
    counts
}

/// Deliveries owed: every subscriber gets every accepted event of its channel.
pub fn expected_deliveries(subscribers: &[u64], accepted: &[u64]) -> u64 {
    subscribers.iter().zip(accepted).map(|(s, a)| s * a).sum()
}

/// What the trigger loops did.
pub struct Triggered {
    /// Events the API answered 200, per channel index.
    pub accepted: Vec<u64>,
    /// Events answered with another status.
    pub rejected: u64,
    /// When the first loop started (after the HTTP connections were open).
    pub started: Instant,
    /// From the start to the last answer.
    pub seconds: f64,
}

impl Triggered {
    fn new(channels: usize, started: Instant) -> Triggered {
        Triggered {
            accepted: vec![0; channels.max(1)],
            rejected: 0,
            started,
            seconds: 0.0,
        }
    }

    pub fn accepted_total(&self) -> u64 {
        self.accepted.iter().sum()
    }
}

/// Sends `opts.events` events through `opts.api_connections` connections.
pub async fn run(opts: &Options) -> anyhow::Result<Triggered> {
    let loops = opts.api_connections.max(1);
    let mut apis = Vec::with_capacity(loops);
    for _ in 0..loops {
        apis.push(Api::connect(&opts.api, &opts.app_id, &opts.key, &opts.secret).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let padding: Arc<str> = "x".repeat(opts.payload_bytes.saturating_sub(40)).into();
    let start = Instant::now();
    let tasks: Vec<_> = apis
        .into_iter()
        .enumerate()
        .map(|(k, api)| {
            let ticker = (opts.rate > 0.0).then(|| {
                let first = start + Duration::from_secs_f64(k as f64 / opts.rate);
                let period = Duration::from_secs_f64(loops as f64 / opts.rate);
                tokio::time::interval_at(first.into(), period)
            });
            let lane = Lane {
                api,
                ticker,
                next: next.clone(),
                padding: padding.clone(),
                opts: opts.clone(),
            };
            tokio::spawn(lane.run())
        })
        .collect();
    let mut total = Triggered::new(opts.channels, start);
    let mut failure = None;
    for task in tasks {
        match task.await? {
            Ok(one) => {
                for (sum, n) in total.accepted.iter_mut().zip(&one.accepted) {
                    *sum += n;
                }
                total.rejected += one.rejected;
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    total.seconds = start.elapsed().as_secs_f64();
    Ok(total)
}

/// One trigger loop.
struct Lane {
    api: Api,
    ticker: Option<tokio::time::Interval>,
    next: Arc<AtomicUsize>,
    padding: Arc<str>,
    opts: Options,
}

impl Lane {
    async fn run(mut self) -> anyhow::Result<Triggered> {
        let opts = &self.opts;
        let mut done = Triggered::new(opts.channels, Instant::now());
        loop {
            if let Some(ticker) = &mut self.ticker {
                ticker.tick().await;
            }
            let seq = self.next.fetch_add(1, Ordering::Relaxed);
            if seq >= opts.events {
                return Ok(done);
            }
            let index = channel_index(seq, opts.channels);
            let channel = channel_name(&opts.channel, opts.channels, index);
            let data = json!({"seq": seq, "t": now_us(), "pad": &*self.padding}).to_string();
            let body = json!({"name": EVENT, "channel": channel, "data": data}).to_string();
            if self.api.trigger(body).await? == 200 {
                done.accepted[index] += 1;
            } else {
                done.rejected += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_channels() {
        assert_eq!(channel_name("load", 1, 0), "load");
        assert_eq!(channel_name("load", 3, 0), "load-0");
        assert_eq!(channel_name("load", 3, 2), "load-2");
        let names: Vec<_> = (0..5)
            .map(|i| channel_name("c", 2, channel_index(i, 2)))
            .collect();
        assert_eq!(names, ["c-0", "c-1", "c-0", "c-1", "c-0"]);
        assert_eq!(channel_index(7, 1), 0);
    }

    #[test]
    fn spreads_events_over_channels() {
        assert_eq!(events_per_channel(10, 1), [10]);
        assert_eq!(events_per_channel(10, 3), [4, 3, 3]);
        assert_eq!(events_per_channel(2, 4), [1, 1, 0, 0]);
        assert_eq!(events_per_channel(0, 2), [0, 0]);
    }

    #[test]
    fn expects_each_channels_accepted_events_per_subscriber() {
        // 3 channels; 10 events sent (4, 3, 3); one rejected on channel 1.
        let subscribers = [34, 33, 32];
        let accepted = [4, 2, 3];
        assert_eq!(
            expected_deliveries(&subscribers, &accepted),
            34 * 4 + 33 * 2 + 32 * 3
        );
        assert_eq!(expected_deliveries(&[1000], &[2000]), 2_000_000);
        assert_eq!(expected_deliveries(&[0, 5], &[7, 0]), 0);
    }
}
