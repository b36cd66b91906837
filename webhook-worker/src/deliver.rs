//! One signed POST of a webhook body to one URL.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::sync::{Arc, OnceLock};
use switchyard_apps::{App, Webhook};
use switchyard_protocol::signature;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How one attempt ended, which decides whether to retry.
#[derive(Debug)]
pub enum Outcome {
    Delivered,
    /// The receiver refused the webhook itself (4xx other than 408/429): retrying cannot help.
    Rejected(StatusCode),
    /// Worth another try later: network errors, timeouts, 5xx, 408, 429.
    Retry(String),
}

pub async fn post(
    app: &App,
    hook: &Webhook,
    body: &Bytes,
    idempotency_key: &str,
    timeout: Duration,
) -> Outcome {
    match tokio::time::timeout(timeout, attempt(app, hook, body, idempotency_key)).await {
        Ok(Ok(status)) if status.is_success() => Outcome::Delivered,
        Ok(Ok(status))
            if status.is_client_error()
                && status != StatusCode::REQUEST_TIMEOUT
                && status != StatusCode::TOO_MANY_REQUESTS =>
        {
            Outcome::Rejected(status)
        }
        Ok(Ok(status)) => Outcome::Retry(format!("receiver answered {status}")),
        Ok(Err(e)) => Outcome::Retry(e),
        Err(_) => Outcome::Retry(format!("no answer within {timeout:?}")),
    }
}

/// Connects to the webhook's host over plain TCP or TLS and returns an HTTP/1.1 sender.
async fn open(uri: &Uri, host: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        other => return Err(format!("unsupported url scheme {other:?}")),
    };
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if !tls {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        return Ok(sender);
    }
    let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("tls name: {e}"))?;
    let stream = TlsConnector::from(tls_config()?)
        .connect(name, stream)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// The TLS client settings, built once: the system's trusted roots (`SSL_CERT_FILE` and
/// `SSL_CERT_DIR` override them, as for OpenSSL). The ring provider is named explicitly
/// because more than one rustls provider is compiled into the workspace.
fn tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no trusted root certificates found for https webhooks".into());
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| format!("tls setup: {e}"))
        })
        .clone()
}

async fn attempt(
    app: &App,
    hook: &Webhook,
    body: &Bytes,
    idempotency_key: &str,
) -> Result<StatusCode, String> {
    let uri: Uri = hook.url.parse().map_err(|e| format!("invalid url: {e}"))?;
    let host = uri.host().ok_or("url has no host")?;
    let mut sender = open(&uri, host).await?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let mut req = Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("X-Pusher-Key", &app.key)
        .header(
            "X-Pusher-Signature",
            signature::sign(app.secret.expose(), body),
        )
        .header("Idempotency-Key", idempotency_key);
    for (name, value) in &hook.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let req = req
        .body(Full::new(body.clone()))
        .map_err(|e| format!("request: {e}"))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = res.status();
    // Read the answer so the connection closes cleanly.
    let _ = res.into_body().collect().await;
    Ok(status)
}
