//! The queue on Amazon SQS (or anything speaking its API): one standard queue shared by every
//! worker, with an optional dead-letter queue behind it.
//!
//! push = `SendMessage`; pull = `ReceiveMessage` with long polling and the configured visibility
//! timeout; ack = `DeleteMessage`. A worker extends the visibility of the messages it holds
//! (`ChangeMessageVisibilityBatch`) until it acks them, so `visibility_timeout` is "how long
//! after a worker dies", not "how long a delivery may take". Only a worker that dies (or drops
//! its queue) lets a message become visible again, and each such redelivery counts towards the
//! dead-letter queue's `max_receive_count`: a job that keeps killing workers ends up there.
//!
//! The lease id is the SQS `MessageId`, which stays the same across redeliveries, so the
//! receiver-facing idempotency key does too. The receipt handle needed to delete or extend a
//! message changes with every receive; it is kept here, beside the lease, which is why a lease
//! is acked through the queue that pulled it.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, Message, QueueAttributeName};
use aws_sdk_sqs::Client;

use crate::{LeaseId, Leased, QueueError, WebhookJob, WebhookQueue, WebhookSink};

mod provision;

/// SQS's limits: messages per receive or batch, seconds of long polling, visibility timeout.
const MAX_BATCH: usize = 10;
const MAX_WAIT_SECONDS: u64 = 20;
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

#[derive(Debug, Clone)]
pub struct SqsQueueConfig {
    /// The queue's name; it is created if missing. Unused when `queue_url` is set.
    pub queue_name: String,
    /// An existing queue (say one managed by infrastructure code), used as it is.
    pub queue_url: Option<String>,
    /// Another endpoint than AWS's, e.g. `http://127.0.0.1:9324` for a local SQS-compatible
    /// server. With it, and no `AWS_ACCESS_KEY_ID` in the environment, the static credentials
    /// `test`/`test` are used rather than the default chain, which would probe the cloud's
    /// metadata endpoints.
    pub endpoint_url: Option<String>,
    pub region: String,
    /// A message held by a worker that stopped extending it becomes visible to the others
    /// after this long (whole seconds, 1 s to 12 h). Extension runs at a third of it; SQS
    /// stops it 12 hours after a message was received, and the message is then redelivered.
    pub visibility_timeout: Duration,
    /// A queue (by name, created if missing) where SQS moves a message received more than
    /// `max_receive_count` times, i.e. one whose workers kept dying before acking it.
    pub dead_letter_queue: Option<String>,
    pub max_receive_count: u32,
    /// Bound on each SQS call (a long poll gets its wait on top), SDK retries included.
    pub command_timeout: Duration,
}

impl SqsQueueConfig {
    pub fn new(queue_name: &str, region: &str) -> SqsQueueConfig {
        SqsQueueConfig {
            queue_name: queue_name.to_owned(),
            queue_url: None,
            endpoint_url: None,
            region: region.to_owned(),
            visibility_timeout: Duration::from_secs(60),
            dead_letter_queue: None,
            max_receive_count: 5,
            command_timeout: Duration::from_secs(10),
        }
    }
}

/// A [`WebhookQueue`] on SQS. Dropping a worker's queue stops extending its messages, which is
/// how a stopped worker's unfinished jobs get back to the others.
pub struct SqsQueue {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    url: String,
    visibility_seconds: i32,
    command_timeout: Duration,
    /// Message id → latest receipt handle, for messages pulled here and not yet acked.
    leases: Mutex<HashMap<String, String>>,
}

impl SqsQueue {
    /// Builds the client, creates the queues if asked to and starts extending leases.
    pub async fn connect(config: SqsQueueConfig) -> Result<SqsQueue, QueueError> {
        let client = provision::client(&config).await;
        let limit = config.command_timeout;
        let url = provision::queue_url(&client, &config).await?;
        let visibility = config
            .visibility_timeout
            .clamp(Duration::from_secs(1), MAX_VISIBILITY);
        let inner = Arc::new(Inner {
            client,
            url,
            visibility_seconds: visibility.as_secs() as i32,
            command_timeout: limit,
            leases: Mutex::new(HashMap::new()),
        });
        tokio::spawn(extend_leases(Arc::downgrade(&inner), visibility / 3));
        Ok(SqsQueue { inner })
    }
}

#[async_trait]
impl WebhookSink for SqsQueue {
    async fn push(&self, job: WebhookJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(&job)
            .map_err(|e| QueueError::Unavailable(format!("encode webhook job: {e}")))?;
        let inner = &self.inner;
        let send = inner
            .client
            .send_message()
            .queue_url(&inner.url)
            .message_body(body)
            .send();
        bounded(inner.command_timeout, "SendMessage", send)
            .await
            .map(drop)
    }
}

#[async_trait]
impl WebhookQueue for SqsQueue {
    async fn pull(&self, max: usize, wait: Duration) -> Result<Vec<Leased>, QueueError> {
        let inner = &self.inner;
        let max = max.clamp(1, MAX_BATCH) as i32;
        let wait_seconds = wait_seconds(wait);
        let receive = inner
            .client
            .receive_message()
            .queue_url(&inner.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_seconds as i32)
            .visibility_timeout(inner.visibility_seconds)
            .send();
        let limit = inner.command_timeout + Duration::from_secs(wait_seconds);
        let out = bounded(limit, "ReceiveMessage", receive).await?;
        Ok(inner.decode(out.messages.unwrap_or_default()).await)
    }

