//! A latency histogram with fixed buckets: an observation is a bucket search over 16 bounds and
//! three relaxed atomic adds, no lock and no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds in microseconds, 100 µs to 10 s: fan-out, gRPC and Redis latencies all fit.
pub(crate) const BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

#[derive(Default)]
pub struct Histogram {
    /// Per bucket, not cumulative; the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        self.observe_us(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn observe_us(&self, us: u64) {
        if !super::enabled() {
            return;
        }
        let i = BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(BOUNDS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Cumulative counts per bound (the last is `+Inf`, the total), and the sum in seconds.
    pub(crate) fn snapshot(&self) -> ([u64; BOUNDS_US.len() + 1], f64) {
        let mut out = [0; BOUNDS_US.len() + 1];
        let mut running = 0u64;
        for (slot, bucket) in out.iter_mut().zip(&self.buckets) {
            running += bucket.load(Ordering::Relaxed);
            *slot = running;
        }
        (out, self.sum_us.load(Ordering::Relaxed) as f64 / 1e6)
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.snapshot().0[BOUNDS_US.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_with_inf_last() {
        let h = Histogram::default();
        h.observe_us(50);
        h.observe_us(100);
        h.observe_us(101);
        h.observe(Duration::from_secs(60));
        let (counts, sum) = h.snapshot();
        assert_eq!(counts[0], 2, "<= 100 µs");
        assert_eq!(counts[1], 3, "<= 250 µs");
        assert_eq!(counts[BOUNDS_US.len() - 1], 3, "<= 10 s");
        assert_eq!(counts[BOUNDS_US.len()], 4, "+Inf");
        assert_eq!(h.count(), 4);
        assert!((sum - 60.000251).abs() < 1e-9);
    }
}
