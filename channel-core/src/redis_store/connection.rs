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

/// Whether a guarded script's write adds to what the edge holds (refused once the edge is
/// fenced) or only removes (always let through: it can only bring state closer to empty).
pub(super) enum Write {
    Adds,
    Removes,
}

/// The code of the script's error reply inside a pipeline's error, such as `FENCED`.
fn guard_code(e: &redis::RedisError) -> Option<String> {
    let errors = e.clone().into_server_errors()?;
    errors.first().map(|(_, error)| error.code().to_owned())
}

/// The guard's refusals (see `guard.lua`).
enum Guard {
    Fenced,
    Unregistered,
}

/// The lease an edge gets from a write made before its first heartbeat: long enough for that
/// beat to arrive from a slow core, short enough that a crash right then is soon reaped.
pub(super) const PROVISIONAL_LEASE: Duration = Duration::from_secs(30);

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

    /// Runs a guarded script (one that starts with `guard.lua`) for `edge` in `app_id`: the
    /// guard's keys and arguments are appended to what `base` builds. A write that adds is
    /// refused with [`CoreError::Fenced`] once a reaper has taken the edge; the edge's first
    /// adding write in an app (or the first after Redis lost its keys) registers the app in
    /// the edge's index first, so the reaper finds everything the edge holds.
    pub(super) async fn eval_guarded<'a, T: FromRedisValue>(
        &self,
        edge: &str,
        app_id: &str,
        write: Write,
        base: impl Fn() -> ScriptInvocation<'a>,
    ) -> Result<T, CoreError> {
        let app = self.keys.app(app_id);
        let run = |mode: &str| {
            let mut inv = base();
            inv.key(app.fenced())
                .key(app.registered())
                .arg(edge)
                .arg(mode);
            inv
        };
        if let Write::Removes = write {
            return self.eval_outbox(app_id, &run("-")).await;
        }
        match self.eval_guard(app_id, &run("0")).await? {
            Ok(value) => return Ok(value),
            Err(Guard::Fenced) => return Err(CoreError::Fenced(edge.to_owned())),
            Err(Guard::Unregistered) => {}
        }
        let mut inv = self.scripts.register_edge.prepare_invoke();
        inv.key(self.keys.reaping())
            .key(self.keys.dead())
            .key(self.keys.edge_apps(edge))
            .key(self.keys.leases())
            .key(self.keys.provisional())
            .arg(edge)
            .arg(app_id)
            .arg(ttl_ms(PROVISIONAL_LEASE));
        let registered: i64 = self.eval(&inv).await?;
        if registered == 0 {
            return Err(CoreError::Fenced(edge.to_owned()));
        }
        match self.eval_guard(app_id, &run("1")).await? {
            Ok(value) => Ok(value),
            Err(_) => Err(CoreError::Fenced(edge.to_owned())),
        }
    }

    /// Runs a script that may write effects to `app_id`'s outbox (see `outbox.lua`).
    pub(super) async fn eval_outbox<T: FromRedisValue>(
        &self,
        app_id: &str,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, CoreError> {
        match self.eval_guard(app_id, inv).await? {
            Ok(value) => Ok(value),
            Err(_) => Err(unavailable("an unguarded script refused as guarded")),
        }
    }

    /// Runs a script, listing `app_id` among the apps with effects first in the same round
    /// trip (written first, the list is at worst a superset; see `claim_effects`); the inner
    /// error is the guard's refusal.
    async fn eval_guard<T: FromRedisValue>(
        &self,
        app_id: &str,
        inv: &ScriptInvocation<'_>,
    ) -> Result<Result<T, Guard>, CoreError> {
        let mut pipe = redis::pipe();
        pipe.sadd(self.keys.effect_apps(), app_id)
            .ignore()
            .invoke_script(inv);
        let mut con = self.con.clone();
        let call = async {
            let sent = tokio::time::timeout(TIMEOUT, async {
                // A pipeline does not load scripts by itself: after a Redis restart or
                // SCRIPT FLUSH, load and retry once (the SADD is idempotent).
                match pipe.query_async::<(T,)>(&mut con).await {
                    Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        inv.load_async(&mut con).await?;
                        pipe.query_async::<(T,)>(&mut con).await
                    }
                    other => other,
                }
            });
            match sent.await {
                Ok(Ok((value,))) => Ok(Ok(value)),
                Ok(Err(e)) => match guard_code(&e).as_deref() {
                    Some("FENCED") => Ok(Err(Guard::Fenced)),
                    Some("UNREGISTERED") => Ok(Err(Guard::Unregistered)),
                    _ => Err(unavailable(e)),
                },
                Err(_) => Err(CoreError::Unavailable(format!(
                    "redis did not answer within {TIMEOUT:?}"
                ))),
            }
        };
        observed("indexed_script", "SADD EVALSHA", call).await
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
    async fn guarded_scripts_register_the_app_then_refuse_a_fenced_edge() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let ns = format!("sytest:guard:{}:{nanos}", std::process::id());
        let store = RedisStore::connect("redis://127.0.0.1:6379", &ns)
            .await
            .expect("redis");
        // Text no server has seen yet: invoking it loads it.
        let text = format!("{}-- {ns}\nreturn ARGV[1]", include_str!("guard.lua"));
        let script = Script::new(&text);
        let base = || {
            let mut inv = script.prepare_invoke();
            inv.arg("hello");
            inv
        };
        let reply: String = store
            .eval_guarded("e", "app", Write::Adds, base)
            .await
            .expect("eval");
        assert_eq!(reply, "hello");
        let index = store.keys.edge_apps("e");
        let mut pipe = redis::pipe();
        pipe.smembers(&index);
        let (apps,): (Vec<String>,) = store.query(&pipe).await.expect("index");
        assert_eq!(apps, ["app"]);

        let mut pipe = redis::pipe();
        pipe.zadd(store.keys.app("app").fenced(), "e", 1).ignore();
        let () = store.query(&pipe).await.expect("fence");
        let refused = store
            .eval_guarded::<String>("e", "app", Write::Adds, base)
            .await;
        assert!(matches!(refused, Err(CoreError::Fenced(_))), "{refused:?}");
        let removal: String = store
            .eval_guarded("e", "app", Write::Removes, base)
            .await
            .expect("a removal passes");
        assert_eq!(removal, "hello");

        let mut pipe = redis::pipe();
        pipe.del(&index)
            .del(store.keys.app("app").fenced())
            .del(store.keys.app("app").registered());
        let () = store.query(&pipe).await.expect("clean up");
    }
}
