//! The admin API: managing apps over HTTP with a bearer token (`[server] admin_token`).
//!
//! `GET /admin/apps`, `POST /admin/apps`, `GET|PATCH /admin/apps/{id}`,
//! `POST /admin/apps/{id}/enable|disable|rotate-secret`. Secrets appear only in the answers
//! to create and rotate-secret, or with `?show_secret=true`. Every change is announced on the
//! bus so each service drops its cached copy of the app at once.

use std::sync::Arc;

use hyper::{header, Method, StatusCode};
use serde_json::{json, Map, Value};
use switchyard_apps::{changes, App, AppAdmin, Secret};
use switchyard_bus::{Bus, Envelope, APPS_CHANGED_SUBJECT};
use switchyard_protocol::rest::Query;

use crate::error::ApiError;
use crate::route::AdminRoute;

/// What the admin API needs; absent when no token is configured (the API is then off).
#[derive(Clone)]
pub struct AdminDeps {
    pub store: Arc<dyn AppAdmin>,
    pub token: Secret,
}

pub(crate) struct Request<'a> {
    pub method: &'a Method,
    /// Path segments after `admin`.
    pub rest: &'a [&'a str],
    /// `None` when no admin route matches `method` and `rest`.
    pub route: Option<AdminRoute<'a>>,
    pub query: &'a Query,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

/// Answers one admin request: the status (200, or 201 for a new app) and the JSON body.
pub(crate) async fn handle(
    deps: Option<&AdminDeps>,
    bus: &dyn Bus,
    req: Request<'_>,
) -> Result<(StatusCode, Value), ApiError> {
    let Some(deps) = deps else {
        return Err(ApiError::AdminApiOff);
    };
    if !authorized(&deps.token, req.authorization) {
        return Err(ApiError::AdminTokenRejected);
    }
    let Some(route) = req.route else {
        return Err(ApiError::NoSuchAdminEndpoint(format!(
            "{} /admin/{}",
            req.method,
            req.rest.join("/")
        )));
    };
    let store = deps.store.as_ref();
    let show_secret = req.query.get("show_secret") == Some("true");
    let (status, app, secret_shown) = match route {
        AdminRoute::ListApps => {
            let apps: Vec<Value> = store
                .list()
                .await
                .map_err(ApiError::AppStore)?
                .iter()
                .map(|a| changes::view(a, show_secret))
                .collect();
            return Ok((StatusCode::OK, json!({ "apps": apps })));
        }
        AdminRoute::CreateApp => {
            let app = new_app(&parse(req.body)?)?;
            store.create(&app).await.map_err(ApiError::AppStore)?;
            (StatusCode::CREATED, app, true)
        }
        AdminRoute::GetApp { id } => (StatusCode::OK, find(store, id).await?, show_secret),
        AdminRoute::UpdateApp { id } => {
            let app = changes::apply_patch(&find(store, id).await?, &parse(req.body)?)
                .map_err(ApiError::AppStore)?;
            changes::validate(&app).map_err(ApiError::AppStore)?;
            if !store.update(&app).await.map_err(ApiError::AppStore)? {
                return Err(not_found(id));
            }
            (StatusCode::OK, app, show_secret)
        }
        AdminRoute::SetEnabled { id, enabled } => {
            let app = changes::set_enabled(store, id, enabled)
                .await
                .map_err(ApiError::AppStore)?
                .ok_or_else(|| not_found(id))?;
            (StatusCode::OK, app, show_secret)
        }
        AdminRoute::RotateSecret { id } => {
            let app = changes::rotate_secret(store, id)
                .await
                .map_err(ApiError::AppStore)?
                .ok_or_else(|| not_found(id))?;
            (StatusCode::OK, app, true)
        }
    };
    if req.method != Method::GET {
        announce(bus, &app.id).await;
        tracing::info!(app_id = %app.id, action = %req.rest.last().unwrap_or(&""), "app changed");
    }
    Ok((status, json!({ "app": changes::view(&app, secret_shown) })))
}

/// Tells every service to forget its cached copy of the app. A failure is logged, not
/// returned: the change is stored, and caches expire by themselves within their TTL.
pub async fn announce(bus: &dyn Bus, app_id: &str) {
    let envelope = Envelope::frame(app_id.as_bytes().to_vec(), None);
    if let Err(e) = bus.publish(APPS_CHANGED_SUBJECT, envelope).await {
        tracing::warn!(app_id, error = %e, "could not announce an app change; caches expire by themselves");
    }
}

/// A new app from `{"id": …}` plus any settings; `key` and `secret` are generated when
/// left out.
pub fn new_app(fields: &Value) -> Result<App, ApiError> {
    let Value::Object(fields) = fields else {
        return Err(ApiError::InvalidRequest("expected a JSON object".into()));
    };
    let mut rest: Map<String, Value> = fields.clone();
    let text = |v: Option<Value>, name: &str| match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::InvalidRequest(format!("{name} must be a string"))),
    };
    let id = text(rest.remove("id"), "id")?
        .ok_or_else(|| ApiError::InvalidRequest("id is required".into()))?;
    let key = text(rest.remove("key"), "key")?.unwrap_or_else(changes::new_key);
    let secret = match text(rest.remove("secret"), "secret")? {
        Some(secret) => secret,
        None => changes::new_secret().expose().to_owned(),
    };
    let app = changes::apply_patch(&App::new(&id, &key, &secret), &Value::Object(rest))
        .map_err(ApiError::AppStore)?;
    changes::validate(&app).map_err(ApiError::AppStore)?;
    Ok(app)
}

async fn find(store: &dyn AppAdmin, id: &str) -> Result<App, ApiError> {
    store
        .by_id(id)
        .await
        .map_err(ApiError::AppStore)?
        .map(|app| (*app).clone())
        .ok_or_else(|| not_found(id))
}

fn parse(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidRequest(format!("request body is not valid JSON: {e}")))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NoSuchApp(id.to_owned())
}

/// Compares in constant time, so response timing does not reveal how much of a guess matched.
fn authorized(token: &Secret, header: Option<&str>) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn authorization(headers: &hyper::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly() {
        let token = Secret::new("t0ken");
        assert!(authorized(&token, Some("Bearer t0ken")));
        assert!(!authorized(&token, Some("Bearer t0ke")));
        assert!(!authorized(&token, Some("Bearer t0kenn")));
        assert!(!authorized(&token, Some("t0ken")));
        assert!(!authorized(&token, None));
    }

    #[test]
    fn new_apps_get_generated_credentials_and_settings() {
        let app = new_app(&json!({"id": "a1", "max_connections": 5})).expect("valid");
        assert_eq!(app.id, "a1");
        assert_eq!(app.max_connections, 5);
        assert!(!app.key.is_empty() && !app.secret.expose().is_empty());
        assert!(new_app(&json!({"key": "k"})).is_err(), "id is required");
        assert!(new_app(&json!({"id": "a", "bogus": 1})).is_err());
    }
}
