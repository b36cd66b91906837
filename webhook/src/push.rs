//! Enqueueing a webhook with a few quick retries: the first command on a connection to a
//! restarted Redis fails (broken pipe) while the connection manager reconnects, and a failover
//! takes a moment; dropping a membership webhook for that would lose it for good.

use std::time::Duration;

use crate::{QueueError, WebhookJob, WebhookSink};

/// Pauses before each retry: about 1.5 s in all, short enough for a caller on a request path.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1000),
];

/// Pushes `job`, retrying a failed push up to three times; the last error otherwise.
pub async fn push_with_retry(queue: &dyn WebhookSink, job: WebhookJob) -> Result<(), QueueError> {
    let mut last = match queue.push(job.clone()).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    for pause in BACKOFF {
        tokio::time::sleep(pause).await;
        match queue.push(job.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}
