//! Where every service gets its apps: the `[app_store]` backend, behind a cache that a change
//! announced on the bus clears at once (and that expires by itself within `cache_ttl_ms`).

use std::sync::Arc;

use anyhow::Context;
use api_service::AdminDeps;
use switchyard_apps::{AppAdmin, AppStore, CachedAppStore, SqlAppStore, StaticAppStore};
use switchyard_bus::{Bus, APPS_CHANGED_SUBJECT};
use switchyard_config::{AppStoreBackend, Config};
use tokio_util::sync::CancellationToken;

/// The configured backend itself, uncached: for `switchyard apps …` and the admin API.
pub async fn backend(config: &Config) -> anyhow::Result<Arc<dyn AppAdmin>> {
    let store = &config.app_store;
    match store.backend {
        AppStoreBackend::Mysql | AppStoreBackend::Postgres => {
            let sql = SqlAppStore::connect(store.database_url.expose())
                .await
                .with_context(|| format!("cannot open the {} app store", store.backend))?;
            Ok(Arc::new(sql))
        }
        AppStoreBackend::File => Ok(Arc::new(StaticAppStore::new(config.apps.clone()))),
    }
}

/// What services look apps up in. The file backend is already in memory and never changes;
/// a database gets a cache, emptied of an app as soon as its change is announced on `bus`.
pub fn lookup(
    config: &Config,
    backend: Arc<dyn AppAdmin>,
    bus: Option<Arc<dyn Bus>>,
    shutdown: CancellationToken,
) -> Arc<dyn AppStore> {
    if !config.app_store.backend.is_database() {
        return backend;
    }
    let cached = Arc::new(CachedAppStore::new(backend, config.app_store.cache_ttl));
    if let Some(bus) = bus {
        tokio::spawn(follow_changes(bus, cached.clone(), shutdown));
    }
    cached
}

/// The admin API's dependencies, when `[server] admin_token` is set.
pub fn admin(config: &Config, backend: Arc<dyn AppAdmin>) -> Option<AdminDeps> {
    let token = config.server.admin_token.clone()?;
    if token.expose().is_empty() {
        return None;
    }
    Some(AdminDeps {
        store: backend,
        token,
    })
}

async fn follow_changes(
    bus: Arc<dyn Bus>,
    cache: Arc<CachedAppStore>,
    shutdown: CancellationToken,
) {
    let mut changes = match bus.subscribe(APPS_CHANGED_SUBJECT).await {
        Ok(changes) => changes,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow app changes; cached apps expire by themselves");
            return;
        }
    };
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.next() => change,
        };
        let Some(change) = change else { return };
        match std::str::from_utf8(&change.payload) {
            Ok(app_id) => cache.invalidate(app_id),
            // Not one of ours; clearing everything is the safe answer.
            Err(_) => cache.invalidate_all(),
        }
    }
}
