//! The harness: runs each conformance case against a fresh `MemoryStore` and against a
//! `RedisStore` in a namespace of its own, which is deleted afterwards even when the case fails.

pub mod concurrency;
pub mod edges;
pub mod fencing;
pub mod holds;
pub mod limits;
pub mod outbox;
pub mod quotas;
mod redis_only;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use channel_core::{ChannelStore, RedisStore};
use switchyard_protocol::presence::Member;

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

pub type Store = Arc<dyn ChannelStore>;

pub fn member(user_id: &str) -> Member {
    Member {
        user_id: user_id.into(),
        user_info: format!("{{\"name\":\"{user_id}\"}}"),
    }
}

pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A namespace no other test (or earlier run) uses.
pub fn namespace(case: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("sytest:{case}:{}:{nanos}:{n}", std::process::id())
}

pub async fn redis_store(ns: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::connect(REDIS_URL, ns)
            .await
            .expect("redis at 127.0.0.1:6379 (start one to run these tests)"),
    )
}

pub async fn redis_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

/// Every key of the namespace.
pub async fn keys_of(ns: &str) -> Vec<String> {
    let mut con = redis_connection().await;
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{ns}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await
            .expect("scan");
        keys.extend(batch);
        if next == 0 {
            return sorted(keys);
        }
        cursor = next;
    }
}

pub async fn delete_namespace(ns: &str) {
    let keys = keys_of(ns).await;
    if keys.is_empty() {
        return;
    }
    let mut con = redis_connection().await;
    let _: () = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut con)
        .await
        .expect("del");
}

/// Defines `memory::<case>` and `redis::<case>` tests for each named case, a function taking
/// a [`Store`].
#[macro_export]
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(std::sync::Arc::new(channel_core::MemoryStore::new())).await;
                }
            )*
        }

        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let ns = $crate::support::namespace(stringify!($case));
                    let store = $crate::support::redis_store(&ns).await;
                    let outcome = tokio::spawn(super::$case(store)).await;
                    $crate::support::delete_namespace(&ns).await;
                    if let Err(e) = outcome {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
    };
}
