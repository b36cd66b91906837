//! Accepts TCP connections and serves HTTP/1.1 (with upgrades) to a handler until shutdown,
//! over TLS when configured ([`Tls`]).

mod stream;
mod tls;
mod upgrade;

pub use stream::Stream;
pub use tls::{Tls, TlsError};
pub use upgrade::{Upgrade, UpgradeHook, UpgradeRequest};

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
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use stream::Prefixed;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use upgrade::Head;

pub type Body = Full<Bytes>;
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A request handler shared by every connection.
pub type Handler =
    Arc<dyn Fn(Request<Incoming>, SocketAddr) -> BoxFuture<Response<Body>> + Send + Sync>;

/// How long a client may take to send request headers before the connection is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a listener serves: HTTP requests, and WebSocket upgrades when a hook is given (without
/// one, an upgrade request is an ordinary request to the handler).
#[derive(Clone)]
pub struct Service {
    pub handler: Handler,
    pub upgrades: Option<UpgradeHook>,
}

impl From<Handler> for Service {
    fn from(handler: Handler) -> Service {
        Service {
            handler,
            upgrades: None,
        }
    }
}

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

/// Serves `service` on `listener` until `shutdown` fires; connection tasks join `tracker`.
///
/// On shutdown the accept loop stops and open HTTP connections finish their current request
/// (graceful shutdown). Upgraded connections (WebSockets) are the upgrade hook's to close:
/// they watch the same token. With TLS, the handshake runs in the connection's task, bounded like
/// the request headers.
pub async fn serve(
    listener: impl Into<Listener>,
    service: impl Into<Service>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let Listener { tcp, tls, max_open } = listener.into();
    let service = service.into();
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
        let service = service.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        let spawner = tracker.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let conn = Conn {
                peer,
                service,
                shutdown,
                tracker: spawner,
            };
            let Some(tls) = tls else {
                return conn.serve(stream).await;
            };
            // Boxed, like hyper's state below: this task is allocated for every connection,
            // and most are plain WebSocket handshakes, which need neither. Inline, the TLS
            // state (over a kilobyte) would size every plain connection's task too.
            let accept = Box::pin(tls.acceptor().accept(stream));
            match tokio::time::timeout(HEADER_TIMEOUT, accept).await {
                Ok(Ok(stream)) => Box::pin(conn.serve(stream)).await,
                Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// One accepted connection and what serves it.
struct Conn {
    peer: SocketAddr,
    service: Service,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Conn {
    /// Serves the connection: a first request that is a WebSocket upgrade is answered here,
    /// anything else by hyper.
    async fn serve<S>(self, mut io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + Into<Stream> + 'static,
    {
        let Some(hook) = self.service.upgrades.clone() else {
            return Box::pin(self.serve_http(Prefixed::new(Vec::new(), io))).await;
        };
        let mut buf = Vec::with_capacity(upgrade::HEAD_BUFFER);
        let head = tokio::select! {
            () = self.shutdown.cancelled() => return,
            head = tokio::time::timeout(HEADER_TIMEOUT, read_head(&mut io, &mut buf)) => head,
        };
        match head {
            Ok(Ok(Head::WebSocket { len })) => self.upgrade_first(io, buf, len, &hook).await,
            Ok(Ok(_)) => Box::pin(self.serve_http(Prefixed::new(buf, io))).await,
            // Closed, failed or too slow before a whole head: hyper would drop it too.
            Ok(Err(_)) | Err(_) => {}
        }
    }

    /// Answers an upgrade that is the connection's first request (the first `len` bytes of
    /// `buf`), without hyper.
    async fn upgrade_first<S>(&self, mut io: S, mut buf: Vec<u8>, len: usize, hook: &UpgradeHook)
    where
        S: AsyncWrite + Unpin + Into<Stream>,
    {
        let (res, accept) = {
            let mut headers = [httparse::EMPTY_HEADER; upgrade::MAX_HEADERS];
            let Ok(Some((req, _))) = upgrade::parse(&buf[..len], &mut headers) else {
                return;
            };
            let key = req.headers("sec-websocket-key").next();
            // Bound, not the block's tail: a tail's temporaries would outlive `headers`.
            #[allow(clippy::let_and_return)]
            let answer = match (hook(&req, self.peer), key) {
                (Upgrade::Accept(accept), Some(key)) => {
                    (upgrade::switching_protocols(key), Some(accept))
                }
                (Upgrade::Refuse(res), _) => (res, None),
                (Upgrade::Accept(_), None) => return,
            };
            answer
        };
        let bytes = upgrade::encode(res).await;
        let written = tokio::time::timeout(HEADER_TIMEOUT, async {
            io.write_all(&bytes).await?;
            io.flush().await
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            return;
        }
        let Some(accept) = accept else {
            let _ = tokio::time::timeout(HEADER_TIMEOUT, io.shutdown()).await;
            return;
        };
        // Bytes after the head are WebSocket frames the client sent without waiting; the
        // buffer is only kept when there are any.
        let early = if buf.len() > len {
            buf.drain(..len);
            buf
        } else {
            Vec::new()
        };
        accept(io.into(), early);
    }

    async fn serve_http<S>(self, io: Prefixed<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            peer,
            service,
            shutdown,
            tracker,
        } = self;
        let svc = service_fn(move |req: Request<Incoming>| {
            let upgrade = service.upgrades.as_ref().filter(|_| {
                req.method() == Method::GET
                    && UpgradeRequest::new(req.uri().path(), "", req.headers()).is_websocket()
            });
            let answer = match upgrade {
                Some(hook) => Ok(upgrade_via_hyper(hook, req, peer, &tracker)),
                None => Err((service.handler)(req, peer)),
            };
            async move {
                Ok::<_, std::convert::Infallible>(match answer {
                    Ok(res) => res,
                    Err(fut) => fut.await,
                })
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let conn = builder
            .serve_connection(TokioIo::new(io), svc)
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
}

/// Reads a new connection's first bytes until it is clear what they are.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> std::io::Result<Head> {
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len().max(upgrade::HEAD_BUFFER));
        }
        if io.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match upgrade::parse_head(buf) {
            Head::Partial => continue,
            head => return Ok(head),
        }
    }
}

/// An upgrade request that reached hyper: answered with 101, and the stream handed over once
/// hyper lets go of it.
fn upgrade_via_hyper(
    hook: &UpgradeHook,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    tracker: &TaskTracker,
) -> Response<Body> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (path, query) = (req.uri().path(), req.uri().query().unwrap_or(""));
    let view = UpgradeRequest::new(path, query, req.headers());
    let accept = match hook(&view, peer) {
        Upgrade::Refuse(res) => return res,
        Upgrade::Accept(accept) => accept,
    };
    let Some(key) = view.headers("sec-websocket-key").next() else {
        return error(StatusCode::BAD_REQUEST, "this request cannot be upgraded");
    };
    let res = upgrade::switching_protocols(key);
    tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => accept(Stream::Hyper(Box::new(TokioIo::new(upgraded))), Vec::new()),
            Err(e) => tracing::debug!(error = %e, %peer, "upgrade failed"),
        }
    });
    res
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
