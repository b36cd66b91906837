//! Accepts TCP connections and serves HTTP/1.1 (with upgrades) to a handler until shutdown,
//! over TLS when configured ([`Tls`]).

mod tls;

pub use tls::{Tls, TlsError};

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub type Body = Full<Bytes>;
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A request handler shared by every connection.
pub type Handler =
    Arc<dyn Fn(Request<Incoming>, SocketAddr) -> BoxFuture<Response<Body>> + Send + Sync>;

/// How long a client may take to send request headers before the connection is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound socket, with TLS when configured. A plain `TcpListener` converts into one.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<Arc<Tls>>,
    /// Connections served at once at most; at the limit the accept loop waits, so new
    /// clients queue in the kernel's backlog instead of costing this process anything.
    pub max_open: Option<usize>,
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Listener {
        Listener {
            tcp,
            tls: None,
            max_open: None,
        }
    }
}

impl Listener {
    pub fn new(tcp: TcpListener, tls: Option<Arc<Tls>>) -> Listener {
        Listener {
            tcp,
            tls,
            max_open: None,
        }
    }

    /// Caps the connections served at once (accept backpressure).
    pub fn with_max_open(mut self, max: usize) -> Listener {
        self.max_open = Some(max);
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Serves `handler` on `listener` until `shutdown` fires; connection tasks join `tracker`.
///
/// On shutdown the accept loop stops and open HTTP connections finish their current request
/// (graceful shutdown). Upgraded connections (WebSockets) are the handler's to close: they
/// watch the same token. With TLS, the handshake runs in the connection's task, bounded like
/// the request headers.
pub async fn serve(
    listener: impl Into<Listener>,
    handler: Handler,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let Listener { tcp, tls, max_open } = listener.into();
    let slots = max_open.map(|max| Arc::new(Semaphore::new(max)));
    loop {
        // At the cap, wait for a connection to end before accepting another.
        let slot = match &slots {
            None => None,
            Some(slots) => tokio::select! {
                () = shutdown.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.ok(),
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let Some(tls) = tls else {
                return serve_connection(stream, peer, handler, shutdown).await;
            };
            match tokio::time::timeout(HEADER_TIMEOUT, tls.acceptor().accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, peer, handler, shutdown).await,
                Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    handler: Handler,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let fut = handler(req, peer);
        async move { Ok::<_, std::convert::Infallible>(fut.await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, %peer, "http connection ended with error");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`). The default of
/// 128 overflows when a few hundred clients reconnect at once (after a deploy, say), and each
/// dropped SYN costs its client a one-second retransmit.
const BACKLOG: u32 = 4096;

/// Binds `host:port` with a backlog sized for reconnect storms.
pub async fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other(format!("{host} resolves to nothing"))))
}

/// A JSON response with the given status.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    res
}

/// A JSON error body `{"error": message}` with the given status.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, serde_json::json!({ "error": message }).to_string())
}

/// `/up` and `/ready` answers: 200 `{"ok":true}` or 503 `{"ok":false}`.
pub fn health(ok: bool) -> Response<Body> {
    if ok {
        json(StatusCode::OK, r#"{"ok":true}"#)
    } else {
        json(StatusCode::SERVICE_UNAVAILABLE, r#"{"ok":false}"#)
    }
}
