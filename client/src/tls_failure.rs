//! What failed in a TLS handshake, said plainly. tonic reports a failed handshake as
//! "transport error" or, when the server refuses the client's certificate after the
//! handshake (TLS 1.3), as a failed call; the rustls error that says why sits deep in the
//! error's sources.

use std::error::Error;
use std::fmt;

use tokio_rustls::rustls;
use tokio_rustls::rustls::{AlertDescription, CertificateError};

/// Why a TLS connection to the service failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate is signed by a CA this client does not trust.
    UnknownServerCa,
    /// The server's certificate is not valid for the name the client asked for.
    NameMismatch,
    /// The server's certificate has expired or is not valid yet.
    ServerCertificateExpired,
    /// The server refused the client certificate (unknown CA, expired, or none given where
    /// one is required).
    ClientCertificateRefused,
    /// Another TLS failure, as rustls describes it.
    Other(String),
}

impl TlsFailure {
    /// The TLS failure behind `error` (a [`crate::ClientError`], a `tonic::Status` of
    /// a failed call, a `tonic::transport::Error`), found by walking its sources.
    pub fn find(error: &(dyn Error + 'static)) -> Option<TlsFailure> {
        let mut next = Some(error);
        while let Some(error) = next {
            if let Some(tls) = error.downcast_ref::<rustls::Error>() {
                return Some(TlsFailure::from_rustls(tls));
            }
            // io::Error's `source` skips the error it wraps: look inside it first.
            if let Some(tls) = error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(TlsFailure::from_rustls(tls));
            }
            // After the handshake (a client certificate refused under TLS 1.3), rustls hands
            // the server's alert to the reader as text only.
            if let Some(alert) = error.to_string().strip_prefix("received fatal alert: ") {
                return Some(TlsFailure::from_alert_name(alert));
            }
            next = error.source();
        }
        None
    }

    fn from_rustls(error: &rustls::Error) -> TlsFailure {
        match error {
            rustls::Error::InvalidCertificate(certificate) => match certificate {
                CertificateError::UnknownIssuer => TlsFailure::UnknownServerCa,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsFailure::NameMismatch,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => {
                    TlsFailure::ServerCertificateExpired
                }
                _ => TlsFailure::Other(error.to_string()),
            },
            rustls::Error::AlertReceived(alert) => {
                TlsFailure::from_alert_name(&format!("{alert:?}"))
            }
            _ => TlsFailure::Other(error.to_string()),
        }
    }

    /// An alert from the server, by the name rustls gives it.
    fn from_alert_name(alert: &str) -> TlsFailure {
        // The server's alerts about the certificate the client sent.
        const CLIENT_CERTIFICATE: [AlertDescription; 8] = [
            AlertDescription::UnknownCA,
            AlertDescription::BadCertificate,
            AlertDescription::CertificateExpired,
            AlertDescription::CertificateRevoked,
            AlertDescription::CertificateUnknown,
            AlertDescription::UnsupportedCertificate,
            AlertDescription::CertificateRequired,
            AlertDescription::AccessDenied,
        ];
        if CLIENT_CERTIFICATE
            .iter()
            .any(|known| format!("{known:?}") == alert)
        {
            TlsFailure::ClientCertificateRefused
        } else {
            TlsFailure::Other(format!("the server sent the TLS alert {alert}"))
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::UnknownServerCa => f.write_str(
                "the server's certificate is signed by a CA this client does not trust \
                 (unknown server CA: give the registry's CA certificate)",
            ),
            TlsFailure::NameMismatch => f.write_str(
                "the server's certificate does not name the host connected to (name mismatch: \
                 check the address or the TLS domain name)",
            ),
            TlsFailure::ServerCertificateExpired => {
                f.write_str("the server's certificate has expired or is not valid yet")
            }
            TlsFailure::ClientCertificateRefused => f.write_str(
                "the server refused the client certificate (is it signed by the CA the \
                 registry trusts, and still valid?)",
            ),
            TlsFailure::Other(error) => write!(f, "TLS failed: {error}"),
        }
    }
}
