use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::App;

#[derive(Debug, thiserror::Error)]
pub enum AppStoreError {
    #[error("app store unavailable: {0}")]
    Unavailable(String),
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
