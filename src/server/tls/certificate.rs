//! The server's certificate and key, re-read when their files change. cert-manager (and any
//! Kubernetes Secret update) replaces the files in place and sends no signal, so every
//! handshake checks the files' metadata — two `stat`s, next to a handshake's key exchange
//! nothing — and a change is loaded before the handshake goes on. A pair that does not load
//! (half written, or the certificate already new and the key still old) leaves the pair in
//! force; it is logged once, and tried again when the files change again.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Serves the pair of `cert` and `key` as they are now on disk.
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    in_force: Arc<CertifiedKey>,
    /// The files as they were when last read, loaded or not: a change is what triggers a read.
    seen: Option<Stamp>,
}

/// What tells that a file was replaced or rewritten: a Secret update swaps a symlink to a new
/// file (a new inode), an in-place write changes the modification time or the length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

type Stamp = (FileStamp, FileStamp);

impl FileStamp {
    fn of(metadata: &Metadata) -> Self {
        FileStamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode: metadata.ino(),
        }
    }
}

impl ReloadingCertificate {
    /// Loads the pair now; a pair that does not load is an error, so a server never starts
    /// without a certificate.
    pub fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> anyhow::Result<Self> {
        let seen = stamp(cert, key);
        let in_force = Arc::new(load_pair(cert, key, &provider)?);
        Ok(ReloadingCertificate {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            state: Mutex::new(State { in_force, seen }),
        })
    }

    /// The pair in force, after loading the files if they changed since they were last read.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = stamp(&self.cert, &self.key);
        // A file missing for a moment (mid-swap) is no change: the pair in force serves.
        if now.is_some() && now != state.seen {
            state.seen = now;
            match load_pair(&self.cert, &self.key, &self.provider) {
                Ok(pair) => {
                    state.in_force = Arc::new(pair);
                    tracing::info!(cert = %self.cert.display(), "server certificate reloaded");
                }
                Err(error) => tracing::error!(
                    error = format!("{error:#}"),
                    "server certificate not reloaded; the previous one stays in force"
                ),
            }
        }
        state.in_force.clone()
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    let cert = std::fs::metadata(cert).ok()?;
    let key = std::fs::metadata(key).ok()?;
    Some((FileStamp::of(&cert), FileStamp::of(&key)))
}

/// The certificate chain and key of two PEM files, checked to belong together.
fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read certificates from {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a private key from {}", key.display()))?;
    CertifiedKey::from_der(chain, key_der, provider).with_context(|| {
        format!(
            "the key {} does not go with the certificate {}",
            key.display(),
            cert.display()
        )
    })
}
