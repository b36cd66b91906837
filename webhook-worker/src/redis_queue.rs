//! The distributed mode's queue: one Redis stream, one consumer group shared by every worker.
//!
//! push = `XADD` with an approximate `MAXLEN`; pull = `XAUTOCLAIM` of entries whose lease went
//! stale, then `XREADGROUP ... BLOCK` for new ones; ack = `XACK` + `XDEL`, so the stream only
//! holds work that is still owed. A worker renews its own leases (`XCLAIM ... JUSTID`) while
//! it holds them, so `reclaim_after` is "how long after a worker dies", not "how long a
//! delivery may take": retrying a dead receiver for five minutes is not mistaken for a crash.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{FromRedisValue, RedisResult};

use crate::{LeaseId, Leased, QueueError, WebhookJob, WebhookQueue, WebhookSink};

pub const DEFAULT_STREAM_KEY: &str = "switchyard:webhooks";
pub const DEFAULT_GROUP: &str = "webhook-workers";
/// The stream entry field holding the job as JSON.
const JOB_FIELD: &str = "job";
/// Ids per `XCLAIM` when renewing, to keep each command small.
const RENEW_CHUNK: usize = 500;

#[derive(Debug, Clone)]
pub struct RedisQueueConfig {
    pub stream_key: String,
    pub group: String,
    /// This worker's name in the group; unique per process (say host and pid), since leases
    /// are held by name.
    pub consumer: String,
    /// A leased entry not renewed for this long belongs to a dead worker and is handed out
    /// again. Renewal runs at a third of it.
    pub reclaim_after: Duration,
    /// Approximate cap on the stream's length. A backstop for memory when no worker runs for a
    /// long time: beyond it the oldest jobs are trimmed, i.e. lost.
    pub max_len: usize,
    /// Bound on each Redis call (a blocking pull gets its wait on top).
    pub command_timeout: Duration,
}

impl RedisQueueConfig {
    pub fn new(stream_key: &str, group: &str, consumer: &str) -> RedisQueueConfig {
        RedisQueueConfig {
            stream_key: stream_key.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            reclaim_after: Duration::from_secs(60),
            max_len: 1_000_000,
            command_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`WebhookQueue`] on Redis Streams. Producers (core, edges) and the worker each connect
/// their own; dropping a worker's queue stops renewing its leases, which is how a stopped
/// worker's unfinished jobs get back to the others.
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisQueueConfig,
    /// Push, ack, claim: short commands.
    commands: ConnectionManager,
    /// `XREADGROUP BLOCK` only. A blocked command holds its connection until it returns, so on
    /// the shared multiplexed connection every push and ack would queue behind it.
    reads: ConnectionManager,
    /// Ids pulled here and not yet acked: the leases to renew.
    leases: Mutex<HashSet<String>>,
    /// Where the next `XAUTOCLAIM` scan resumes, so entries deep in the pending list are
    /// reached even when the head is full of live leases.
    reclaim_cursor: Mutex<String>,
}

impl RedisQueue {
    /// Connects with the default reclaim timeout (60 s), length cap and command timeout.
    pub async fn connect(
        url: &str,
        stream_key: &str,
        group: &str,
        consumer: &str,
    ) -> Result<RedisQueue, QueueError> {
        RedisQueue::connect_with(url, RedisQueueConfig::new(stream_key, group, consumer)).await
    }

    /// Connects both connections and creates the group (and the stream) if missing.
    pub async fn connect_with(
        url: &str,
        config: RedisQueueConfig,
    ) -> Result<RedisQueue, QueueError> {
        let client = redis::Client::open(url).map_err(|e| unavailable("url", e))?;
        let limit = config.command_timeout;
        let commands = bounded(
            limit,
            "connect",
            manager(client.clone(), limit, Some(limit)),
        )
        .await?;
        // The blocking connection gets no response timeout of its own: each read is bounded
        // by its wait plus `command_timeout` here instead.
        let reads = bounded(limit, "connect", manager(client, limit, None)).await?;
        let renew_every = (config.reclaim_after / 3).max(Duration::from_millis(50));
        let inner = Arc::new(Inner {
            config,
            commands,
            reads,
            leases: Mutex::new(HashSet::new()),
            reclaim_cursor: Mutex::new("0-0".into()),
        });
        inner.create_group().await?;
        tokio::spawn(renew_leases(Arc::downgrade(&inner), renew_every));
        Ok(RedisQueue { inner })
    }
}

async fn manager(
    client: redis::Client,
    connect_timeout: Duration,
    response_timeout: Option<Duration>,
) -> RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(response_timeout)
        .set_number_of_retries(2);
    ConnectionManager::new_with_config(client, config).await
}

