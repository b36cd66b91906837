//! W3C trace context as it crosses process boundaries (NATS headers, gRPC metadata, the
//! in-process bus), and how a `tracing` span hands it on or takes it up.
//!
//! Only the `traceparent` header travels; `tracestate` is dropped, as no vendor state is used.
//! A [`TraceParent`] is `Copy`, so carrying it in every bus envelope costs no allocation.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Set once spans are exported. Every helper here returns at once while it is off, so the hot
/// paths pay one relaxed load for tracing they do not use.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported by this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The `traceparent` of W3C Trace Context: which trace, which span is the parent, and whether
/// the trace was sampled (exported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

impl TraceParent {
    /// The header (and gRPC metadata key) carrying it.
    pub const HEADER: &'static str = "traceparent";

    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`. Later versions are read by the same first four
    /// fields, as the specification asks; zero ids and version `ff` are invalid.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let exact = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !exact(version, 2) || version.eq_ignore_ascii_case("ff") {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        if !exact(trace, 32) || !exact(span, 16) || !exact(flags, 2) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(TraceParent {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    pub fn encode(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    /// The trace id as the 32 hex digits Jaeger and the logs show.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    fn span_context(&self) -> SpanContext {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from_bytes(self.trace_id.to_be_bytes()),
            SpanId::from_bytes(self.span_id.to_be_bytes()),
            flags,
            true,
            TraceState::default(),
        )
    }

    fn from_span_context(context: &SpanContext) -> Option<TraceParent> {
        context.is_valid().then(|| TraceParent {
            trace_id: u128::from_be_bytes(context.trace_id().to_bytes()),
            span_id: u64::from_be_bytes(context.span_id().to_bytes()),
            sampled: context.is_sampled(),
        })
    }
}

/// The context to hand to the next hop with `span` as the parent; `None` when tracing is off or
/// the span is disabled. An unsampled trace is handed on too, so the next hop does not start
/// (and perhaps sample) a trace of its own for the same work.
pub fn of(span: &Span) -> Option<TraceParent> {
    if !enabled() || span.is_none() {
        return None;
    }
    let context = span.context();
    TraceParent::from_span_context(context.span().span_context())
}

/// [`of`] the current span.
pub fn current() -> Option<TraceParent> {
    if !enabled() {
        return None;
    }
    of(&Span::current())
}

/// Whether the current span is being exported: the test that guards child spans on hot paths
/// (bus publish, Redis calls), which are worth recording only inside a sampled trace.
pub fn current_is_sampled() -> bool {
    current().is_some_and(|t| t.sampled)
}

/// Makes `parent`, received from another process, the parent of `span`. Must run before the
/// span is first entered.
pub fn set_parent(span: &Span, parent: TraceParent) {
    if !enabled() || span.is_none() {
        return;
    }
    let context = opentelemetry::Context::new().with_remote_span_context(parent.span_context());
    // Fails only without the OpenTelemetry layer or after the span started: then the span
    // stays a root, which loses the link but nothing else.
    let _ = span.set_parent(context);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let t = TraceParent {
            trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
            span_id: 0x00f067aa0ba902b7,
            sampled: true,
        };
        let text = t.encode();
        assert_eq!(
            text,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(TraceParent::parse(&text), Some(t));
        assert_eq!(
            t.trace_id_hex(),
            "4bf92f3577b34da6a3ce929d0e0e4736".to_owned()
        );
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-comes";
        assert!(TraceParent::parse(future).is_some_and(|t| !t.sampled));
    }

    #[test]
    fn off_means_nothing_is_handed_on() {
        assert!(!enabled());
        assert_eq!(current(), None);
        assert!(!current_is_sampled());
    }
}
