//! `/metrics` through scripted scenarios: every step's effect on the counters and gauges is
//! checked exactly, on the embedded server (one process) and on a cluster (each service its
//! own).

mod cluster;
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::{Options, TestCluster, CLUSTER_APP};
use serde_json::json;
use support::{app_toml, http, TestServer, SERVER, WAIT};
use switchyard_protocol::frame;

/// One scrape: `name{labels}` without the `instance` label → value.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    async fn of(addr: SocketAddr) -> Scrape {
        let (status, body) = http(addr, "GET", "/metrics", None, b"").await;
        assert_eq!(status, 200, "GET /metrics on {addr}: {body}");
        let text = body.as_str().expect("the text format, not JSON");
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("series and value");
                let value = value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line}"));
                (without_instance(series), value)
            })
            .collect();
        Scrape(samples)
    }

    /// A series never reported counts as 0, as it does for Prometheus' `absent` logic here.
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }
}

/// `name{a="1",instance="x"}` → `name{a="1"}`; `name{instance="x"}` → `name`.
fn without_instance(series: &str) -> String {
    let Some(at) = series.find("instance=\"") else {
        return series.to_owned();
    };
    let head = series[..at].trim_end_matches(',');
    match head.strip_suffix('{') {
        Some(name) => name.to_owned(),
        None => format!("{head}}}"),
    }
}

