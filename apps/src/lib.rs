//! Applications and where they are looked up.
//!
//! An [`App`] carries everything an edge or the API needs to decide about a request: its
//! credentials, switches and limits. Services never cache apps themselves; they ask an
//! [`AppStore`], so a backend with invalidation can make a change visible everywhere.

mod app;
mod store;

pub use app::{App, Secret, Webhook, WebhookFilter};
pub use store::{AppStore, AppStoreError, StaticAppStore};
