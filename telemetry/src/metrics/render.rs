//! The Prometheus text exposition format (version 0.0.4), and the `/metrics` response.

use std::fmt::{Display, Write};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;

use super::histogram::BOUNDS_US;
use super::{apps, enabled, instance, process, WebhookOutcome};
use super::{AppMetrics, Counter, Gauge, Histogram, Labeled, Timing};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: the text format, or 404 when metrics are off.
pub fn endpoint() -> Response<Full<Bytes>> {
    let (status, kind, body) = if enabled() {
        (StatusCode::OK, CONTENT_TYPE, render())
    } else {
        (
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"error":"metrics are off ([telemetry] metrics = false)"}"#.to_owned(),
        )
    };
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(kind) {
        res.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    res
}

type Apps = [(Arc<str>, Arc<AppMetrics>)];

/// One labelled sample of an app: extra labels and the value.
type Sample = (&'static [(&'static str, &'static str)], i64);

/// Every metric of this process.
pub fn render() -> String {
    let mut out = Out {
        text: String::with_capacity(8 * 1024),
        instance: instance(),
    };
    let apps = apps();
    app_state(&mut out, &apps);
    app_traffic(&mut out, &apps);
    app_outcomes(&mut out, &apps);
    process_metrics(&mut out);
    out.text
}

fn app_state(out: &mut Out, apps: &Apps) {
    let gauge = |g: &Gauge| vec![(NONE, g.get())];
    out.per_app(
        apps,
        "switchyard_connections",
        "gauge",
        "WebSocket connections open.",
        |m| gauge(&m.connections),
    );
    out.per_app(
        apps,
        "switchyard_subscriptions",
        "gauge",
        "Channel subscriptions held (one per socket and channel).",
        |m| gauge(&m.subscriptions),
    );
    out.per_app(
        apps,
        "switchyard_channels",
        "gauge",
        "Channels with at least one subscriber here.",
        |m| gauge(&m.channels),
    );
}

fn app_traffic(out: &mut Out, apps: &Apps) {
    out.per_app(apps, "switchyard_messages_received_total", "counter",
        "Messages in: frames from WebSocket clients (source=client), events accepted by the HTTP API (source=api).",
        |m| vec![(CLIENT, count(&m.client_messages)), (API, count(&m.api_events))]);
    out.per_app(
        apps,
        "switchyard_bytes_received_total",
        "counter",
        "Bytes in: client frames (source=client), event data through the HTTP API (source=api).",
        |m| vec![(CLIENT, count(&m.client_bytes)), (API, count(&m.api_bytes))],
    );
    out.per_app(
        apps,
        "switchyard_messages_sent_total",
        "counter",
        "Frames queued to WebSocket clients.",
        |m| vec![(NONE, count(&m.messages_sent))],
    );
    out.per_app(
        apps,
        "switchyard_bytes_sent_total",
        "counter",
        "Bytes of the frames queued to WebSocket clients.",
        |m| vec![(NONE, count(&m.bytes_sent))],
    );
    let name = "switchyard_fanout_latency_seconds";
    out.family(name, "histogram", "From the HTTP API accepting a trigger to its frame being queued on every subscribed socket of this edge.");
    for (id, m) in apps.iter().filter(|(_, m)| m.fanout_latency.count() > 0) {
        out.histogram(name, &[("app", id)], &m.fanout_latency);
    }
}

fn app_outcomes(out: &mut Out, apps: &Apps) {
    let name = "switchyard_rejections_total";
    out.family(
        name,
        "counter",
        "Refused connections, subscriptions, client events and API requests, by reason.",
    );
    for (id, m) in apps {
        let mut reasons: Vec<(&'static str, u64)> = m
            .rejections
            .read()
            .map(|r| r.iter().map(|(k, v)| (*k, v.get())).collect())
            .unwrap_or_default();
        reasons.sort();
        for (reason, n) in reasons {
            out.sample(name, &[("app", id), ("reason", reason)], n);
        }
    }
    let name = "switchyard_webhook_attempts_total";
    out.family(
        name,
        "counter",
        "Webhook POSTs by outcome: delivered, rejected (4xx, not retried), failed (retried).",
    );
    for (id, m) in apps {
        for outcome in WebhookOutcome::ALL {
            let labels = [("app", &**id), ("outcome", outcome.as_str())];
            out.sample(name, &labels, m.webhook_attempts(outcome));
        }
    }
    out.per_app(
        apps,
        "switchyard_webhook_dead_letters_total",
        "counter",
        "Webhooks given up after the retry window or a rejection.",
        |m| vec![(NONE, count(&m.webhook_dead_letters))],
    );
}

fn process_metrics(out: &mut Out) {
    let p = process();
    out.single(
        "switchyard_bus_messages_published_total",
        "counter",
        "Messages published on the bus.",
        p.bus_published.get(),
    );
    out.single(
        "switchyard_bus_messages_received_total",
        "counter",
        "Messages received from the bus.",
        p.bus_received.get(),
    );
    out.labeled_counters(
        "switchyard_bus_errors_total",
        "Bus failures by operation.",
        "op",
        &p.bus_errors,
    );
    out.timings(
        "switchyard_grpc_client",
        "gRPC calls to channel-core, by method, as callers see them.",
        "method",
        &p.grpc_client,
    );
    out.timings(
        "switchyard_grpc_server",
        "gRPC calls served by channel-core, by method.",
        "method",
        &p.grpc_server,
    );
    out.timings(
        "switchyard_redis",
        "Redis calls of channel-core's store, by operation.",
        "op",
        &p.redis,
    );
    out.single(
        "switchyard_webhook_queue_depth",
        "gauge",
        "Webhook jobs not yet acked (waiting or being delivered).",
        p.webhook_queue_depth.get(),
    );
    out.single(
        "switchyard_slow_consumers_closed_total",
        "counter",
        "Connections closed because their outbound queue overflowed (4100).",
        p.slow_consumers.get(),
    );
}

const NONE: &[(&str, &str)] = &[];
const CLIENT: &[(&str, &str)] = &[("source", "client")];
const API: &[(&str, &str)] = &[("source", "api")];

fn count(c: &Counter) -> i64 {
    i64::try_from(c.get()).unwrap_or(i64::MAX)
}

struct Out {
    text: String,
    instance: &'static str,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        self.text.push('{');
        for (key, value) in labels {
            let _ = write!(self.text, "{key}=\"{}\",", escape(value));
        }
        let _ = write!(self.text, "instance=\"{}\"}}", escape(self.instance));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.text, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A family labelled by app; `samples` gives each app's extra labels and values.
    fn per_app(
        &mut self,
        apps: &Apps,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl Fn(&AppMetrics) -> Vec<Sample>,
    ) {
        self.family(name, kind, help);
        for (id, m) in apps {
            for (extra, value) in samples(m) {
                let mut labels = vec![("app", &**id)];
                labels.extend_from_slice(extra);
                self.sample(name, &labels, value);
            }
        }
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let (counts, sum) = h.snapshot();
        let bucket = format!("{name}_bucket");
        for (bound, n) in BOUNDS_US.iter().zip(counts) {
            let le = (*bound as f64 / 1e6).to_string();
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, n);
        }
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        self.sample(&bucket, &inf, counts[BOUNDS_US.len()]);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, counts[BOUNDS_US.len()]);
    }

    fn labeled_counters(&mut self, name: &str, help: &str, label: &str, family: &Labeled<Counter>) {
        self.family(name, "counter", help);
        for (value, c) in family.snapshot() {
            self.sample(name, &[(label, value)], c.get());
        }
    }

    /// `<prefix>_duration_seconds` (histogram) and `<prefix>_errors_total` of each label value.
    fn timings(&mut self, prefix: &str, help: &str, label: &str, family: &Labeled<Timing>) {
        let entries = family.snapshot();
        let name = format!("{prefix}_duration_seconds");
        self.family(
            &name,
            "histogram",
            &format!("Latency of {}", lowercase_first(help)),
        );
        for (value, t) in &entries {
            self.histogram(&name, &[(label, value)], &t.latency);
        }
        let name = format!("{prefix}_errors_total");
        self.family(
            &name,
            "counter",
            &format!("Failures of {}", lowercase_first(help)),
        );
        for (value, t) in &entries {
            self.sample(&name, &[(label, value)], t.errors.get());
        }
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

/// Label values escape `\`, `"` and line feeds.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::super::{app, process, set_instance};
    use super::*;

    #[test]
    fn renders_families_with_app_and_instance_labels() {
        set_instance("test \"1\"");
        let m = app("render-test");
        m.connections.inc();
        m.connections.inc();
        m.messages_sent.add(5);
        m.fanout_latency.observe_us(300);
        m.reject("bad_request");
        process()
            .grpc_client
            .get("Heartbeat")
            .latency
            .observe_us(2_000);
        let text = render();
        for line in [
            "# TYPE switchyard_connections gauge",
            r#"switchyard_connections{app="render-test",instance="test \"1\""} 2"#,
            r#"switchyard_messages_sent_total{app="render-test",instance="test \"1\""} 5"#,
            r#"switchyard_fanout_latency_seconds_bucket{app="render-test",le="0.00025",instance="test \"1\""} 0"#,
            r#"switchyard_fanout_latency_seconds_bucket{app="render-test",le="0.0005",instance="test \"1\""} 1"#,
            r#"switchyard_fanout_latency_seconds_count{app="render-test",instance="test \"1\""} 1"#,
            r#"switchyard_rejections_total{app="render-test",reason="bad_request",instance="test \"1\""} 1"#,
            r#"switchyard_grpc_client_duration_seconds_bucket{method="Heartbeat",le="0.0025",instance="test \"1\""} 1"#,
            r#"switchyard_slow_consumers_closed_total{instance="test \"1\""} 0"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line}\nin\n{text}"
            );
        }
        let res = endpoint();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// Every metric the Grafana dashboard queries is one this renders (histograms through
    /// their `_bucket`, `_sum` and `_count` series).
    #[test]
    fn the_dashboard_queries_only_metrics_that_exist() {
        let dashboard = include_str!("../../../deploy/grafana/switchyard.json");
        let text = render();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let mut queried = 0;
        for (at, _) in dashboard.match_indices("switchyard_") {
            let name: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| families.contains(base))
                .unwrap_or(&name);
            assert!(families.contains(&family), "the dashboard queries {name}");
            queried += 1;
        }
        assert!(queried > 20, "{queried} queries found");
    }
}
