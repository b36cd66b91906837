//! TLS for the public listeners (rustls), with certificates reloaded from disk while running:
//! a renewed certificate (cert-manager, certbot) is served to new connections within the
//! reload interval, and open connections keep theirs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate chain {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read the TLS private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
}

/// A certificate and key loaded from two PEM files, served to every new TLS connection.
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// What the resolver hands out, and the file times it was loaded from.
#[derive(Debug)]
struct Current {
    key: RwLock<(Arc<CertifiedKey>, Stamp)>,
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.key
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .0
                .clone(),
        )
    }
}

impl Tls {
    /// Loads `cert` (the chain, leaf first) and `key` (PKCS#8, PKCS#1 or SEC1), both PEM.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Tls>, TlsError> {
        let loaded = load_key(cert, key)?;
        let current = Arc::new(Current {
            key: RwLock::new((loaded, stamp(cert, key))),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Certificate {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }))
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Loads the files again if either changed since the last load. A file that cannot be
    /// read or does not parse (say, caught half-written) is reported and the current
    /// certificate stays; the next look tries again. Returns whether a new one was loaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamp(&self.cert_path, &self.key_path);
        let unchanged = self
            .current
            .key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            == now;
        if unchanged {
            return Ok(false);
        }
        let fresh = load_key(&self.cert_path, &self.key_path)?;
        *self
            .current
            .key
            .write()
            .unwrap_or_else(PoisonError::into_inner) = (fresh, now);
        Ok(true)
    }

    /// Looks at the files every `every` until `shutdown`.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            match self.reload_if_changed() {
                Ok(true) => {
                    tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate not reloaded; serving the previous one")
                }
            }
        }
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(cert), modified(key))
}

fn load_key(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_err = |reason: String| TlsError::Certificate {
        path: cert_path.to_owned(),
        reason,
    };
    let key_err = |reason: String| TlsError::Key {
        path: key_path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE block in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| key_err(e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    // A key that does not belong to the certificate would fail every handshake; refuse it
    // here instead, where the error can name the files.
    certified
        .keys_match()
        .map_err(|e| key_err(format!("does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}
