//! The embedded server honours `[worker]`: the worker it runs in process is built from the
//! same section, by the same builder, as the `webhook-worker` binary.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{app_toml, http, read_request, TestServer, SERVER};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const APP: &str = "app-worker-section";
const KEY: &str = "key-worker-section";

/// A webhook receiver that answers every request with 500, which the worker retries.
struct FailingReceiver {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl FailingReceiver {
    async fn start() -> FailingReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    while let Ok(Some(_)) = read_request(&mut stream).await {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let answer =
                            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        FailingReceiver { addr, requests }
    }
}

/// This app's dead letters as `/metrics` counts them.
async fn dead_letters(server: SocketAddr) -> f64 {
    let (status, body) = http(server, "GET", "/metrics", None, b"").await;
    assert_eq!(status, 200, "{body}");
    let series = format!("switchyard_webhook_dead_letters_total{{app=\"{APP}\"");
    body.as_str()
        .expect("the text format")
        .lines()
        .find(|line| line.starts_with(&series))
        .and_then(|line| line.rsplit_once(' '))
        .map_or(0.0, |(_, value)| value.parse().expect("a number"))
}

/// With the worker's default five-minute window nothing would be given up within this test;
/// `retry_window_secs = 1` gives a failing webhook up after an attempt or two. (How many fit
/// in the window depends on how soon the first one runs, so the test asks for at least one.)
#[tokio::test]
async fn a_short_retry_window_dead_letters_a_failing_webhook() {
    let receiver = FailingReceiver::start().await;
    let hooks = format!(
        "webhooks = [{{ url = \"http://{}/hooks\" }}]",
        receiver.addr
    );
    let config = format!(
        "{SERVER}\n[worker]\nretry_window_secs = 1\n{}",
        app_toml(APP, KEY, "secret-worker-section", &hooks)
    );
    let server = TestServer::start(&config).await;
    let mut client = server.connect_key(KEY).await;
    // channel_occupied: one webhook job.
    client.subscribe("worker-section").await;

    // Generous: the loop ends as soon as the dead letter shows, so a slow machine only waits.
    let within = Duration::from_secs(30);
    let deadline = Instant::now() + within;
    while dead_letters(server.addr).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no dead letter within {within:?}; {} attempts",
            receiver.requests.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = receiver.requests.load(Ordering::SeqCst);
    assert!(attempts >= 1, "dead-lettered without an attempt");
    // Given up for good: no attempt after the dead letter.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.requests.load(Ordering::SeqCst), attempts);
    assert_eq!(dead_letters(server.addr).await, 1.0);
    client.close().await;
    server.shutdown().await;
}
