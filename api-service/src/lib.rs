//! api-service: the Pusher HTTP API.
//!
//! Stateless: every request is authenticated against the app store, events go straight to the
//! bus, and queries go to channel-core.

mod admin;
mod auth;
mod channels;
mod error;
mod route;
mod span;
mod trigger;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use channel_core::{ApiCore, Quota};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use serde_json::Value;
use switchyard_apps::{App, AppStore};
use switchyard_bus::{user_subject, Bus, Control, Envelope};
use switchyard_listener::Body;
use switchyard_protocol::rest::Query;
use switchyard_telemetry::metrics;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

use crate::route::{Route, Target};

pub use admin::{announce, new_app, AdminDeps};
pub use error::ApiError;

/// Bodies above this are refused with 413 before they are read: a batch of 10 events of
/// 10 KB, JSON-escaped, fits comfortably.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// A request still unanswered after this (a slow body upload, a stuck dependency) gets 503:
/// every dependency call has its own shorter timeout, so this only bounds the sum.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What the API talks to.
#[derive(Clone)]
pub struct ApiDeps {
    pub apps: Arc<dyn AppStore>,
    pub core: Arc<dyn ApiCore>,
    pub bus: Arc<dyn Bus>,
    /// The admin API (`/admin/apps`); `None` leaves it off.
    pub admin: Option<AdminDeps>,
}

pub struct Api {
    deps: ApiDeps,
}

impl Api {
    pub fn new(deps: ApiDeps) -> Arc<Api> {
        Arc::new(Api { deps })
    }

    /// Whether the bus is connected and channel-core answers.
    pub async fn is_ready(&self) -> bool {
        self.deps.bus.is_connected() && self.deps.core.ready().await.is_ok()
    }

    /// Handles a request under `/apps/` or `/admin/`.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(switchyard_protocol::rest::percent_decode)
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let target = Target::parse(req.method(), &segments);
        let span = span::request(&req, target.name());
        // The app a refusal is counted under: set once the app is known to exist, so a flood
        // of made-up app ids cannot mint metric labels.
        let mut known_app = None;
        let routed = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.route(req, target, &path, &mut known_app),
        )
        .instrument(span.clone())
        .await
        .unwrap_or(Err(ApiError::Timeout(REQUEST_TIMEOUT)));
        let status = routed.as_ref().map_or_else(ApiError::status, |(s, _)| *s);
        span.record("http.response.status_code", status.as_u16());
        match routed {
            Ok((status, body)) => switchyard_listener::json(status, body.to_string()),
            Err(e) => {
                metrics::app(known_app.as_deref().unwrap_or("")).reject(e.reason());
                span.in_scope(|| {
                    tracing::debug!(error = %e, status = %e.status(), "api request refused");
                });
                e.into_response()
            }
        }
    }

    /// The body is read and checked before the target is acted on, so every route sees a
    /// JSON body of bounded size.
    async fn route(
        &self,
        req: Request<Incoming>,
        target: Target<'_>,
        path: &str,
        known_app: &mut Option<String>,
    ) -> Result<(StatusCode, Value), ApiError> {
        let method = req.method().clone();
        let authorization = admin::authorization(req.headers()).map(str::to_owned);
        let query = Query::parse(req.uri().query().unwrap_or(""));
        let json_body = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
        let body = read_body(req).await?;
        if !body.is_empty() && !json_body {
            return Err(ApiError::NotJson);
        }
        let (app_id, route) = match target {
            Target::App { app_id, route } => (app_id, route),
            Target::Admin { rest, route } => {
                let req = admin::Request {
                    method: &method,
                    rest,
                    route,
                    query: &query,
                    authorization: authorization.as_deref(),
                    body: &body,
                };
                return admin::handle(self.deps.admin.as_ref(), self.deps.bus.as_ref(), req).await;
            }
            Target::Unknown => return Err(ApiError::NoSuchEndpoint(path.to_owned())),
        };
        Span::current().record("app_id", app_id);
        let app = auth::find_app(self.deps.apps.as_ref(), app_id).await?;
        // The app exists: a request it did not sign (or made while disabled) counts under it.
        *known_app = Some(app_id.to_owned());
        auth::verify(&app, method.as_str(), path, &query, &body)?;
        if method == Method::GET {
            self.take_quota(&app, Quota::ReadRequests, 1).await?;
        }
        let Some(route) = route else {
            return Err(ApiError::NoSuchEndpoint(format!("{method} {path}")));
        };
        let body = match route {
            Route::Events => self.events(&app, &body).await,
            Route::BatchEvents => self.batch_events(&app, &body).await,
            Route::Channels => self.channels(&app, &query).await,
            Route::Channel { channel } => self.channel(&app, channel, &query).await,
            Route::ChannelUsers { channel } => self.users(&app, channel).await,
            Route::TerminateUser { user_id } => {
                let envelope = Envelope::control(Control::TerminateUser);
                self.deps
                    .bus
                    .publish(&user_subject(&app.id, user_id), envelope)
                    .await?;
                Ok(Value::Object(Default::default()))
            }
        }?;
        Ok((StatusCode::OK, body))
    }
}

impl Api {
    /// Takes `amount` from the app's cluster-wide per-second allowance; 429 beyond it.
    pub(crate) async fn take_quota(
        &self,
        app: &App,
        quota: Quota,
        amount: u64,
    ) -> Result<(), ApiError> {
        let per_second = u64::from(match quota {
            Quota::BackendEvents => app.max_backend_events_per_second,
            Quota::ReadRequests => app.max_read_requests_per_second,
        });
        if per_second == 0 {
            return Ok(());
        }
        if self
            .deps
            .core
            .take_quota(&app.id, quota, amount, per_second)
            .await?
        {
            return Ok(());
        }
        let what = match quota {
            Quota::BackendEvents => "events",
            Quota::ReadRequests => "read requests",
        };
        Err(ApiError::RateLimited { per_second, what })
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::BodyTooLarge {
            max: MAX_BODY_BYTES,
        }),
        Err(e) => Err(ApiError::UnreadableBody(e)),
    }
}

/// Runs a standalone API on `listener` until `shutdown`.
pub async fn run(
    listener: impl Into<switchyard_listener::Listener>,
    deps: ApiDeps,
    shutdown: CancellationToken,
) {
    let api = Api::new(deps);
    let handler: switchyard_listener::Handler = Arc::new(move |req, _peer| {
        let api = api.clone();
        Box::pin(async move {
            match req.uri().path() {
                "/up" => switchyard_listener::health(true),
                "/ready" => switchyard_listener::health(api.is_ready().await),
                "/metrics" => metrics::endpoint(),
                _ => api.handle(req).await,
            }
        })
    });
    let tracker = TaskTracker::new();
    switchyard_listener::serve(listener, handler, shutdown, tracker.clone()).await;
    tracker.close();
    tracker.wait().await;
}
