//! `[app_store]`: where apps come from, for every service and the `switchyard apps` commands.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use switchyard_apps::Secret;

use crate::duration::millis;

/// The kind of app store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum AppStoreBackend {
    /// The `[[apps]]` of the config file: read once, never changed at run time.
    File,
    Mysql,
    Postgres,
}

impl AppStoreBackend {
    /// Whether apps live in a database (`database_url`), and so can change at run time.
    pub fn is_database(self) -> bool {
        matches!(self, AppStoreBackend::Mysql | AppStoreBackend::Postgres)
    }
}

impl TryFrom<String> for AppStoreBackend {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "file" => Ok(AppStoreBackend::File),
            "mysql" => Ok(AppStoreBackend::Mysql),
            "postgres" => Ok(AppStoreBackend::Postgres),
            _ => Err(format!(
                "backend {name:?} is not one of \"file\", \"mysql\", \"postgres\""
            )),
        }
    }
}

impl fmt::Display for AppStoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AppStoreBackend::File => "file",
            AppStoreBackend::Mysql => "mysql",
            AppStoreBackend::Postgres => "postgres",
        })
    }
}

/// `[app_store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppStoreSection {
    /// `file` (the `[[apps]]` of this file), `mysql` or `postgres`.
    pub backend: AppStoreBackend,
    /// With `mysql` or `postgres`: e.g. `mysql://user:pass@host/db`.
    pub database_url: Secret,
    /// How long a service trusts an app it looked up; changes made through `switchyard apps`
    /// or the admin API are also pushed over the bus at once.
    #[serde(rename = "cache_ttl_ms", deserialize_with = "millis")]
    pub cache_ttl: Duration,
}

impl Default for AppStoreSection {
    fn default() -> Self {
        AppStoreSection {
            backend: AppStoreBackend::File,
            database_url: Secret::new(""),
            cache_ttl: Duration::from_millis(5000),
        }
    }
}

impl AppStoreSection {
    pub(crate) fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.backend.is_database() && self.database_url.expose().is_empty() {
            errors.push(format!(
                "[app_store] backend \"{}\" needs database_url",
                self.backend
            ));
        }
        if self.cache_ttl.is_zero() {
            errors.push("[app_store] cache_ttl_ms must be at least 1".into());
        }
        errors
    }
}
