//! One conformance suite for the `Bus` contract, run against every backend: the memory bus,
//! NATS through one connection, and NATS with publisher and subscriber on two connections
//! (the real topology: the API publishes, edges subscribe). NATS-only behaviour (restarts,
//! unsubscribe at the server, wire format) follows at the end.
//!
//! The shared server defaults to nats://127.0.0.1:4222 (override: SWITCHYARD_NATS_URL); each
//! test uses its own subjects, so tests run in parallel and against a server in use.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use support::{recv, recv_payload, unique_subject, NatsServer, RECV_TIMEOUT};
use switchyard_bus::{Bus, BusError, Control, Envelope, MemoryBus, NatsBus};
use tokio::time::{sleep, timeout, Instant};

/// Publishes go to `publisher`, subscriptions to `subscriber`; they may be the same bus.
struct Buses {
    publisher: Arc<dyn Bus>,
    subscriber: Arc<dyn Bus>,
}

fn nats_url() -> String {
    std::env::var("SWITCHYARD_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn nats() -> NatsBus {
    NatsBus::connect(&nats_url())
        .await
        .expect("connect to NATS")
}

async fn memory() -> Buses {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    Buses {
        publisher: bus.clone(),
        subscriber: bus,
    }
}

async fn nats_one_connection() -> Buses {
    let bus: Arc<dyn Bus> = Arc::new(nats().await);
    Buses {
        publisher: bus.clone(),
        subscriber: bus,
    }
}

async fn nats_two_connections() -> Buses {
    Buses {
        publisher: Arc::new(nats().await),
        subscriber: Arc::new(nats().await),
    }
}

macro_rules! conformance {
    ($($backend:ident),* ; $cases:tt) => {
        $( conformance!(@backend $backend $cases); )*
    };
    (@backend $backend:ident [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::$backend().await).await;
                }
            )*
        }
    };
}

conformance!(memory, nats_one_connection, nats_two_connections; [
    delivers_in_order_to_every_subscriber,
    subjects_are_isolated,
    routing_headers_survive_the_round_trip,
    payload_bytes_are_identical,
    nothing_published_before_subscribe_is_seen,
    dropping_a_subscription_stops_its_delivery,
    a_thousand_quick_messages_arrive_in_order,
]);

fn frame(payload: impl Into<Bytes>) -> Envelope {
    Envelope::frame(payload, None)
}

async fn publish(bus: &Arc<dyn Bus>, subject: &str, envelope: Envelope) {
    bus.publish(subject, envelope).await.expect("publish");
}

async fn delivers_in_order_to_every_subscriber(buses: Buses) {
    let subject = unique_subject("order");
    let mut first = buses.subscriber.subscribe(&subject).await.expect("sub");
    let mut second = buses.subscriber.subscribe(&subject).await.expect("sub");
    // The publisher hears itself too: an edge delivers its own client events this way.
    let mut own = buses.publisher.subscribe(&subject).await.expect("sub");
    for i in 0..20u8 {
        publish(&buses.publisher, &subject, frame(vec![i])).await;
    }
    for i in 0..20u8 {
        assert_eq!(recv_payload(&mut first).await, [i]);
        assert_eq!(recv_payload(&mut second).await, [i]);
        assert_eq!(recv_payload(&mut own).await, [i]);
    }
}

async fn subjects_are_isolated(buses: Buses) {
    let subject = unique_subject("isolated");
    let nested = format!("{subject}.x");
    let sibling = format!("{subject}x");
    let mut sub = buses.subscriber.subscribe(&subject).await.expect("sub");
    let mut nested_sub = buses.subscriber.subscribe(&nested).await.expect("sub");
    publish(&buses.publisher, &nested, frame("nested")).await;
    publish(&buses.publisher, &sibling, frame("sibling")).await;
    publish(&buses.publisher, &subject, frame("mine")).await;
    publish(&buses.publisher, &nested, frame("end")).await;
    // One publisher's order holds, so a stray message would arrive before the expected one.
    assert_eq!(recv_payload(&mut sub).await, b"mine");
    assert_eq!(recv_payload(&mut nested_sub).await, b"nested");
    assert_eq!(recv_payload(&mut nested_sub).await, b"end");
}

