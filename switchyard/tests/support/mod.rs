//! Shared helpers for the integration tests: an embedded server on an ephemeral port, a raw
//! WebSocket client with bounded waits, a signed HTTP client for the REST API, and the
//! channel / sign-in auth signatures. Every wait here is bounded so that no test can hang.
//! Each concern lives in its own submodule; everything is re-exported here, so tests name
//! `support::Client`, `support::read_request` and so on.

#![allow(dead_code)]

mod auth;
mod http_client;
mod http_receiver;
mod rest;
mod server;
mod ws_client;

use std::future::Future;
use std::time::{Duration, Instant};

// Every test binary uses a subset of these re-exports.
#[allow(unused_imports)]
pub use auth::{presence_auth, private_auth, signin_auth, token};
#[allow(unused_imports)]
pub use http_client::{http, http_with_headers};
#[allow(unused_imports)]
pub use http_receiver::{read_request, HttpRequest};
#[allow(unused_imports)]
pub use rest::{assert_error, now_secs, sign_query, wait_subscription_count, Rest};
#[allow(unused_imports)]
pub use server::TestServer;
#[allow(unused_imports)]
pub use ws_client::{data_of, event_of, open_ws, string_data, Client, Incoming};

/// The default bound on any single wait.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing else arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(300);

pub const APP_ID: &str = "app-1";
pub const KEY: &str = "key-1";
pub const SECRET: &str = "secret-1";

/// The `[server]` section every test server uses (ephemeral port, short shutdown grace).
pub const SERVER: &str = "[server]\nhost = \"127.0.0.1\"\nport = 0\nshutdown_grace_secs = 1\n";

/// An `[[apps]]` table with the given id, key and secret, plus `extra` TOML lines.
pub fn app_toml(id: &str, key: &str, secret: &str, extra: &str) -> String {
    format!("\n[[apps]]\nid = \"{id}\"\nkey = \"{key}\"\nsecret = \"{secret}\"\n{extra}\n")
}

/// A config with the standard server section and the main app (`APP_ID`/`KEY`/`SECRET`)
/// with `extra` settings.
pub fn main_app(extra: &str) -> String {
    format!("{SERVER}{}", app_toml(APP_ID, KEY, SECRET, extra))
}

/// Retries `check` every 25 ms until it returns Some, within 5 s; for state the server
/// updates a moment later (subscriber counts reported by the edge).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
