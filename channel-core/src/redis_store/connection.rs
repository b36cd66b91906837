//! Talking to Redis: connecting, and running scripts and pipelines under a timeout, with
//! every failure turned into `CoreError::Unavailable`.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, RedisResult, ScriptInvocation, ServerErrorKind};
use switchyard_telemetry::{metrics, trace};
use tracing::{Instrument, Span};

use super::keys::Keys;
use super::scripts::Scripts;
use super::RedisStore;
use crate::CoreError;

/// How long one Redis call may take before the caller gets `Unavailable`: a dead Redis must
/// fail requests quickly instead of stalling every edge behind it.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Longest TTL passed to Redis (about 300 years); `SET PX` rejects values near `i64::MAX`.
const MAX_TTL_MS: u64 = 10_000_000_000_000;

impl RedisStore {
    /// Connects to `url`; every key starts with `namespace` (no `{` or `}` in it, or the
    /// hash tags break), so several deployments or tests can share one Redis.
    pub async fn connect(url: &str, namespace: &str) -> Result<RedisStore, CoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let mut con = timed(ConnectionManager::new_with_config(client, config)).await?;
        let scripts = Scripts::new();
        // Loading now makes a broken script a connect error rather than a failed join later.
        for script in scripts.all() {
            timed(script.load_async(&mut con)).await?;
        }
        Ok(RedisStore {
            con,
            keys: Keys::new(namespace),
            scripts,
        })
    }

    pub(super) async fn eval<T: FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, CoreError> {
        let mut con = self.con.clone();
        observed("script", "EVALSHA", timed(inv.invoke_async(&mut con))).await
    }

    /// Runs a script that may add a holding of `edge` in `app_id`, recording the app in the
    /// edge's index first in the same round trip. The index is outside the app's hash slot,
    /// so it cannot be written by the script; written first, it is at worst a superset.
    pub(super) async fn eval_indexed<T: FromRedisValue>(
        &self,
        edge: &str,
        app_id: &str,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, CoreError> {
        let mut pipe = redis::pipe();
        pipe.sadd(self.keys.edge_apps(edge), app_id)
            .ignore()
            .invoke_script(inv);
        let mut con = self.con.clone();
        let call = timed(async {
            // A pipeline does not load scripts by itself: after a Redis restart or
            // SCRIPT FLUSH, load and retry once (the SADD is idempotent).
            match pipe.query_async(&mut con).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    inv.load_async(&mut con).await?;
                    pipe.query_async(&mut con).await
                }
                other => other,
            }
        });
        let (value,): (T,) = observed("indexed_script", "SADD EVALSHA", call).await?;
        Ok(value)
    }

    pub(super) async fn query<T: FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, CoreError> {
        let mut con = self.con.clone();
        observed("pipeline", "PIPELINE", timed(pipe.query_async(&mut con))).await
    }
}

/// One Redis round trip as telemetry sees it: a client span inside a sampled trace (the gRPC
/// call or reap it serves is its parent), and the latency and failure metrics under `op`.
async fn observed<T>(
    op: &'static str,
    command: &'static str,
    call: impl Future<Output = Result<T, CoreError>>,
) -> Result<T, CoreError> {
    let span = if trace::current_is_sampled() {
        tracing::info_span!(
            "redis",
            otel.name = command,
            otel.kind = "client",
            db.system = "redis",
            db.operation.name = command,
        )
    } else {
        Span::none()
    };
    let started = Instant::now();
    let result = call.instrument(span).await;
    let timing = metrics::process().redis.get(op);
    timing.latency.observe(started.elapsed());
    if result.is_err() {
        timing.errors.inc();
    }
    result
}

async fn timed<T>(call: impl Future<Output = RedisResult<T>>) -> Result<T, CoreError> {
    match tokio::time::timeout(TIMEOUT, call).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(CoreError::Unavailable(format!(
            "redis did not answer within {TIMEOUT:?}"
        ))),
    }
}

pub(super) fn unavailable(e: impl Display) -> CoreError {
    CoreError::Unavailable(e.to_string())
}

/// Milliseconds, rounded up so a short non-zero TTL does not become "already expired".
pub(super) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).map_or(MAX_TTL_MS, |ms| ms.min(MAX_TTL_MS))
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use redis::Script;

    use super::*;

    /// Needs Redis at 127.0.0.1:6379, like the conformance suite.
    #[tokio::test]
    async fn indexed_scripts_load_themselves_after_noscript() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let ns = format!("sytest:noscript:{}:{nanos}", std::process::id());
        let store = RedisStore::connect("redis://127.0.0.1:6379", &ns)
            .await
            .expect("redis");
        // Text no server has seen yet, so the first EVALSHA gets NOSCRIPT.
        let script = Script::new(&format!("-- {ns}\nreturn ARGV[1]"));
        let mut inv = script.prepare_invoke();
        inv.arg("hello");
        let reply: String = store.eval_indexed("e", "app", &inv).await.expect("eval");
        assert_eq!(reply, "hello");

        let index = store.keys.edge_apps("e");
        let mut pipe = redis::pipe();
        pipe.smembers(&index).del(&index).ignore();
        let (apps,): (Vec<String>,) = store.query(&pipe).await.expect("index");
        assert_eq!(apps, ["app"]);
    }
}
