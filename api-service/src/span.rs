//! The span of one API request: named after its route (never the raw path, which holds
//! channel and user names), continuing the caller's trace when the request carries a W3C
//! `traceparent` header.

use hyper::body::Incoming;
use hyper::Request;
use switchyard_telemetry::{trace, TraceParent};
use tracing::field::Empty;
use tracing::Span;

/// `name` is the route's template, from [`crate::route::Target::name`].
pub(crate) fn request(req: &Request<Incoming>, name: &'static str) -> Span {
    if !trace::enabled() {
        // Only for log lines then: the app is all they show. The route, kind and status
        // fields would be formatted for every request (about a tenth of a trigger's CPU,
        // measured with callgrind) and never read.
        return tracing::info_span!("api.request", app_id = Empty);
    }
    let span = tracing::info_span!(
        "api.request",
        otel.name = name,
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
