//! TLS served by the service itself rather than by tonic's `tls_config`, whose certificate is
//! fixed at start: the certificate is re-read when its files change (`tls/certificate.rs`),
//! so a rotated Secret takes effect at the next handshake without a restart. Handshakes run
//! beside the accept loop, bounded in time, and the TLS streams go to tonic as its incoming
//! connections; tonic's `Connected` for `tokio_rustls::server::TlsStream` hands the client's
//! certificates to the auth layer (`TlsConnectInfo`), as its own TLS did.

mod certificate;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;

use certificate::ReloadingCertificate;

/// A client that opens a connection and sends nothing holds a task and a socket; this long
/// is plenty for a handshake across the world.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Failed handshakes are written one line this often at most: anyone who can reach the port
/// can fail a handshake as often as they connect.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Where the server's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first; re-read when it changes.
    pub cert: PathBuf,
    /// PEM private key of the certificate; re-read when it changes.
    pub key: PathBuf,
    /// PEM CA of the agencies' client certificates (mutual TLS), read at start. Without it,
    /// clients present no certificate.
    pub client_ca: Option<PathBuf>,
}

/// The server's TLS configuration, built once; its certificate follows the files.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the files now: a certificate, key or CA that does not load stops the start.
    /// With a client CA, a client certificate is optional (a bearer token works without one)
    /// but must be signed by that CA when presented.
    pub fn load(files: &TlsFiles) -> anyhow::Result<ServerTls> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match &files.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                let cas = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .with_context(|| format!("cannot read certificates from {}", path.display()))?;
                let (added, _) = roots.add_parsable_certificates(cas);
                anyhow::ensure!(added > 0, "no usable CA certificate in {}", path.display());
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .allow_unauthenticated()
                        .build()
                        .context("client certificate verifier")?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let certificate = ReloadingCertificate::load(&files.cert, &files.key, provider)?;
        let mut config = builder.with_cert_resolver(Arc::new(certificate));
        // gRPC is HTTP/2 only.
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
        })
    }

    /// The TLS connections of the plain ones `incoming` accepts.
    pub fn incoming<S, IO>(&self, incoming: S) -> TlsIncoming<S, IO>
    where
        S: Stream<Item = io::Result<IO>> + Unpin,
        IO: AsyncRead + AsyncWrite + Peer + Unpin + Send + 'static,
    {
        TlsIncoming {
            incoming,
            acceptor: TlsAcceptor::from(self.config.clone()),
            handshakes: JoinSet::new(),
            accepting: true,
            failures: HandshakeFailures::default(),
        }
    }
}

/// The connections of `incoming` once their handshake is done. Dropping it drops the
/// listener at once (tonic drops its incoming when shutdown starts, so the port closes) and
/// aborts the handshakes in progress.
pub struct TlsIncoming<S, IO> {
    incoming: S,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Result<TlsStream<IO>, FailedHandshake>>,
    /// Whether `incoming` may still yield connections.
    accepting: bool,
    failures: HandshakeFailures,
}

/// A handshake that failed, and the client that tried it.
struct FailedHandshake {
    error: io::Error,
    peer: Option<String>,
}

/// The other end of a connection, as a log line names it.
pub trait Peer {
    /// Its address, when the socket knows one.
    fn peer(&self) -> Option<String>;
}

impl Peer for tokio::net::TcpStream {
    fn peer(&self) -> Option<String> {
        self.peer_addr().ok().map(|address| address.to_string())
    }
}

#[cfg(unix)]
impl Peer for tokio::net::UnixStream {
    fn peer(&self) -> Option<String> {
        // Clients of a Unix socket are mostly unnamed: say which socket it was.
        let address = self.peer_addr().ok()?;
        Some(match address.as_pathname() {
            Some(path) => path.display().to_string(),
            None => "a Unix socket client".to_owned(),
        })
    }
}

/// Counts failed handshakes between log lines.
#[derive(Debug, Default)]
struct HandshakeFailures {
    last_line: Option<Instant>,
    unreported: u64,
}

impl HandshakeFailures {
    /// Notes a failure at `now`: the number of failures a line written now stands for
    /// (this one and those since the last line), or `None` within a second of the last line.
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        match self.last_line {
            Some(last) if now.saturating_duration_since(last) < FAILURE_LOG_INTERVAL => None,
            _ => {
                self.last_line = Some(now);
                Some(std::mem::take(&mut self.unreported))
            }
        }
    }
}

impl<S, IO> Stream for TlsIncoming<S, IO>
where
    S: Stream<Item = io::Result<IO>> + Unpin,
    IO: AsyncRead + AsyncWrite + Peer + Unpin + Send + 'static,
{
    type Item = io::Result<TlsStream<IO>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Start a handshake for every connection waiting, so a slow client holds up no one.
        while this.accepting {
            match Pin::new(&mut this.incoming).poll_next(cx) {
                Poll::Ready(Some(Ok(io))) => {
                    let peer = io.peer();
                    let accept = this.acceptor.accept(io);
                    this.handshakes.spawn(async move {
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
                            .await
                            .unwrap_or_else(|_| {
                                Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))
                            })
                            .map_err(|error| FailedHandshake { error, peer })
                    });
                }
                // tonic logs it and polls again, as for plain TCP.
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => this.accepting = false,
                Poll::Pending => break,
            }
        }
        loop {
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Ok(stream)))) => return Poll::Ready(Some(Ok(stream))),
                // A client that failed its handshake (a certificate of an unknown CA, plain
                // HTTP, a port scan) is mostly the client's problem, but an operator helping
                // a partner connect needs the cause; the connection is simply dropped.
                Poll::Ready(Some(Ok(Err(FailedHandshake { error, peer })))) => {
                    if let Some(failed) = this.failures.note(Instant::now()) {
                        tracing::warn!(
                            cause = %error,
                            // The client this line is about (the first of the count), so an
                            // operator can tell a partner's misconfiguration from a scan.
                            peer,
                            // This failure and those held back since the last line.
                            failed,
                            "TLS handshake failed"
                        );
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    tracing::warn!(%error, "TLS handshake task failed");
                }
                Poll::Ready(None) if this.accepting => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_handshakes_are_written_once_a_second_with_a_count() {
        let mut failures = HandshakeFailures::default();
        let start = Instant::now();
        assert_eq!(failures.note(start), Some(1));
        assert_eq!(failures.note(start + Duration::from_millis(10)), None);
        assert_eq!(failures.note(start + Duration::from_millis(900)), None);
        // The next line counts the two it held back and itself.
        assert_eq!(failures.note(start + Duration::from_millis(1000)), Some(3));
        assert_eq!(failures.note(start + Duration::from_millis(1500)), None);
        assert_eq!(failures.note(start + Duration::from_secs(5)), Some(2));
    }
}
