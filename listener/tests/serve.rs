//! The listener with real sockets: TLS handshakes (the configured certificate is served, a
//! renewed one replaces it for new connections without a restart, a broken file on disk leaves
//! the current one in place) and accept backpressure at the connection cap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use switchyard_listener::{Handler, Listener, Tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A temp dir holding `cert.pem` and `key.pem`, copied from fixture pair `which`.
fn install(dir: &Path, which: &str) {
    for (from, to) in [
        (format!("cert-{which}.pem"), "cert.pem"),
        (format!("key-{which}.pem"), "key.pem"),
    ] {
        // Write to a temp name and rename, as certificate managers do, so a reader never sees
        // a half-written file.
        let tmp = dir.join(format!("{to}.tmp"));
        std::fs::copy(fixture(&from), &tmp).expect("copy fixture");
        std::fs::rename(&tmp, dir.join(to)).expect("rename into place");
    }
}

/// The certificate a fresh TLS connection is served, and the answer to `GET /up`.
async fn handshake(addr: std::net::SocketAddr) -> (CertificateDer<'static>, String) {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(fixture("ca.pem")).expect("ca.pem");
    roots.add(ca).expect("add root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let mut tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake verifies against the test CA");
    let served = tls.get_ref().1.peer_certificates().expect("peer certs")[0].clone();
    tls.write_all(b"GET /up HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut raw)).await;
    (
        served.into_owned(),
        String::from_utf8_lossy(&raw).into_owned(),
    )
}

fn cert(which: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(fixture(&format!("cert-{which}.pem"))).expect("fixture cert")
}

#[tokio::test]
async fn serves_and_reloads_the_certificate() {
    let dir = std::env::temp_dir().join(format!("switchyard-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    install(&dir, "a");
    let tls = Tls::load(&dir.join("cert.pem"), &dir.join("key.pem")).expect("load pair a");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let handler: Handler = Arc::new(|_, _| Box::pin(async { switchyard_listener::health(true) }));
    let stop = CancellationToken::new();
    tokio::spawn(switchyard_listener::serve(
        Listener::new(tcp, Some(tls.clone())),
        handler,
        stop.clone(),
        TaskTracker::new(),
    ));

    let (served, answer) = handshake(addr).await;
    assert_eq!(served, cert("a"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !tls.reload_if_changed().expect("nothing changed"),
        "unchanged files: no reload"
    );

    // Renewed on disk: the next connection gets the new certificate.
    tokio::time::sleep(Duration::from_millis(20)).await;
    install(&dir, "b");
    assert!(tls.reload_if_changed().expect("reload pair b"));
    assert_eq!(handshake(addr).await.0, cert("b"));

    // A broken certificate, or a key of another certificate: refused, the current one stays.
    std::fs::write(dir.join("cert.pem"), "not a certificate").expect("write garbage");
    assert!(tls.reload_if_changed().is_err());
    std::fs::copy(fixture("cert-a.pem"), dir.join("cert.pem")).expect("cert a");
    std::fs::copy(fixture("key-b.pem"), dir.join("key.pem")).expect("key b");
    let mismatch = tls
        .reload_if_changed()
        .expect_err("a key of another certificate");
    assert!(
        mismatch.to_string().contains("does not match"),
        "{mismatch}"
    );
    assert_eq!(
        handshake(addr).await.0,
        cert("b"),
        "still serving the last good pair"
    );

    // The watcher picks a change up by itself.
    install(&dir, "a");
    tokio::spawn(tls.clone().watch(Duration::from_millis(100), stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while handshake(addr).await.0 != cert("a") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_or_mismatched_files_are_named_in_the_error() {
    let err = Tls::load(Path::new("/nonexistent/cert.pem"), &fixture("key-a.pem"))
        .expect_err("no such file");
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    let err = Tls::load(&fixture("cert-a.pem"), &fixture("key-b.pem")).expect_err("mismatch");
    assert!(err.to_string().contains("key-b.pem"), "{err}");
}

/// At `max_open`, a further client is not served until a connection ends.
#[tokio::test]
async fn accepting_pauses_at_the_cap() {
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let handler: Handler = Arc::new(|_, _| Box::pin(async { switchyard_listener::health(true) }));
    let stop = CancellationToken::new();
    tokio::spawn(switchyard_listener::serve(
        Listener::from(tcp).with_max_open(1),
        handler,
        stop.clone(),
        TaskTracker::new(),
    ));
    let first = TcpStream::connect(addr).await.expect("first");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = TcpStream::connect(addr)
        .await
        .expect("second (kernel backlog)");
    second
        .write_all(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
    assert!(early.is_err(), "served while the only slot was taken");
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .expect("served once the slot freed")
        .expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    stop.cancel();
}
