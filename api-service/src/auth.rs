//! Finds the app and checks the request's signature, timestamp and body MD5.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_apps::{App, AppStore};
use switchyard_protocol::rest::{self, Query};

use crate::error::ApiError;

pub(crate) async fn authenticate(
    apps: &dyn AppStore,
    app_id: &str,
    method: &str,
    path: &str,
    query: &Query,
    body: &[u8],
) -> Result<Arc<App>, ApiError> {
    let app = apps
        .by_id(app_id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("unknown app id {app_id:?}")))?;
    match query.get("auth_key") {
        None => return Err(ApiError::Unauthorized("missing auth_key parameter".into())),
        Some(key) if key != app.key => {
            return Err(ApiError::Unauthorized(
                "auth_key does not match the app".into(),
            ))
        }
        Some(_) => {}
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    rest::verify(app.secret.expose(), method, path, query, body, now)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    if !app.enabled {
        return Err(ApiError::Forbidden("application is disabled".into()));
    }
    Ok(app)
}
