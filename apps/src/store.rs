use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::App;

#[derive(Debug, thiserror::Error)]
pub enum AppStoreError {
    #[error("app store unavailable: {0}")]
    Unavailable(String),
    /// Another app already has this id or key.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend cannot change apps (the config file: edit it and restart instead).
    #[error("this app store is read-only: apps come from the config file; edit it and restart, or use the mysql or postgres app store")]
    ReadOnly,
    /// The app or change is not valid (unknown setting, wrong type, empty id…).
    #[error("invalid app: {0}")]
    Invalid(String),
}

/// Finds apps by key (WebSocket connections) or by id (HTTP API).
///
/// Contract: `Ok(None)` means the app does not exist; `Err` means the store could not answer,
/// which callers must surface as "try again" (503 / close 4100), never as "unknown app".
#[async_trait]
pub trait AppStore: Send + Sync {
    async fn by_key(&self, key: &str) -> Result<Option<Arc<App>>, AppStoreError>;
    async fn by_id(&self, id: &str) -> Result<Option<Arc<App>>, AppStoreError>;
}

/// Changes to apps, for `switchyard apps …` and the admin API. Disabling and rotating a
/// secret are an `update` of the whole app (see [`crate::admin`]).
#[async_trait]
pub trait AppAdmin: AppStore {
    /// Every app, ordered by id.
    async fn list(&self) -> Result<Vec<App>, AppStoreError>;
    /// Adds a new app; `Conflict` when its id or key is taken.
    async fn create(&self, app: &App) -> Result<(), AppStoreError>;
    /// Replaces the app with `app.id`; false when there is none. `Conflict` when the new key
    /// belongs to another app.
    async fn update(&self, app: &App) -> Result<bool, AppStoreError>;
}

/// Apps listed in the config file, fixed for the life of the process.
pub struct StaticAppStore {
    by_key: HashMap<String, Arc<App>>,
    by_id: HashMap<String, Arc<App>>,
}

impl StaticAppStore {
    pub fn new(apps: Vec<App>) -> StaticAppStore {
        let apps: Vec<Arc<App>> = apps.into_iter().map(Arc::new).collect();
        StaticAppStore {
            by_key: apps.iter().map(|a| (a.key.clone(), a.clone())).collect(),
            by_id: apps.iter().map(|a| (a.id.clone(), a.clone())).collect(),
        }
    }
}

#[async_trait]
impl AppStore for StaticAppStore {
    async fn by_key(&self, key: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        Ok(self.by_key.get(key).cloned())
    }

    async fn by_id(&self, id: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        Ok(self.by_id.get(id).cloned())
    }
}

#[async_trait]
impl AppAdmin for StaticAppStore {
    async fn list(&self) -> Result<Vec<App>, AppStoreError> {
        let mut apps: Vec<App> = self.by_id.values().map(|a| (**a).clone()).collect();
        apps.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(apps)
    }

    async fn create(&self, _app: &App) -> Result<(), AppStoreError> {
        Err(AppStoreError::ReadOnly)
    }

    async fn update(&self, _app: &App) -> Result<bool, AppStoreError> {
        Err(AppStoreError::ReadOnly)
    }
}