    async fn ack(&self, id: &LeaseId) -> Result<(), QueueError> {
        // Stop extending first: should the delete fail, the message becomes visible again
        // after the visibility timeout and is delivered again, rather than held forever.
        let handle = lock(&self.inner.leases).remove(id.as_str());
        match handle {
            Some(handle) => self.inner.delete(&handle).await,
            None => Ok(()),
        }
    }

    /// Visible plus in-flight messages, as SQS approximates them.
    async fn depth(&self) -> Result<Option<u64>, QueueError> {
        let inner = &self.inner;
        let ask = inner
            .client
            .get_queue_attributes()
            .queue_url(&inner.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send();
        let answer = bounded(inner.command_timeout, "GetQueueAttributes", ask).await?;
        let count = |name| {
            answer
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Some(
            count(QueueAttributeName::ApproximateNumberOfMessages)
                + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}

/// SQS long-polls in whole seconds, up to 20. Rounded down so a pull waits at most about
/// `wait`, but never to zero, which would turn a wait into a short poll.
fn wait_seconds(wait: Duration) -> u64 {
    if wait.is_zero() {
        0
    } else {
        wait.as_secs().clamp(1, MAX_WAIT_SECONDS)
    }
}

impl Inner {
    /// Turns messages into leases; a message that is not a job is logged and deleted, since no
    /// worker will ever be able to deliver it and it would otherwise come back forever.
    async fn decode(&self, messages: Vec<Message>) -> Vec<Leased> {
        let mut leased = Vec::with_capacity(messages.len());
        let mut handles = Vec::with_capacity(messages.len());
        for message in messages {
            let (Some(id), Some(handle)) = (message.message_id, message.receipt_handle) else {
                tracing::error!("sqs message without id or receipt handle ignored");
                continue;
            };
            let body = message.body.unwrap_or_default();
            match serde_json::from_str::<WebhookJob>(&body) {
                Ok(job) => {
                    handles.push((id.clone(), handle));
                    leased.push(Leased {
                        id: LeaseId::new(id),
                        job,
                    });
                }
                Err(reason) => {
                    tracing::error!(queue = %self.url, %id, %reason, "malformed webhook queue message dropped");
                    if let Err(e) = self.delete(&handle).await {
                        tracing::warn!(%id, error = %e, "could not delete malformed message");
                    }
                }
            }
        }
        lock(&self.leases).extend(handles);
        leased
    }

    async fn delete(&self, handle: &str) -> Result<(), QueueError> {
        let delete = self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .send();
        match tokio::time::timeout(self.command_timeout, delete).await {
            Ok(Ok(_)) => Ok(()),
            // The message is gone or was handed out again since: nothing of ours to end.
            Ok(Err(e)) if is_code(&e, &["ReceiptHandleIsInvalid"]) => Ok(()),
            Ok(Err(e)) => Err(unavailable("DeleteMessage", e)),
            Err(_) => Err(timed_out("DeleteMessage", self.command_timeout)),
        }
    }

    /// Pushes back the visibility of every message held here, in batches of ten.
    async fn extend(&self) {
        let held: Vec<(String, String)> = lock(&self.leases)
            .iter()
            .map(|(id, handle)| (id.clone(), handle.clone()))
            .collect();
        for chunk in held.chunks(MAX_BATCH) {
            if let Err(e) = self.extend_chunk(chunk).await {
                tracing::warn!(error = %e, "could not extend webhook leases; they may be redelivered");
            }
        }
    }

    async fn extend_chunk(&self, chunk: &[(String, String)]) -> Result<(), QueueError> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(n, (_, handle))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(n.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(self.visibility_seconds)
                    .build()
                    .map_err(|e| QueueError::Unavailable(format!("sqs batch entry: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let change = self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send();
        let out = bounded(self.command_timeout, "ChangeMessageVisibilityBatch", change).await?;
        for failed in out.failed {
            let held = failed.id.parse::<usize>().ok().and_then(|n| chunk.get(n));
            let Some((id, handle)) = held else { continue };
            let mut leases = lock(&self.leases);
            if leases.get(id) != Some(handle) {
                continue; // acked meanwhile
            }
            // A sender fault (the handle expired, or the message was handed out again) will
            // not heal by retrying: forget the lease.
            if failed.sender_fault {
                leases.remove(id);
            }
            drop(leases);
            tracing::warn!(%id, code = %failed.code, "webhook lease not extended; it may be redelivered");
        }
        Ok(())
    }
}

/// Extends this worker's leases until the queue is dropped.
async fn extend_leases(inner: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.extend().await;
    }
}

/// The map is plain data, consistent after any panic; a poisoned lock is fine.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, codes: &[&str]) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| codes.contains(&code))
}

async fn bounded<T, E, R>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<T, QueueError>
where
    E: StdError + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(|e| unavailable(what, e)),
        Err(_) => Err(timed_out(what, limit)),
    }
}

fn unavailable<E, R>(what: &str, e: SdkError<E, R>) -> QueueError
where
    E: StdError + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    // The error and its causes, without the raw response the SDK's own report ends with.
    let mut text = format!("sqs {what}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    QueueError::Unavailable(text)
}

fn timed_out(what: &str, limit: Duration) -> QueueError {
    QueueError::Unavailable(format!("sqs {what}: no answer within {limit:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_map_to_whole_seconds_of_long_polling() {
        assert_eq!(wait_seconds(Duration::ZERO), 0);
        assert_eq!(wait_seconds(Duration::from_millis(300)), 1);
        assert_eq!(wait_seconds(Duration::from_millis(2500)), 2);
        assert_eq!(wait_seconds(Duration::from_secs(60)), 20);
    }
}
