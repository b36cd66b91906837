//! Distributed tracing across a real cluster: an OTLP/gRPC receiver in the test collects the
//! spans every service exports (sampling 1), and one trigger and one subscribe must each form
//! one linked trace across processes.

mod cluster;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{Options, TestCluster};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;

/// How long spans may take to reach the receiver (the services batch them every 100 ms here).
const EXPORTED: Duration = Duration::from_secs(20);

/// One received span, reduced to what the assertions read.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_id: String,
    attributes: HashMap<String, String>,
}

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

fn text(value: Option<&Any>) -> String {
    match value {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(n)) => n.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
            (kv.key.clone(), text(value))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.push(Received {
                    service: service.clone(),
                    name: span.name.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                });
            }
        }
        self.spans.lock().expect("spans").extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Starts the OTLP/gRPC endpoint on an ephemeral port; returns the receiver and its URL.
    async fn start() -> (Receiver, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let receiver = Receiver::default();
        let service = TraceServiceServer::new(receiver.clone());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        (receiver, url)
    }

    /// Waits (bounded) until `find` finds what it looks for among the spans received so far.
    async fn wait_for<T>(&self, what: &str, find: impl Fn(&[Received]) -> Option<T>) -> T {
        let deadline = Instant::now() + EXPORTED;
        loop {
            let spans = self.spans.lock().expect("spans").clone();
            if let Some(found) = find(&spans) {
                return found;
            }
            if Instant::now() > deadline {
                let names: Vec<String> = spans
                    .iter()
                    .map(|s| format!("{}/{} {}", s.service, s.name, s.trace_id))
                    .collect();
                panic!("{what}: not exported within {EXPORTED:?}; received {names:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The span of `trace` named `name` exported by `service` whose parent is `parent`.
fn child<'a>(
    spans: &'a [Received],
    parent: &Received,
    service: &str,
    name: &str,
) -> Option<&'a Received> {
    spans.iter().find(|s| {
        s.trace_id == parent.trace_id
            && s.parent_id == parent.span_id
            && s.service == service
            && s.name == name
    })
}

async fn traced_cluster() -> (TestCluster, Receiver) {
    let (receiver, url) = Receiver::start().await;
    // Export every 100 ms rather than the default 5 s; the services inherit the variable.
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    let cluster = TestCluster::start(Options {
        sections: format!("[telemetry]\notlp_endpoint = \"{url}\"\nsample_ratio = 1.0\n"),
        ..Options::default()
    })
    .await;
    (cluster, receiver)
}

#[tokio::test]
async fn one_trace_links_a_trigger_from_the_api_over_the_bus_to_the_edge_fan_out() {
    let (cluster, receiver) = traced_cluster().await;
    let channel = cluster.name("traced");
    let mut client = cluster.connect(1).await;
    client.subscribe(&channel).await;
    cluster.rest().trigger(&channel, "traced-event", "{}").await;
    client.recv_event("traced-event").await;

    let (api, publish, receive, fanout) = receiver
        .wait_for("api → bus → edge fan-out", |spans| {
            let api = spans
                .iter()
                .find(|s| s.service == "api-service" && s.name == "POST /apps/{app_id}/events")?;
            let publish = child(spans, api, "api-service", "bus.publish")?;
            let receive = child(spans, publish, "edge-gateway", "edge.receive")?;
            let fanout = child(spans, receive, "edge-gateway", "edge.fanout")?;
            Some((
                api.clone(),
                publish.clone(),
                receive.clone(),
                fanout.clone(),
            ))
        })
        .await;
    assert_eq!(api.parent_id, "", "the API request starts the trace");
    assert_eq!(
        fanout.attributes.get("recipients").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        publish
            .attributes
            .get("messaging.system")
            .map(String::as_str),
        Some("nats")
    );
    assert_eq!(
        api.attributes.get("app_id").map(String::as_str),
        Some(cluster::CLUSTER_APP)
    );
    for span in [&publish, &receive, &fanout] {
        assert_eq!(span.trace_id, api.trace_id, "{span:?}");
    }
    // One fan-out span for the channel, not one per socket.
    let fanouts = receiver
        .spans
        .lock()
        .expect("spans")
        .iter()
        .filter(|s| s.trace_id == api.trace_id && s.name == "edge.fanout")
        .count();
    assert_eq!(fanouts, 1);
}

#[tokio::test]
async fn one_trace_links_a_subscribe_from_the_edge_through_core_to_redis() {
    let (cluster, receiver) = traced_cluster().await;
    let channel = cluster.name("traced-subscribe");
    let mut client = cluster.connect(0).await;
    client.subscribe(&channel).await;

    let (subscribe, call, served, redis) = receiver
        .wait_for("edge subscribe → core → Redis", |spans| {
            let subscribe = spans.iter().find(|s| {
                s.service == "edge-gateway"
                    && s.name == "edge.subscribe"
                    && s.attributes.get("channel") == Some(&channel)
            })?;
            let call = child(spans, subscribe, "edge-gateway", "ReportCounts")?;
            let served = child(spans, call, "channel-core", "ReportCounts")?;
            let redis = spans.iter().find(|s| {
                s.trace_id == served.trace_id
                    && s.parent_id == served.span_id
                    && s.service == "channel-core"
                    && s.attributes.get("db.system").map(String::as_str) == Some("redis")
            })?;
            Some((
                subscribe.clone(),
                call.clone(),
                served.clone(),
                redis.clone(),
            ))
        })
        .await;
    assert_eq!(subscribe.parent_id, "", "the subscribe starts the trace");
    assert_eq!(
        call.attributes.get("rpc.system").map(String::as_str),
        Some("grpc")
    );
    assert_eq!(
        served.attributes.get("rpc.method").map(String::as_str),
        Some("ReportCounts")
    );
    assert_eq!(redis.trace_id, subscribe.trace_id);
}