async fn routing_headers_survive_the_round_trip(buses: Buses) {
    let subject = unique_subject("headers");
    let envelopes = [
        frame("plain"),
        Envelope::frame("except", Some("123.456".to_owned())),
        Envelope::control(Control::TerminateUser),
        Envelope {
            payload: "both".into(),
            except_socket: Some("9.9".to_owned()),
            control: Some(Control::TerminateUser),
            trace: None,
            accepted_at_us: None,
            seq: None,
        },
        Envelope::frame("stamped", None).accepted_at(1_700_000_000_000_001),
        Envelope::frame("member", None).member_seq(7),
    ];
    let mut sub = buses.subscriber.subscribe(&subject).await.expect("sub");
    for envelope in &envelopes {
        publish(&buses.publisher, &subject, envelope.clone()).await;
    }
    for envelope in envelopes {
        assert_eq!(recv(&mut sub).await, envelope);
    }
}

async fn payload_bytes_are_identical(buses: Buses) {
    let subject = unique_subject("payload");
    let payloads: Vec<Vec<u8>> = vec![
        r#"{"event":"héllo","data":"世界 🚀 ümlaut"}"#.into(),
        (0..60 * 1024)
            .map(|i| b"0123456789abcdef"[i % 16])
            .collect(),
        (0..=255u8).collect(),
        b"MSG x 1 5\r\n\r\nNATS/1.0\r\n".to_vec(),
        Vec::new(),
    ];
    let mut sub = buses.subscriber.subscribe(&subject).await.expect("sub");
    for payload in &payloads {
        publish(&buses.publisher, &subject, frame(payload.clone())).await;
    }
    for payload in payloads {
        assert_eq!(recv_payload(&mut sub).await, payload);
    }
}

async fn nothing_published_before_subscribe_is_seen(buses: Buses) {
    let subject = unique_subject("before");
    publish(&buses.publisher, &subject, frame("before")).await;
    // Across connections "published" means "reached the server" (see `NatsBus`): a subscribe
    // on the publisher's own bus returns only after its earlier commands were processed.
    drop(buses.publisher.subscribe(&unique_subject("barrier")).await);
    let mut sub = buses.subscriber.subscribe(&subject).await.expect("sub");
    publish(&buses.publisher, &subject, frame("after")).await;
    assert_eq!(recv_payload(&mut sub).await, b"after");
}

async fn dropping_a_subscription_stops_its_delivery(buses: Buses) {
    let subject = unique_subject("drop");
    let mut kept = buses.subscriber.subscribe(&subject).await.expect("sub");
    let mut dropped = buses.subscriber.subscribe(&subject).await.expect("sub");
    publish(&buses.publisher, &subject, frame("1")).await;
    assert_eq!(recv_payload(&mut kept).await, b"1");
    assert_eq!(recv_payload(&mut dropped).await, b"1");
    drop(dropped);
    publish(&buses.publisher, &subject, frame("2")).await;
    assert_eq!(recv_payload(&mut kept).await, b"2");
    // A new subscription on the same subject starts fresh.
    let mut again = buses.subscriber.subscribe(&subject).await.expect("sub");
    publish(&buses.publisher, &subject, frame("3")).await;
    assert_eq!(recv_payload(&mut again).await, b"3");
    assert_eq!(recv_payload(&mut kept).await, b"3");
}

async fn a_thousand_quick_messages_arrive_in_order(buses: Buses) {
    let subject = unique_subject("burst");
    let mut sub = buses.subscriber.subscribe(&subject).await.expect("sub");
    for i in 0..1000u32 {
        publish(&buses.publisher, &subject, frame(i.to_be_bytes().to_vec())).await;
    }
    for i in 0..1000u32 {
        assert_eq!(recv_payload(&mut sub).await, i.to_be_bytes());
    }
}

/// Polls `check` until it holds; panics after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn nats_connect_to_a_closed_port_fails_fast() {
    let url = format!("nats://127.0.0.1:{}", support::free_port());
    let started = Instant::now();
    let result = timeout(Duration::from_secs(10), NatsBus::connect(&url))
        .await
        .expect("connect hung");
    assert!(matches!(result, Err(BusError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn nats_subscriptions_resume_after_a_server_restart() {
    let mut server = NatsServer::start().await;
    let publisher = NatsBus::connect(&server.url()).await.expect("connect");
    let subscriber = NatsBus::connect(&server.url()).await.expect("connect");
    let subject = unique_subject("restart");
    let mut sub = subscriber.subscribe(&subject).await.expect("sub");
    publisher.publish(&subject, frame("up")).await.expect("pub");
    assert_eq!(recv_payload(&mut sub).await, b"up");

    server.kill();
    eventually(
        Duration::from_secs(5),
        "publish fails while down",
        || async {
            let started = Instant::now();
            let failed = publisher.publish(&subject, frame("lost")).await.is_err();
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "publish blocked"
            );
            failed
        },
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "subscribe fails while down",
        || async { subscriber.subscribe(&unique_subject("down")).await.is_err() },
    )
    .await;

    server.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut probe = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "deliveries did not resume in 10 s"
        );
        // Errors are expected until the publisher has reconnected too.
        let _ = publisher
            .publish(&subject, frame(format!("probe-{probe}")))
            .await;
        probe += 1;
        match timeout(Duration::from_millis(200), sub.next()).await {
            Ok(Some(envelope)) if envelope.payload.starts_with(b"probe-") => break,
            // A "lost" frame queued before the client noticed the disconnect.
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => panic!("subscription closed by the restart"),
        }
    }
    for i in 0..10 {
        publisher
            .publish(&subject, frame(format!("seq-{i}")))
            .await
            .expect("publish after restart");
    }
    let mut next = 0;
    while next < 10 {
        let payload = recv_payload(&mut sub).await;
        if payload.starts_with(b"seq-") {
            assert_eq!(payload, format!("seq-{next}").into_bytes());
            next += 1;
        }
    }
}