/// Waits (bounded) until every series has its expected value; the fan-out and the cleanup of
/// a closed connection finish just after the client sees their effect.
async fn expect(addr: SocketAddr, step: &str, expected: &[(String, f64)]) -> Scrape {
    let deadline = Instant::now() + WAIT;
    loop {
        let scrape = Scrape::of(addr).await;
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(series, want)| scrape.get(series) != *want)
            .map(|(series, want)| format!("{series} = {} (want {want})", scrape.get(series)))
            .collect();
        if wrong.is_empty() {
            return scrape;
        }
        if Instant::now() > deadline {
            panic!("after {step}:\n  {}", wrong.join("\n  "));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn series(name: &str, app: &str, extra: &str) -> String {
    format!("{name}{{app=\"{app}\"{extra}}}")
}

#[tokio::test]
async fn embedded_metrics_follow_a_scripted_session() {
    let (app, key, secret) = ("metrics-app", "metrics-key", "metrics-secret");
    let server = TestServer::start(&format!("{SERVER}{}", app_toml(app, key, secret, ""))).await;
    let addr = server.addr;
    let m = |name: &str, extra: &str, value: f64| (series(name, app, extra), value);
    let before = Scrape::of(addr).await;
    let published = "switchyard_bus_messages_published_total";
    let unknown_app = series(
        "switchyard_rejections_total",
        "",
        ",reason=\"app_not_found\"",
    );

    // Two connections subscribe to one channel.
    let mut c1 = server.connect_key(key).await;
    let mut c2 = server.connect_key(key).await;
    c1.subscribe("room").await;
    c2.subscribe("room").await;
    let subscribe = json!({"event": "pusher:subscribe", "data": {"channel": "room"}});
    let subscribe_bytes = subscribe.to_string().len() as f64;
    let subscribed = expect(
        addr,
        "two connections subscribed",
        &[
            m("switchyard_connections", "", 2.0),
            m("switchyard_subscriptions", "", 2.0),
            m("switchyard_channels", "", 1.0),
            m(
                "switchyard_messages_received_total",
                ",source=\"client\"",
                2.0,
            ),
            m(
                "switchyard_bytes_received_total",
                ",source=\"client\"",
                2.0 * subscribe_bytes,
            ),
            // connection_established and subscription_succeeded, each.
            m("switchyard_messages_sent_total", "", 4.0),
        ],
    )
    .await;

    // One trigger fans out to both.
    let rest = server.rest_for(app, key, secret);
    rest.trigger("room", "ev", "hello-metrics").await;
    c1.recv_event("ev").await;
    c2.recv_event("ev").await;
    let event_bytes = frame::channel_event("ev", "room", "hello-metrics", None).len() as f64;
    let sent_bytes = series("switchyard_bytes_sent_total", app, "");
    expect(
        addr,
        "one trigger",
        &[
            m("switchyard_messages_received_total", ",source=\"api\"", 1.0),
            m("switchyard_bytes_received_total", ",source=\"api\"", 13.0),
            m("switchyard_messages_sent_total", "", 6.0),
            (
                sent_bytes.clone(),
                subscribed.get(&sent_bytes) + 2.0 * event_bytes,
            ),
            m("switchyard_fanout_latency_seconds_count", "", 1.0),
            (published.to_owned(), before.get(published) + 1.0),
        ],
    )
    .await;

    // Refusals: a private channel without auth, a badly signed request, an unknown key.
    c1.send_subscribe("private-room", None, None).await;
    c1.recv_subscription_error().await;
    let forged = server.rest_for(app, key, "not-the-secret");
    let (status, _) = forged
        .post(
            "/events",
            &json!({"name": "ev", "channel": "room", "data": "x"}),
        )
        .await;
    assert_eq!(status, 401);
    let mut stranger = server
        .connect_raw("/app/no-such-key?protocol=7&client=js&version=8.6.0")
        .await;
    assert_eq!(stranger.expect_close().await.0, 4001);
    expect(
        addr,
        "three refusals",
        &[
            m(
                "switchyard_rejections_total",
                ",reason=\"subscription_refused\"",
                1.0,
            ),
            m(
                "switchyard_rejections_total",
                ",reason=\"unauthorized\"",
                1.0,
            ),
            (unknown_app.clone(), before.get(&unknown_app) + 1.0),
            m(
                "switchyard_messages_received_total",
                ",source=\"client\"",
                3.0,
            ),
            // pusher:error and pusher:subscription_error.
            m("switchyard_messages_sent_total", "", 8.0),
            m("switchyard_subscriptions", "", 2.0),
        ],
    )
    .await;

    // Leaving: the channel stays while one subscriber is left.
    c2.close().await;
    expect(
        addr,
        "one connection closed",
        &[
            m("switchyard_connections", "", 1.0),
            m("switchyard_subscriptions", "", 1.0),
            m("switchyard_channels", "", 1.0),
        ],
    )
    .await;
    c1.close().await;
    expect(
        addr,
        "both connections closed",
        &[
            m("switchyard_connections", "", 0.0),
            m("switchyard_subscriptions", "", 0.0),
            m("switchyard_channels", "", 0.0),
            m("switchyard_fanout_latency_seconds_count", "", 1.0),
        ],
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn cluster_services_each_expose_what_they_do() {
    let mut cluster = TestCluster::start(Options {
        webhooks: true,
        ..Options::default()
    })
    .await;
    let m = |name: &str, extra: &str, value: f64| (series(name, CLUSTER_APP, extra), value);
    let edge = cluster.edges[0].addr();
    let api = cluster.api.addr();
    let core = SocketAddr::from(([127, 0, 0, 1], cluster.cores[0].ready_port));

    let channel = cluster.name("metered");
    let mut client = cluster.connect(0).await;
    client.subscribe(&channel).await;
    cluster
        .rest()
        .trigger(&channel, "metered-event", "12345")
        .await;
    client.recv_event("metered-event").await;

    let at_edge = expect(
        edge,
        "a subscriber got one event",
        &[
            m("switchyard_connections", "", 1.0),
            m("switchyard_subscriptions", "", 1.0),
            m("switchyard_channels", "", 1.0),
            m(
                "switchyard_messages_received_total",
                ",source=\"client\"",
                1.0,
            ),
            m("switchyard_messages_sent_total", "", 3.0),
            m("switchyard_fanout_latency_seconds_count", "", 1.0),
        ],
    )
    .await;
    assert!(at_edge.get("switchyard_bus_messages_received_total") >= 1.0);
    let heartbeats = "switchyard_grpc_client_duration_seconds_count{method=\"Heartbeat\"}";
    assert!(at_edge.get(heartbeats) >= 1.0, "the edge beats to core");
    let other_edge = Scrape::of(cluster.edges[1].addr()).await;
    assert_eq!(
        other_edge.get(&series("switchyard_connections", CLUSTER_APP, "")),
        0.0
    );

    expect(
        api,
        "one trigger",
        &[
            m("switchyard_messages_received_total", ",source=\"api\"", 1.0),
            m("switchyard_bytes_received_total", ",source=\"api\"", 5.0),
            ("switchyard_bus_messages_published_total".into(), 1.0),
        ],
    )
    .await;

    let at_core = Scrape::of(core).await;
    for series in [
        "switchyard_grpc_server_duration_seconds_count{method=\"ReportCounts\"}",
        "switchyard_grpc_server_duration_seconds_count{method=\"Heartbeat\"}",
        "switchyard_redis_duration_seconds_count{op=\"indexed_script\"}",
    ] {
        assert!(at_core.get(series) >= 1.0, "{series} at core");
    }
    assert_eq!(
        at_core.get("switchyard_grpc_server_errors_total{method=\"ReportCounts\"}"),
        0.0
    );

    // channel_occupied, delivered once by the worker.
    let worker = cluster.worker.as_ref().map(|w| w.addr()).expect("worker");
    cluster
        .hooks()
        .wait_for("channel_occupied", WAIT, |events| !events.is_empty())
        .await;
    expect(
        worker,
        "a webhook delivered",
        &[
            m(
                "switchyard_webhook_attempts_total",
                ",outcome=\"delivered\"",
                1.0,
            ),
            m(
                "switchyard_webhook_attempts_total",
                ",outcome=\"failed\"",
                0.0,
            ),
            m("switchyard_webhook_dead_letters_total", "", 0.0),
        ],
    )
    .await;

    client.close().await;
    expect(
        edge,
        "the subscriber left",
        &[
            m("switchyard_connections", "", 0.0),
            m("switchyard_subscriptions", "", 0.0),
            m("switchyard_channels", "", 0.0),
        ],
    )
    .await;
}
