//! TLS for the tests: a CA of their own, certificates it signs, and a server with TLS options
//! on a fresh loopback port.
#![allow(dead_code)]

use std::net::SocketAddr;

use observer_registry::server::{self, ServeOptions, ServerTls, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::common::agencies::TempFile;

pub struct TestCa {
    pub pem: String,
    pub issuer: Issuer<'static, KeyPair>,
}

pub fn new_ca(name: &str) -> TestCa {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    TestCa {
        pem,
        issuer: Issuer::new(params, key),
    }
}

/// A certificate and its key (PEM) signed by `ca`.
pub fn leaf(
    ca: &TestCa,
    common_name: &str,
    alt_names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (Vec<u8>, Vec<u8>) {
    let mut params =
        CertificateParams::new(alt_names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages.push(KeyUsagePurpose::DigitalSignature);
    params.extended_key_usages.push(usage);
    let key = KeyPair::generate().unwrap();
    let certificate = params.signed_by(&key, &ca.issuer).unwrap();
    (
        certificate.pem().into_bytes(),
        key.serialize_pem().into_bytes(),
    )
}

/// The server on a fresh loopback port with these options (TLS included); it stops when
/// the returned sender is dropped.
pub async fn spawn_server(
    pool: PgPool,
    options: ServeOptions,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, pool, options, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// The server's TLS files, each under the temporary directory, removed when dropped.
pub struct TlsMaterial {
    pub cert: TempFile,
    pub key: TempFile,
    pub client_ca: Option<TempFile>,
}

impl TlsMaterial {
    /// Files for this certificate and key (PEM), and the CA of client certificates if any.
    pub fn new(cert: &[u8], key: &[u8], client_ca: Option<&str>) -> TlsMaterial {
        let material = TlsMaterial {
            cert: TempFile::new("server-cert", "pem"),
            key: TempFile::new("server-key", "pem"),
            client_ca: client_ca.map(|pem| {
                let file = TempFile::new("client-ca", "pem");
                file.write(pem);
                file
            }),
        };
        material.cert.write(cert);
        material.key.write(key);
        material
    }

    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.cert.path.clone(),
            key: self.key.path.clone(),
            client_ca: self.client_ca.as_ref().map(|f| f.path.clone()),
        }
    }

    /// The server's TLS, loaded from the files.
    pub fn server_tls(&self) -> ServerTls {
        ServerTls::load(&self.files()).unwrap()
    }

    /// Replaces both files as a Secret update does: each new file is written aside and
    /// renamed over the old one, the certificate first.
    pub fn rotate(&self, cert: &[u8], key: &[u8]) {
        for (file, contents) in [(&self.cert, cert), (&self.key, key)] {
            let aside = file.path.with_extension("new");
            std::fs::write(&aside, contents).unwrap();
            std::fs::rename(&aside, &file.path).unwrap();
        }
    }
}
