//! Applications and where they are looked up.
//!
//! An [`App`] carries everything an edge or the API needs to decide about a request: its
//! credentials, switches and limits. Services never cache apps themselves; they ask an
//! [`AppStore`], so a backend with invalidation can make a change visible everywhere.
//!
//! Stores: [`StaticAppStore`] (the config file, read-only) and [`SqlAppStore`]
//! (MySQL/MariaDB or PostgreSQL, changed with [`AppAdmin`]), usually behind a
//! [`CachedAppStore`]. [`changes`] holds the changes the CLI and the admin API make, written
//! once against [`AppAdmin`] for every store.

mod app;
mod cached;
pub mod changes;
mod sql;
mod store;

pub use app::{App, Secret, Webhook, WebhookFilter};
pub use cached::CachedAppStore;
pub use sql::SqlAppStore;
pub use store::{AppAdmin, AppStore, AppStoreError, StaticAppStore};
