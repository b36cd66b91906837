//! An in-memory cache in front of a slower [`AppStore`] (a database).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::{App, AppStore, AppStoreError};

/// Below this many entries a table is never pruned.
const MIN_PRUNE_AT: usize = 1024;

/// Answers lookups from memory for `ttl`, then asks the inner store again.
///
/// - Misses are cached too, so unknown keys do not reach the database on every connection.
/// - While one lookup refreshes an expired entry, others keep getting the old answer instead
///   of all asking the database at once.
/// - When a refresh fails with `Unavailable`, the old answer is served for another `ttl` (with
///   a warning): apps already known keep working through a database outage. With nothing
///   cached, the error is returned.
/// - [`invalidate`](Self::invalidate) makes a change made through this process visible at
///   once; other processes see it within `ttl`.
///
/// Locks are `std` locks held only to read or write a map, never across an `await`.
pub struct CachedAppStore {
    inner: Arc<dyn AppStore>,
    ttl: Duration,
    by_key: RwLock<Table>,
    by_id: RwLock<Table>,
    /// Bumped by every invalidation; a lookup that started before one does not store its
    /// answer, which may predate the change.
    generation: AtomicU64,
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// Size at which expired misses are swept out; doubles with the live entries, so sweeping
    /// costs O(1) per insert. Without it, random keys would grow the map without bound.
    prune_at: usize,
}

struct Entry {
    app: Option<Arc<App>>,
    expires: Instant,
}

#[derive(Clone, Copy, Debug)]
enum Index {
    Key,
    Id,
}

impl CachedAppStore {
    pub fn new(inner: Arc<dyn AppStore>, ttl: Duration) -> CachedAppStore {
        CachedAppStore {
            inner,
            ttl,
            by_key: RwLock::default(),
            by_id: RwLock::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// Forgets the app with this id, by id and by key, so the next lookups ask the store.
    /// Every cached miss goes too: one of them may be the app's new key.
    pub fn invalidate(&self, id: &str) {
        // Bump first: a lookup storing after this point sees the new generation and does not
        // put back what was just removed.
        self.generation.fetch_add(1, Ordering::SeqCst);
        let keep = |entry: &Entry| entry.app.as_ref().is_some_and(|app| app.id != id);
        write(&self.by_id).entries.retain(|_, entry| keep(entry));
        write(&self.by_key).entries.retain(|_, entry| keep(entry));
    }

    /// Forgets everything.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        write(&self.by_id).entries.clear();
        write(&self.by_key).entries.clear();
    }

    fn table(&self, index: Index) -> &RwLock<Table> {
        match index {
            Index::Key => &self.by_key,
            Index::Id => &self.by_id,
        }
    }

    async fn lookup(&self, index: Index, name: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        let table = self.table(index);
        let now = Instant::now();
        if let Some(entry) = read(table).entries.get(name) {
            if entry.expires > now {
                return Ok(entry.app.clone());
            }
        }

        let generation = self.generation.load(Ordering::SeqCst);
        let stale = {
            let mut table = write(table);
            match table.entries.get_mut(name) {
                // Another lookup refreshed or claimed it since the read above.
                Some(entry) if entry.expires > now => return Ok(entry.app.clone()),
                Some(entry) => {
                    // Claim the refresh: until it ends, others get the old answer.
                    entry.expires = now + self.ttl;
                    Some(entry.app.clone())
                }
                None => None,
            }
        };

        let fetched = match index {
            Index::Key => self.inner.by_key(name).await,
            Index::Id => self.inner.by_id(name).await,
        };
        match (fetched, stale) {
            (Ok(app), _) => {
                self.store(table, name, app.clone(), generation);
                Ok(app)
            }
            (Err(AppStoreError::Unavailable(why)), Some(stale)) => {
                tracing::warn!(
                    ?index,
                    name,
                    error = %why,
                    ttl_secs = self.ttl.as_secs_f64(),
                    "app store unavailable; serving the cached answer"
                );
                Ok(stale)
            }
            (Err(e), _) => {
                // Drop a claimed entry, so the next lookup asks again rather than serving it.
                if self.generation.load(Ordering::SeqCst) == generation {
                    write(table).entries.remove(name);
                }
                Err(e)
            }
        }
    }

    fn store(&self, table: &RwLock<Table>, name: &str, app: Option<Arc<App>>, generation: u64) {
        let mut table = write(table);
        // Checked under the table's lock, which `invalidate` takes after bumping.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let now = Instant::now();
        if table.entries.len() >= table.prune_at.max(MIN_PRUNE_AT) {
            // Found apps are kept even when expired: they are the fallback in an outage.
            table
                .entries
                .retain(|_, entry| entry.app.is_some() || entry.expires > now);
            table.prune_at = 2 * table.entries.len();
        }
        table.entries.insert(
            name.to_owned(),
            Entry {
                app,
                expires: now + self.ttl,
            },
        );
    }
}

#[async_trait]
impl AppStore for CachedAppStore {
    async fn by_key(&self, key: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        self.lookup(Index::Key, key).await
    }

