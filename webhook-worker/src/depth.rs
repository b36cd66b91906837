//! The queue-depth gauge, sampled every few seconds rather than per job: asking the backend
//! costs a round trip (XLEN, GetQueueAttributes).

use std::sync::Arc;
use std::time::Duration;

use switchyard_telemetry::metrics;
use tokio_util::sync::CancellationToken;

use crate::WebhookQueue;

const EVERY: Duration = Duration::from_secs(5);

/// Samples `queue`'s depth into the gauge until `shutdown`; stops at once if the backend
/// cannot tell.
pub(crate) async fn sample(queue: Arc<dyn WebhookQueue>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match queue.depth().await {
            Ok(Some(depth)) => metrics::process()
                .webhook_queue_depth
                .set(i64::try_from(depth).unwrap_or(i64::MAX)),
            Ok(None) => break,
            Err(e) => tracing::debug!(error = %e, "webhook queue depth unavailable"),
        }
    }
}
