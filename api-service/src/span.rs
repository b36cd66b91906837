//! The span of one API request: named after its route (never the raw path, which holds
//! channel and user names), continuing the caller's trace when the request carries a W3C
//! `traceparent` header.

use hyper::body::Incoming;
use hyper::{Method, Request};
use switchyard_telemetry::{trace, TraceParent};
use tracing::field::Empty;
use tracing::Span;

pub(crate) fn request(req: &Request<Incoming>) -> Span {
    if !trace::enabled() {
        // Only for log lines then: the app is all they show. The route, kind and status
        // fields would be formatted for every request (about a tenth of a trigger's CPU,
        // measured with callgrind) and never read.
        return tracing::info_span!("api.request", app_id = Empty);
    }
    let span = tracing::info_span!(
        "api.request",
        otel.name = operation(req.method(), req.uri().path()),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.response.status_code = Empty,
        app_id = Empty,
    );
    let parent = req
        .headers()
        .get(TraceParent::HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    if let Some(parent) = parent {
        trace::set_parent(&span, parent);
    }
    span
}

/// The route template of a request, as the span's name.
fn operation(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["apps", _, "events"]) => "POST /apps/{app_id}/events",
        (&Method::POST, ["apps", _, "batch_events"]) => "POST /apps/{app_id}/batch_events",
        (&Method::GET, ["apps", _, "channels"]) => "GET /apps/{app_id}/channels",
        (&Method::GET, ["apps", _, "channels", _]) => "GET /apps/{app_id}/channels/{channel}",
        (&Method::GET, ["apps", _, "channels", _, "users"]) => {
            "GET /apps/{app_id}/channels/{channel}/users"
        }
        (&Method::POST, ["apps", _, "users", _, "terminate_connections"]) => {
            "POST /apps/{app_id}/users/{user_id}/terminate_connections"
        }
        (_, ["admin", ..]) => "/admin",
        _ => "unknown route",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_named_by_route_not_path() {
        assert_eq!(
            operation(&Method::POST, "/apps/42/events"),
            "POST /apps/{app_id}/events"
        );
        assert_eq!(
            operation(&Method::GET, "/apps/42/channels/presence-room/users"),
            "GET /apps/{app_id}/channels/{channel}/users"
        );
        assert_eq!(operation(&Method::GET, "/admin/apps/42"), "/admin");
        assert_eq!(
            operation(&Method::DELETE, "/apps/42/events"),
            "unknown route"
        );
    }
}