    async fn by_id(&self, id: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        self.lookup(Index::Id, id).await
    }
}

// A panic while a lock is held cannot leave a table half-changed (each change is one map
// operation), so a poisoned lock is still good to use.
fn read(lock: &RwLock<Table>) -> RwLockReadGuard<'_, Table> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(lock: &RwLock<Table>) -> RwLockWriteGuard<'_, Table> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    /// Counts lookups; can be taken down, and paused with `gate` to hold a lookup in flight.
    #[derive(Default)]
    struct Counting {
        apps: Mutex<Vec<App>>,
        calls: AtomicUsize,
        down: std::sync::atomic::AtomicBool,
        gate: tokio::sync::Mutex<()>,
    }

    impl Counting {
        fn with(apps: Vec<App>) -> Arc<Counting> {
            let store = Counting::default();
            *store.apps.lock().expect("lock") = apps;
            Arc::new(store)
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        fn set_down(&self, down: bool) {
            self.down.store(down, Ordering::SeqCst);
        }

        async fn find(
            &self,
            pick: impl Fn(&App) -> bool,
        ) -> Result<Option<Arc<App>>, AppStoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let _pass = self.gate.lock().await;
            if self.down.load(Ordering::SeqCst) {
                return Err(AppStoreError::Unavailable("database down".into()));
            }
            let apps = self.apps.lock().expect("lock");
            Ok(apps.iter().find(|a| pick(a)).cloned().map(Arc::new))
        }
    }

    #[async_trait]
    impl AppStore for Counting {
        async fn by_key(&self, key: &str) -> Result<Option<Arc<App>>, AppStoreError> {
            self.find(|a| a.key == key).await
        }

        async fn by_id(&self, id: &str) -> Result<Option<Arc<App>>, AppStoreError> {
            self.find(|a| a.id == id).await
        }
    }

    fn cached(inner: &Arc<Counting>) -> CachedAppStore {
        CachedAppStore::new(inner.clone(), TTL)
    }

    async fn key_of(cache: &CachedAppStore, id: &str) -> Option<String> {
        cache.by_id(id).await.expect("by id").map(|a| a.key.clone())
    }

