//! Finds the app and checks the request's signature, timestamp and body MD5.
//!
//! Two steps, so the caller knows when the app exists: a refusal after that point is counted
//! under the app, one before it is not.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_apps::{App, AppStore};
use switchyard_protocol::rest::{self, Query};

use crate::error::ApiError;

pub(crate) async fn find_app(apps: &dyn AppStore, app_id: &str) -> Result<Arc<App>, ApiError> {
    apps.by_id(app_id)
        .await
        .map_err(ApiError::AppLookup)?
        .ok_or_else(|| ApiError::UnknownApp(app_id.to_owned()))
}

/// Checks that `app` signed the request and is enabled.
pub(crate) fn verify(
    app: &App,
    method: &str,
    path: &str,
    query: &Query,
    body: &[u8],
) -> Result<(), ApiError> {
    match query.get("auth_key") {
        None => return Err(ApiError::MissingAuthKey),
        Some(key) if key != app.key => return Err(ApiError::WrongAuthKey),
        Some(_) => {}
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    rest::verify(app.secret.expose(), method, path, query, body, now)
        .map_err(ApiError::SignatureRejected)?;
    if !app.enabled {
        return Err(ApiError::AppDisabled);
    }
    Ok(())
}
