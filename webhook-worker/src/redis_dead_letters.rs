//! The distributed mode's dead letters: one Redis stream, `<namespace>:webhooks:dead`.
//!
//! A stream rather than a list or hash: `XADD ... MAXLEN` caps it in the same command that
//! records, entry ids are unique and time-ordered (they double as the letter ids), and `XDEL`
//! removes one letter by id without rewriting the rest. The cap is exact, not `~`: letters
//! are rare, and an approximate cap would not trim at all below Redis' node size (100).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamRangeReply};
use redis::RedisResult;

use crate::dead_letter::{DeadLetter, DeadLetterError, DeadLetters, Failure};

/// The entry field holding the failure as JSON.
const FIELD: &str = "letter";

pub struct RedisDeadLetters {
    key: String,
    cap: usize,
    conn: ConnectionManager,
    timeout: Duration,
}

impl RedisDeadLetters {
    /// Connects to `url` and keeps letters in the stream `key`, at most `cap` of them.
    pub async fn connect(
        url: &str,
        key: &str,
        cap: usize,
    ) -> Result<RedisDeadLetters, DeadLetterError> {
        let timeout = Duration::from_secs(5);
        let client = redis::Client::open(url).map_err(|e| unavailable("url", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2);
        let conn = bounded(
            timeout,
            "connect",
            ConnectionManager::new_with_config(client, config),
        )
        .await?;
        Ok(RedisDeadLetters {
            key: key.to_owned(),
            cap: cap.max(1),
            conn,
            timeout,
        })
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        what: &str,
    ) -> Result<T, DeadLetterError> {
        let mut conn = self.conn.clone();
        bounded(self.timeout, what, cmd.query_async(&mut conn)).await
    }
}

#[async_trait]
impl DeadLetters for RedisDeadLetters {
    async fn record(&self, failure: Failure) -> Result<String, DeadLetterError> {
        let json = serde_json::to_string(&failure)
            .map_err(|e| DeadLetterError::Unavailable(format!("encode dead letter: {e}")))?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key)
            .arg("MAXLEN")
            .arg(self.cap)
            .arg("*")
            .arg(FIELD)
            .arg(json);
        self.query(&cmd, "XADD").await
    }

    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, DeadLetterError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Redis reads COUNT as a signed 64-bit number.
        let count = limit.min(i64::MAX as usize);
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(&self.key).arg("+").arg("-").arg("COUNT").arg(count);
        let reply: StreamRangeReply = self.query(&cmd, "XREVRANGE").await?;
        Ok(reply.ids.iter().filter_map(|e| self.decode(e)).collect())
    }

    async fn get(&self, id: &str) -> Result<Option<DeadLetter>, DeadLetterError> {
        if !is_stream_id(id) {
            return Ok(None);
        }
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&self.key).arg(id).arg(id);
        let reply: StreamRangeReply = self.query(&cmd, "XRANGE").await?;
        Ok(reply.ids.first().and_then(|e| self.decode(e)))
    }

    async fn remove(&self, id: &str) -> Result<bool, DeadLetterError> {
        if !is_stream_id(id) {
            return Ok(false);
        }
        let mut cmd = redis::cmd("XDEL");
        cmd.arg(&self.key).arg(id);
        let removed: u64 = self.query(&cmd, "XDEL").await?;
        Ok(removed > 0)
    }
}

impl RedisDeadLetters {
    /// A foreign or damaged entry is skipped (and logged), not an error: one bad entry must
    /// not hide every other letter from the operator.
    fn decode(&self, entry: &StreamId) -> Option<DeadLetter> {
        let raw: Vec<u8> = entry.get(FIELD)?;
        match serde_json::from_slice::<Failure>(&raw) {
            Ok(failure) => Some(DeadLetter {
                id: entry.id.clone(),
                failure,
            }),
            Err(e) => {
                tracing::warn!(key = %self.key, id = %entry.id, error = %e, "unreadable dead letter skipped");
                None
            }
        }
    }
}

/// `<ms>-<seq>`: anything else would make Redis answer an error, where "no such letter" is
/// the truthful answer.
fn is_stream_id(id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    id.split_once('-')
        .is_some_and(|(ms, seq)| digits(ms) && digits(seq))
}

async fn bounded<T>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, DeadLetterError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(|e| unavailable(what, e)),
        Err(_) => Err(DeadLetterError::Unavailable(format!(
            "redis {what}: no answer within {limit:?}"
        ))),
    }
}

fn unavailable(what: &str, e: redis::RedisError) -> DeadLetterError {
    DeadLetterError::Unavailable(format!("redis {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stream_ids_reach_redis() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(!is_stream_id("m-1"));
        assert!(!is_stream_id("1-"));
        assert!(!is_stream_id("+"));
    }
}
