//! Dead letters: the webhook jobs the worker gave up on, kept so an operator can see why and
//! send them again once the receiver is fixed.
//!
//! The store only keeps and forgets letters; [`replay`] is the one place that moves a letter
//! back onto the [`WebhookQueue`], so the memory and Redis stores replay the same way.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{QueueError, WebhookJob, WebhookQueue};

/// How many letters a store keeps unless told otherwise; past it the oldest are dropped, so a
/// receiver that stays down for days cannot fill Redis.
pub const DEFAULT_DEAD_LETTER_CAP: usize = 10_000;

/// What is kept about one given-up delivery. Jobs carry no secrets, and neither does this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub job: WebhookJob,
    /// The webhook that failed; `None` when the app itself could not be looked up.
    pub url: Option<String>,
    /// The last attempt's error.
    pub error: String,
    /// When the worker gave up (Unix milliseconds).
    pub failed_at_ms: u64,
}

impl Failure {
    /// A failure stamped now.
    pub fn now(job: WebhookJob, url: Option<&str>, error: impl Into<String>) -> Failure {
        let failed_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Failure {
            job,
            url: url.map(str::to_owned),
            error: error.into(),
            failed_at_ms,
        }
    }
}

/// A kept failure and the id it is listed and replayed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    #[serde(flatten)]
    pub failure: Failure,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead-letter store unavailable: {0}")]
    Unavailable(String),
    #[error("no dead letter with id {0}")]
    NotFound(String),
    /// Replay could not push the job back; the letter is still in the store.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Where given-up jobs are kept: in memory in the embedded mode, in Redis in the distributed.
///
/// Contract: ids are unique within a store and never reused; letters past the store's cap
/// are dropped oldest first; `remove` of an unknown id is not an error.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Keeps `failure` under a new id, which it returns.
    async fn record(&self, failure: Failure) -> Result<String, DeadLetterError>;

    /// The newest `limit` letters, newest first.
    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, DeadLetterError>;

    async fn get(&self, id: &str) -> Result<Option<DeadLetter>, DeadLetterError>;

    /// Forgets `id`; `false` when it was not there (replayed already, or trimmed).
    async fn remove(&self, id: &str) -> Result<bool, DeadLetterError>;
}

/// Which letters to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    One(String),
    /// Every letter present when the replay starts. Letters recorded meanwhile (a replayed job
    /// failing again, say) wait for the next replay, so replaying into a receiver that is
    /// still down ends instead of cycling.
    All,
}

/// Pushes the chosen letters' jobs back onto `queue`, oldest first, and forgets them. Returns
/// the ids replayed.
///
/// Push first, then remove: a crash or a failed remove in between leaves the letter in place
/// and the job may be delivered twice, which at-least-once allows; the other order could lose
/// the job. For the same reason, two concurrent replays of one letter may both push it.
pub async fn replay(
    letters: &dyn DeadLetters,
    queue: &dyn WebhookQueue,
    which: &Replay,
) -> Result<Vec<String>, DeadLetterError> {
    let chosen = match which {
        Replay::One(id) => match letters.get(id).await? {
            Some(letter) => vec![letter],
            None => return Err(DeadLetterError::NotFound(id.clone())),
        },
        Replay::All => {
            let mut all = letters.list(usize::MAX).await?;
            all.reverse();
            all
        }
    };
    let mut replayed = Vec::with_capacity(chosen.len());
    for letter in chosen {
        let mut job = letter.failure.job;
        // Only the webhook that failed gets it again (all of them if the URL is unknown).
        job.only_url = letter.failure.url;
        queue.push(job).await?;
        if let Err(e) = letters.remove(&letter.id).await {
            tracing::warn!(id = %letter.id, error = %e, "dead letter replayed but not removed; a later replay sends it again");
        }
        replayed.push(letter.id);
    }
    Ok(replayed)
}

/// The embedded mode's store: a capped in-process list, gone with the process like the
/// memory queue itself.
pub struct MemoryDeadLetters {
    cap: usize,
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    next_id: u64,
    /// Oldest first.
    letters: VecDeque<DeadLetter>,
}

impl MemoryDeadLetters {
    pub fn new(cap: usize) -> MemoryDeadLetters {
        MemoryDeadLetters {
            cap: cap.max(1),
            inner: Mutex::new(Kept::default()),
        }
    }

    /// Plain data, consistent after any panic: a poisoned lock is fine to reuse.
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryDeadLetters {
    fn default() -> Self {
        MemoryDeadLetters::new(DEFAULT_DEAD_LETTER_CAP)
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn record(&self, failure: Failure) -> Result<String, DeadLetterError> {
        let mut kept = self.kept();
        kept.next_id += 1;
        let id = format!("m-{}", kept.next_id);
        kept.letters.push_back(DeadLetter {
            id: id.clone(),
            failure,
        });
        while kept.letters.len() > self.cap {
            kept.letters.pop_front();
        }
        Ok(id)
    }

    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, DeadLetterError> {
        Ok(self
            .kept()
            .letters
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn get(&self, id: &str) -> Result<Option<DeadLetter>, DeadLetterError> {
        Ok(self.kept().letters.iter().find(|l| l.id == id).cloned())
    }

    async fn remove(&self, id: &str) -> Result<bool, DeadLetterError> {
        let mut kept = self.kept();
        let before = kept.letters.len();
        kept.letters.retain(|l| l.id != id);
        Ok(kept.letters.len() < before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryQueue, WebhookEvent};
    use std::time::Duration;

    fn failure(n: u64) -> Failure {
        let job = WebhookJob {
            app_id: "app-1".into(),
            event: WebhookEvent::CacheMiss {
                channel: format!("cache-{n}"),
            },
            time_ms: n,
            only_url: None,
            id: None,
        };
        Failure::now(job, Some("http://x/"), "receiver answered 500")
    }

    #[tokio::test]
    async fn memory_store_is_capped_and_lists_newest_first() {
        let store = MemoryDeadLetters::new(2);
        for n in 1..=3 {
            store.record(failure(n)).await.expect("record");
        }
        let listed = store.list(10).await.expect("list");
        let times: Vec<u64> = listed.iter().map(|l| l.failure.job.time_ms).collect();
        assert_eq!(times, [3, 2]);
        assert_eq!(store.list(1).await.expect("list").len(), 1);
    }

    #[tokio::test]
    async fn replay_pushes_back_and_forgets() {
        let (store, queue) = (MemoryDeadLetters::default(), MemoryQueue::new());
        let a = store.record(failure(1)).await.expect("record");
        store.record(failure(2)).await.expect("record");
        let one = replay(&store, &queue, &Replay::One(a.clone()))
            .await
            .expect("replay");
        assert_eq!(one, std::slice::from_ref(&a));
        assert!(matches!(
            replay(&store, &queue, &Replay::One(a)).await,
            Err(DeadLetterError::NotFound(_))
        ));
        replay(&store, &queue, &Replay::All).await.expect("all");
        assert!(store.list(10).await.expect("list").is_empty());
        let pushed = queue.pull(10, Duration::ZERO).await.expect("pull");
        let times: Vec<u64> = pushed.iter().map(|l| l.job.time_ms).collect();
        assert_eq!(times, [1, 2]);
    }

    #[test]
    fn a_letter_prints_as_flat_json() {
        let letter = DeadLetter {
            id: "m-1".into(),
            failure: failure(1),
        };
        let json = serde_json::to_value(&letter).expect("json");
        assert_eq!(json["id"], "m-1");
        assert_eq!(json["url"], "http://x/");
        assert_eq!(json["job"]["app_id"], "app-1");
    }
}
