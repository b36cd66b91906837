//! One signed POST of a webhook body to one URL.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use switchyard_apps::{App, Webhook};
use switchyard_protocol::signature;
use tokio::net::TcpStream;

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

async fn attempt(
    app: &App,
    hook: &Webhook,
    body: &Bytes,
    idempotency_key: &str,
) -> Result<StatusCode, String> {
    let uri: Uri = hook.url.parse().map_err(|e| format!("invalid url: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// webhook URLs are supported in this version".into());
    }
    let host = uri.host().ok_or("url has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
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
