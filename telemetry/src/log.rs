//! JSON log lines: one flat object per event with the app, socket and trace it belongs to.
//!
//! The app and socket come from the enclosing spans (a connection's span carries both, an API
//! request's the app), remembered by [`ContextFields`] when the span is created; the trace id
//! comes from the current span's OpenTelemetry context. Spans never carry payloads or secrets,
//! so neither reaches a log line through them.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// `url` as a log line may show it: scheme, host, port and path, without the user, password or
/// query (where tokens go). A comma-separated list (NATS servers) is cleaned entry by entry.
pub fn loggable_url(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let one = one.trim();
            let (scheme, rest) = one.split_once("://").unwrap_or(("", one));
            let end = rest.find(['?', '#']).unwrap_or(rest.len());
            let rest = &rest[..end];
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            match scheme {
                "" => format!("{host}{path}"),
                scheme => format!("{scheme}://{host}{path}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The span fields copied into every log line under them.
const CONTEXT: [&str; 2] = ["app_id", "socket_id"];

/// What a span contributes to the log lines of events inside it. Two plain fields rather than a
/// map: every WebSocket connection holds one for its whole life, so its size is per-connection
/// memory (a JSON map of the same two entries is about 600 bytes).
#[derive(Default)]
struct LogFields([Option<Box<str>>; CONTEXT.len()]);

impl LogFields {
    fn set(&mut self, field: &Field, value: impl FnOnce() -> Box<str>) {
        if let Some(i) = CONTEXT.iter().position(|name| *name == field.name()) {
            self.0[i] = Some(value());
        }
    }

    fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        CONTEXT
            .iter()
            .zip(&self.0)
            .filter_map(|(name, value)| Some((*name, value.as_deref()?)))
    }
}

impl Visit for LogFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, || value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, || format!("{value:?}").into());
    }
}

/// Remembers the [`CONTEXT`] fields of spans that have them; other spans cost one lookup.
pub(crate) struct ContextFields;

impl<S> Layer<S> for ContextFields
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let fields = attrs.metadata().fields();
        if !CONTEXT.iter().any(|name| fields.field(name).is_some()) {
            return;
        }
        let mut found = LogFields::default();
        attrs.record(&mut found);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(found);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(found) = span.extensions_mut().get_mut::<LogFields>() {
                values.record(found);
            }
        }
    }
}

/// The event's own fields.
struct EventFields<'a>(&'a mut Map<String, Value>);

impl Visit for EventFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

/// `{"timestamp", "level", "target", "message", …fields, "app_id", "socket_id", "trace_id"}`
/// on one line. The event's own fields win over the spans' if both name one.
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), timestamp.into());
        let meta = event.metadata();
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        event.record(&mut EventFields(&mut line));
        for span in ctx.event_scope().into_iter().flatten() {
            if let Some(found) = span.extensions().get::<LogFields>() {
                for (key, value) in found.entries() {
                    line.entry(key).or_insert_with(|| value.into());
                }
            }
        }
        if let Some(trace_id) = current_trace_id() {
            line.entry("trace_id").or_insert(trace_id.into());
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// The trace of the span the event happened in, when spans are exported.
fn current_trace_id() -> Option<String> {
    if !crate::trace::enabled() {
        return None;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| span.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn urls_lose_credentials_and_queries_in_logs() {
        for (url, shown) in [
            ("redis://:hunter2@cache:6379/0", "redis://cache:6379/0"),
            (
                "https://u:p@hooks.example.com/in?token=abc#x",
                "https://hooks.example.com/in",
            ),
            (
                "nats://a:1@n1:4222, nats://n2:4222",
                "nats://n1:4222,nats://n2:4222",
            ),
            ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(loggable_url(url), shown);
        }
    }

    #[test]
    fn lines_carry_the_app_and_socket_of_their_spans() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::registry().with(ContextFields).with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("connection", app_id = "a1", socket_id = "1.2");
            let _in = span.enter();
            tracing::warn!(channel = "c", count = 3, "something happened");
        });
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf-8");
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "something happened");
        assert_eq!(line["app_id"], "a1");
        assert_eq!(line["socket_id"], "1.2");
        assert_eq!(line["channel"], "c");
        assert_eq!(line["count"], 3);
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
