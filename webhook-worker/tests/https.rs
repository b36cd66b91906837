//! Webhooks to https:// URLs: the worker verifies the receiver's certificate against the
//! trusted roots (here a throwaway CA made with the openssl CLI, trusted through
//! SSL_CERT_FILE) and sends the same signed body as over plain http.

mod fixtures;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use switchyard_protocol::signature;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use webhook_worker::{MemoryDeadLetters, MemoryQueue, WebhookSink};

use fixtures::{app, fast_retries, hook, job, Worker, SECRET};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA and a `localhost` certificate it signed (a self-signed leaf would be
/// refused: webpki does not accept a CA certificate as the server's own).
/// Returns (CA file, leaf certificate, leaf key).
fn certificates(dir: &Path) -> (String, String, String) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").expect("ext file");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=switchyard-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        dir,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "cert.pem",
        ],
        dir,
    );
    let path = |f: &str| dir.join(f).display().to_string();
    (path("ca.pem"), path("cert.pem"), path("key.pem"))
}

/// Serves TLS on a free port; every request's (signature header, body) goes to the channel.
async fn tls_receiver(cert: &str, key: &str) -> (u16, mpsc::UnboundedReceiver<(String, Bytes)>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("cert file")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let sig = req
                            .headers()
                            .get("X-Pusher-Signature")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let _ = tx.send((sig, body));
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn webhooks_reach_https_receivers_with_a_verified_certificate() {
    let dir = std::env::temp_dir().join(format!("sy-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (ca, cert, key) = certificates(&dir);
    // Read once when the worker first needs TLS; this test binary has no other TLS user.
    std::env::set_var("SSL_CERT_FILE", &ca);
    std::env::remove_var("SSL_CERT_DIR");
    let (port, mut received) = tls_receiver(&cert, &key).await;

    let queue = Arc::new(MemoryQueue::new());
    let url = format!("https://localhost:{port}/hooks");
    let worker = Worker::start(
        queue.clone(),
        Arc::new(MemoryDeadLetters::default()),
        vec![app("app-1", vec![hook(&url)])],
        fast_retries(),
    );
    queue.push(job("app-1", 1)).await.expect("push");
    let (sig, body) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("a webhook within 10 s")
        .expect("receiver running");
    assert!(
        signature::verify(SECRET, &body, &sig),
        "signed over https too"
    );
    let parsed: serde_json::Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(parsed["events"].as_array().map(Vec::len), Some(1));
    worker.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