    #[tokio::test(start_paused = true)]
    async fn hits_and_misses_come_from_memory_until_the_ttl() {
        let inner = Counting::with(vec![App::new("1", "k", "s")]);
        let cache = cached(&inner);
        for _ in 0..3 {
            assert_eq!(
                cache.by_key("k").await.expect("by key").expect("found").id,
                "1"
            );
            assert!(cache.by_key("nope").await.expect("by key").is_none());
            assert_eq!(key_of(&cache, "1").await.as_deref(), Some("k"));
        }
        assert_eq!(inner.calls(), 3);

        tokio::time::advance(TTL).await;
        inner.apps.lock().expect("lock")[0].max_connections = 7;
        assert_eq!(
            cache
                .by_key("k")
                .await
                .expect("by key")
                .expect("found")
                .max_connections,
            7
        );
        assert_eq!(inner.calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_forgets_the_app_by_id_key_and_misses() {
        let inner = Counting::with(vec![App::new("1", "k", "s"), App::new("2", "k2", "s")]);
        let cache = cached(&inner);
        cache.by_key("k").await.expect("by key");
        cache.by_key("k2").await.expect("by key");
        assert!(cache.by_key("new").await.expect("by key").is_none());
        assert_eq!(key_of(&cache, "1").await.as_deref(), Some("k"));

        inner.apps.lock().expect("lock")[0].key = "new".into();
        cache.invalidate("1");
        assert_eq!(key_of(&cache, "1").await.as_deref(), Some("new"));
        assert_eq!(
            cache
                .by_key("new")
                .await
                .expect("by key")
                .expect("found")
                .id,
            "1"
        );
        assert!(cache.by_key("k").await.expect("by key").is_none());
        let calls = inner.calls();
        cache.by_key("k2").await.expect("by key");
        assert_eq!(inner.calls(), calls, "other apps stay cached");

        cache.invalidate_all();
        cache.by_key("k2").await.expect("by key");
        assert_eq!(inner.calls(), calls + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_serves_known_apps_and_fails_unknown_ones() {
        let inner = Counting::with(vec![App::new("1", "k", "s")]);
        let cache = cached(&inner);
        cache.by_key("k").await.expect("by key");
        inner.set_down(true);
        tokio::time::advance(TTL).await;

        assert_eq!(
            cache.by_key("k").await.expect("by key").expect("found").id,
            "1"
        );
        assert_eq!(inner.calls(), 2, "one refresh was tried");
        cache.by_key("k").await.expect("by key");
        assert_eq!(inner.calls(), 2, "and the next is a ttl later");
        let err = cache.by_key("other").await.expect_err("by key");
        assert!(matches!(err, AppStoreError::Unavailable(_)), "{err}");

        inner.set_down(false);
        tokio::time::advance(TTL).await;
        inner.apps.lock().expect("lock")[0].enabled = false;
        assert!(
            !cache
                .by_key("k")
                .await
                .expect("by key")
                .expect("found")
                .enabled
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_refresh_at_a_time_while_others_get_the_old_answer() {
        let inner = Counting::with(vec![App::new("1", "k", "s")]);
        let cache = Arc::new(cached(&inner));
        cache.by_key("k").await.expect("by key");
        tokio::time::advance(TTL).await;

        let gate = inner.gate.lock().await;
        let refresh = tokio::spawn({
            let cache = cache.clone();
            async move { cache.by_key("k").await.expect("by key") }
        });
        while inner.calls() < 2 {
            tokio::task::yield_now().await;
        }
        assert!(cache.by_key("k").await.expect("by key").is_some());
        assert_eq!(inner.calls(), 2);
        drop(gate);
        assert!(refresh.await.expect("task").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_older_than_an_invalidation_is_not_kept() {
        let inner = Counting::with(vec![App::new("1", "k", "s")]);
        let cache = Arc::new(cached(&inner));

        let gate = inner.gate.lock().await;
        let lookup = tokio::spawn({
            let cache = cache.clone();
            async move { cache.by_id("1").await.expect("by id") }
        });
        while inner.calls() < 1 {
            tokio::task::yield_now().await;
        }
        cache.invalidate("1");
        drop(gate);
        lookup.await.expect("task");

        cache.by_id("1").await.expect("by id");
        assert_eq!(inner.calls(), 2, "the in-flight answer was not cached");
    }

    #[tokio::test(start_paused = true)]
    async fn misses_for_random_keys_do_not_grow_without_bound() {
        let inner = Counting::with(vec![App::new("1", "k", "s")]);
        let cache = cached(&inner);
        cache.by_key("k").await.expect("by key");
        for round in 0..4 {
            for i in 0..MIN_PRUNE_AT {
                cache.by_key(&format!("{round}-{i}")).await.expect("by key");
            }
            tokio::time::advance(TTL).await;
        }
        let entries = read(&cache.by_key).entries.len();
        assert!(entries <= 2 * MIN_PRUNE_AT + 1, "{entries}");
        assert!(read(&cache.by_key).entries.contains_key("k"));
    }
}
