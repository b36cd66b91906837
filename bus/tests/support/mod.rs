//! Test scaffolding: unique subjects, bounded receives and a private `nats-server`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard_bus::{encode_token, Envelope, Subscription};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, Instant};

/// Generous for a local server, yet a lost message fails the test instead of hanging it.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// A subject no other test (or earlier run against the shared server) uses.
pub fn unique_subject(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let token = format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    format!("sy.test.{}.{}", encode_token(test), encode_token(&token))
}

pub async fn recv(sub: &mut Subscription) -> Envelope {
    match timeout(RECV_TIMEOUT, sub.next()).await {
        Ok(Some(envelope)) => envelope,
        Ok(None) => panic!("subscription closed"),
        Err(_) => panic!("no message within {RECV_TIMEOUT:?}"),
    }
}

pub async fn recv_payload(sub: &mut Subscription) -> Vec<u8> {
    recv(sub).await.payload.to_vec()
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// A private `nats-server` child process, killed when dropped (also when a test panics).
pub struct NatsServer {
    pub port: u16,
    pub monitor_port: u16,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            monitor_port: free_port(),
            child: None,
        };
        server.spawn().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no goodbye to clients, like a crashed or partitioned server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| {
            if std::path::Path::new("/usr/sbin/nats-server").exists() {
                "/usr/sbin/nats-server".to_owned()
            } else {
                "nats-server".to_owned()
            }
        });
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many subscriptions on `subject` the server holds, from its monitoring endpoint.
    pub async fn subscriptions_on(&self, subject: &str) -> usize {
        let body = http_get(self.monitor_port, "/connz?subs=1").await;
        body.matches(&format!("\"{subject}\"")).count()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn http_get(port: u16, path: &str) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    timeout(RECV_TIMEOUT, exchange)
        .await
        .expect("monitoring endpoint timed out")
        .expect("monitoring endpoint failed")
}