#[async_trait]
impl WebhookSink for RedisQueue {
    async fn push(&self, job: WebhookJob) -> Result<(), QueueError> {
        let json = serde_json::to_string(&job)
            .map_err(|e| QueueError::Unavailable(format!("encode webhook job: {e}")))?;
        let c = &self.inner.config;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&c.stream_key)
            .arg("MAXLEN")
            .arg("~")
            .arg(c.max_len)
            .arg("*")
            .arg(JOB_FIELD)
            .arg(json);
        let _id: String = self
            .inner
            .query(&cmd, false, Duration::ZERO, "XADD")
            .await?;
        Ok(())
    }
}

#[async_trait]
impl WebhookQueue for RedisQueue {
    async fn pull(&self, max: usize, wait: Duration) -> Result<Vec<Leased>, QueueError> {
        let max = max.max(1);
        let mut entries = self.inner.reclaim(max).await?;
        if entries.is_empty() {
            entries = self.inner.read_new(max, wait).await?;
        } else if entries.len() < max {
            // Never block with reclaimed jobs in hand: they are already late. Nor lose them to
            // a failed extra read (they would wait out another reclaim timeout); a lasting
            // failure shows on the next pull.
            if let Ok(more) = self
                .inner
                .read_new(max - entries.len(), Duration::ZERO)
                .await
            {
                entries.extend(more);
            }
        }
        Ok(self.inner.decode(entries).await)
    }

    async fn ack(&self, id: &LeaseId) -> Result<(), QueueError> {
        self.inner.ack(id.as_str()).await
    }

    /// The stream's length: acked entries are deleted, so this is waiting plus leased.
    async fn depth(&self) -> Result<Option<u64>, QueueError> {
        let c = &self.inner.config;
        let mut conn = self.inner.commands.clone();
        let mut cmd = redis::cmd("XLEN");
        cmd.arg(&c.stream_key);
        let len: u64 = bounded(c.command_timeout, "XLEN", async move {
            cmd.query_async(&mut conn).await
        })
        .await?;
        Ok(Some(len))
    }
}

impl Inner {
    async fn create_group(&self) -> Result<(), QueueError> {
        let c = &self.config;
        let mut cmd = redis::cmd("XGROUP");
        // From id 0, not `$`: jobs pushed before any worker started are owed too.
        cmd.arg("CREATE")
            .arg(&c.stream_key)
            .arg(&c.group)
            .arg("0")
            .arg("MKSTREAM");
        let mut conn = self.commands.clone();
        let created = bounded(c.command_timeout, "XGROUP CREATE", async move {
            match cmd.query_async::<()>(&mut conn).await {
                Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                other => other,
            }
        });
        created.await
    }

