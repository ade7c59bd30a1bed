//! What a call presents to prove who it is: the token of its `authorization` metadata and the
//! names of its client certificate. Only reading them; which agency they name is
//! `identities`' business.

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo, UdsConnectInfo};
use x509_parser::extensions::GeneralName;

/// The token of an `authorization` value in the `Bearer` scheme. The scheme's name is
/// case-insensitive (RFC 7235 §2.1): `bearer x` and `BEARER x` are the same credentials.
/// `None` for another scheme or no token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The names a client certificate (DER) claims: its DNS SANs, or — only when it has none —
/// its subject common names. RFC 6125 §6.4.4: a CN is not an identifier once the
/// certificate has DNS SANs, so a CA that lets a requester choose the CN but checks the SANs
/// cannot be used to impersonate an agency. `None` when the certificate does not parse.
pub fn certificate_names(der: &[u8]) -> Option<Vec<String>> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let dns_names: Vec<String> = match certificate.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
            .collect(),
        // A certificate with a malformed SAN extension names nothing we can trust.
        Err(_) => return None,
        Ok(None) => Vec::new(),
    };
    if !dns_names.is_empty() {
        return Some(dns_names);
    }
    Some(
        certificate
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect(),
    )
}

/// The leaf certificate the client presented in the TLS handshake, over TCP or a Unix socket.
pub fn client_certificate<B>(request: &http::Request<B>) -> Option<Vec<u8>> {
    let extensions = request.extensions();
    let chain = extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<UdsConnectInfo>>()
                .and_then(TlsConnectInfo::peer_certs)
        });
    Some(chain?.first()?.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    #[test]
    fn the_bearer_scheme_is_matched_without_regard_to_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR   abc  "] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
        for value in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "abc", ""] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }

    fn certificate(common_name: &str, dns_names: &[&str]) -> Vec<u8> {
        let mut params =
            CertificateParams::new(dns_names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_certificate_with_dns_names_is_known_by_them_alone() {
        let der = certificate("admin.gov.example", &["border.gov.example", "b.example"]);
        assert_eq!(
            certificate_names(&der).unwrap(),
            ["border.gov.example", "b.example"]
        );
    }

    #[test]
    fn a_certificate_without_dns_names_is_known_by_its_common_name() {
        let der = certificate("border.gov.example", &[]);
        assert_eq!(certificate_names(&der).unwrap(), ["border.gov.example"]);
        assert_eq!(certificate_names(b"not a certificate"), None);
    }
}