#[tokio::test]
async fn nats_dropping_a_subscription_unsubscribes_at_the_server() {
    let server = NatsServer::start().await;
    let bus = NatsBus::connect(&server.url()).await.expect("connect");
    let subject = unique_subject("unsub");
    let mut kept = bus.subscribe(&subject).await.expect("sub");
    let dropped = bus.subscribe(&subject).await.expect("sub");
    assert_eq!(server.subscriptions_on(&subject).await, 2);
    drop(dropped);
    eventually(RECV_TIMEOUT, "server drops the interest", || async {
        server.subscriptions_on(&subject).await == 1
    })
    .await;
    bus.publish(&subject, frame("still")).await.expect("pub");
    assert_eq!(recv_payload(&mut kept).await, b"still");
    drop(kept);
    eventually(RECV_TIMEOUT, "server drops the last interest", || async {
        server.subscriptions_on(&subject).await == 0
    })
    .await;
}

#[tokio::test]
async fn nats_messages_from_foreign_publishers_decode_or_are_skipped() {
    let bus = nats().await;
    let raw = async_nats::connect(nats_url()).await.expect("connect");
    let subject = unique_subject("foreign");
    let mut sub = bus.subscribe(&subject).await.expect("sub");
    let mut bogus = HeaderMap::new();
    bogus.insert(NatsBus::CONTROL_HEADER, "reboot-universe");
    let mut extra = HeaderMap::new();
    extra.insert("X-Unrelated", "1");
    extra.insert(NatsBus::EXCEPT_HEADER, "1.2");
    let sends = [
        (None, "no headers"),
        (Some(bogus), "bogus"),
        (Some(extra), "extra"),
    ];
    for (headers, payload) in sends {
        let result = match headers {
            Some(headers) => {
                raw.publish_with_headers(subject.clone(), headers, payload.into())
                    .await
            }
            None => raw.publish(subject.clone(), payload.into()).await,
        };
        result.expect("raw publish");
    }
    assert_eq!(recv(&mut sub).await, frame("no headers"));
    assert_eq!(
        recv(&mut sub).await,
        Envelope::frame("extra", Some("1.2".to_owned()))
    );
}

#[tokio::test]
async fn nats_wire_format_is_the_frame_plus_headers() {
    let bus = nats().await;
    let raw = async_nats::connect(nats_url()).await.expect("connect");
    let subject = unique_subject("wire");
    let mut raw_sub = raw.subscribe(subject.clone()).await.expect("sub");
    // Our own echo proves the server has the SUB before the bus publishes.
    raw.publish(subject.clone(), "probe".into())
        .await
        .expect("pub");
    let probe = timeout(RECV_TIMEOUT, raw_sub.next()).await.expect("probe");
    assert_eq!(probe.map(|m| m.payload), Some("probe".into()));

    let envelope = Envelope {
        payload: r#"{"event":"e","channel":"c","data":"{}"}"#.into(),
        except_socket: Some("1.2".to_owned()),
        control: Some(Control::TerminateUser),
        trace: None,
        accepted_at_us: None,
        seq: Some(12),
    };
    bus.publish(&subject, envelope.clone()).await.expect("pub");
    let message = timeout(RECV_TIMEOUT, raw_sub.next())
        .await
        .expect("message")
        .expect("open");
    assert_eq!(message.payload, envelope.payload);
    let headers = message.headers.expect("headers");
    let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(header(NatsBus::EXCEPT_HEADER).as_deref(), Some("1.2"));
    assert_eq!(
        header(NatsBus::CONTROL_HEADER).as_deref(),
        Some("terminate-user")
    );
    assert_eq!(header(NatsBus::TRACEPARENT_HEADER), None);
    assert_eq!(header(NatsBus::SEQ_HEADER).as_deref(), Some("12"));
}