    /// Runs one command on the short-command connection (or, when `blocking`, the read
    /// connection, allowing `wait` on top of the timeout). A missing group means the stream
    /// was deleted since we connected: recreate it and try once more.
    async fn query<T: FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        blocking: bool,
        wait: Duration,
        what: &str,
    ) -> Result<T, QueueError> {
        let mut conn = if blocking {
            self.reads.clone()
        } else {
            self.commands.clone()
        };
        let limit = self.config.command_timeout + wait;
        match tokio::time::timeout(limit, cmd.query_async::<T>(&mut conn)).await {
            Ok(Err(e)) if e.code() == Some("NOGROUP") => {
                self.create_group().await?;
                bounded(limit, what, cmd.query_async(&mut conn)).await
            }
            Ok(result) => result.map_err(|e| unavailable(what, e)),
            Err(_) => Err(timed_out(what, limit)),
        }
    }

    /// Takes over entries whose lease has not been renewed for `reclaim_after`.
    async fn reclaim(&self, max: usize) -> Result<Vec<StreamId>, QueueError> {
        let c = &self.config;
        let cursor = lock(&self.reclaim_cursor).clone();
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(&c.stream_key)
            .arg(&c.group)
            .arg(&c.consumer)
            .arg(c.reclaim_after.as_millis() as u64)
            .arg(cursor)
            .arg("COUNT")
            .arg(max);
        let reply: StreamAutoClaimReply = self
            .query(&cmd, false, Duration::ZERO, "XAUTOCLAIM")
            .await?;
        *lock(&self.reclaim_cursor) = reply.next_stream_id;
        if !reply.claimed.is_empty() {
            tracing::warn!(
                count = reply.claimed.len(),
                "webhook jobs reclaimed from a worker that stopped renewing them"
            );
        }
        Ok(reply.claimed)
    }

    async fn read_new(&self, max: usize, wait: Duration) -> Result<Vec<StreamId>, QueueError> {
        let c = &self.config;
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&c.group)
            .arg(&c.consumer)
            .arg("COUNT")
            .arg(max);
        let block_ms = wait.as_millis() as u64;
        // `BLOCK 0` would mean forever; no wait means do not block at all.
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(&c.stream_key).arg(">");
        let reply: Option<StreamReadReply> = self.query(&cmd, true, wait, "XREADGROUP").await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Turns entries into leases; an entry that is not a job is logged and acked, since no
    /// worker will ever be able to deliver it and it would otherwise be reclaimed forever.
    async fn decode(&self, entries: Vec<StreamId>) -> Vec<Leased> {
        let mut leased = Vec::with_capacity(entries.len());
        for entry in entries {
            match parse(&entry) {
                Ok(job) => leased.push(Leased {
                    id: LeaseId::new(entry.id),
                    job,
                }),
                Err(reason) => {
                    tracing::error!(stream = %self.config.stream_key, id = %entry.id, %reason, "malformed webhook queue entry dropped");
                    if let Err(e) = self.ack(&entry.id).await {
                        tracing::warn!(id = %entry.id, error = %e, "could not ack malformed entry");
                    }
                }
            }
        }
        lock(&self.leases).extend(leased.iter().map(|l| l.id.as_str().to_owned()));
        leased
    }

    async fn ack(&self, id: &str) -> Result<(), QueueError> {
        // Stop renewing first: should the ack fail, the entry then goes back to the group
        // after `reclaim_after` and is delivered again, rather than being held forever.
        lock(&self.leases).remove(id);
        let c = &self.config;
        let mut pipe = redis::pipe();
        pipe.cmd("XACK")
            .arg(&c.stream_key)
            .arg(&c.group)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(&c.stream_key)
            .arg(id)
            .ignore();
        let mut conn = self.commands.clone();
        bounded(c.command_timeout, "XACK", async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    async fn renew(&self) {
        let ids: Vec<String> = lock(&self.leases).iter().cloned().collect();
        let c = &self.config;
        for chunk in ids.chunks(RENEW_CHUNK) {
            let mut cmd = redis::cmd("XCLAIM");
            // Min idle 0 to ourselves resets the idle clock; JUSTID leaves the delivery count.
            cmd.arg(&c.stream_key)
                .arg(&c.group)
                .arg(&c.consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID");
            if let Err(e) = self
                .query::<redis::Value>(&cmd, false, Duration::ZERO, "XCLAIM")
                .await
            {
                tracing::warn!(error = %e, "could not renew webhook leases; they may be redelivered");
            }
        }
    }
}

/// Renews this worker's leases until the queue is dropped.
async fn renew_leases(inner: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.renew().await;
    }
}

fn parse(entry: &StreamId) -> Result<WebhookJob, String> {
    let raw: Vec<u8> = entry
        .get(JOB_FIELD)
        .ok_or_else(|| format!("no `{JOB_FIELD}` field"))?;
    serde_json::from_slice(&raw).map_err(|e| format!("not a webhook job: {e}"))
}

/// The sets and cursor are plain data, consistent after any panic; a poisoned lock is fine.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn bounded<T>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, QueueError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(|e| unavailable(what, e)),
        Err(_) => Err(timed_out(what, limit)),
    }
}

fn unavailable(what: &str, e: redis::RedisError) -> QueueError {
    QueueError::Unavailable(format!("redis {what}: {e}"))
}

fn timed_out(what: &str, limit: Duration) -> QueueError {
    QueueError::Unavailable(format!("redis {what}: no answer within {limit:?}"))
}
