//! TLS that fails, as a partner and an operator see it: the shipped client says which
//! certificate is wrong (the server's CA, its name, or the client's own certificate), and
//! the server logs each failed handshake's cause, one line a second at most.

use crate::common::{self, agencies};

use std::time::Instant;

use agencies::*;
use common::tls::*;
use common::*;
use observer_registry::client::{Client, ClientError, ClientOptions, TlsFailure};
use observer_registry::pb::v1 as pb;
use observer_registry::server::ServeOptions;
use rcgen::ExtendedKeyUsagePurpose;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;

/// A server with TLS and client certificates of `ca`, its address, and its log lines (the
/// test runs on one thread, so the server's tasks write to the test's subscriber).
struct TlsServer {
    ca: TestCa,
    url: String,
    addr: std::net::SocketAddr,
    logs: Logs,
    _tls: TlsMaterial,
    _stop: tokio::sync::oneshot::Sender<()>,
    _agencies: Agencies,
    _logging: tracing::dispatcher::DefaultGuard,
}

async fn tls_server(pool: PgPool) -> TlsServer {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let logging = tracing::subscriber::set_default(subscriber);
    let ca = new_ca("Observer Registry test CA");
    let (cert, key) = leaf(
        &ca,
        "localhost",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let agencies = Agencies::new(
        "tls-failures",
        vec![Agency::with_certificate(
            "border-service",
            &["reader"],
            "border-service.gov.example",
        )],
    );
    let tls = TlsMaterial::new(&cert, &key, Some(&ca.pem));
    let options = ServeOptions {
        tls: Some(tls.server_tls()),
        ..agencies.options()
    };
    let (addr, stop) = spawn_server(pool, options).await;
    TlsServer {
        ca,
        url: format!("https://127.0.0.1:{}", addr.port()),
        addr,
        logs,
        _tls: tls,
        _stop: stop,
        _agencies: agencies,
        _logging: logging,
    }
}

fn options(ca_pem: &str, identity: Option<(Vec<u8>, Vec<u8>)>, domain: &str) -> ClientOptions {
    ClientOptions {
        token: None,
        ca_certificate_pem: Some(ca_pem.as_bytes().to_vec()),
        client_identity_pem: identity,
        tls_domain_name: Some(domain.into()),
        ..Default::default()
    }
}

/// The failure of connecting and making one call, as the client reports it.
async fn failure(url: &str, options: ClientOptions) -> (TlsFailure, String) {
    match Client::connect(url.to_owned(), options).await {
        Err(error) => {
            let failure = TlsFailure::find(&error).unwrap_or_else(|| panic!("{error:?}"));
            (failure, error.to_string())
        }
        // TLS 1.3: the server checks the client's certificate after the client's handshake,
        // so the refusal reaches the first call.
        Ok(client) => {
            let status = client
                .elections()
                .list_elections(pb::ListElectionsRequest::default())
                .await
                .unwrap_err();
            let failure = TlsFailure::find(&status).unwrap_or_else(|| panic!("{status:?}"));
            (failure, status.to_string())
        }
    }
}

#[sqlx::test]
async fn the_client_says_when_the_servers_ca_is_unknown(pool: PgPool) {
    let server = tls_server(pool).await;
    let other_ca = new_ca("Some other CA");
    let (failure, message) = failure(&server.url, options(&other_ca.pem, None, "localhost")).await;
    assert_eq!(failure, TlsFailure::UnknownServerCa);
    let error = Client::connect(
        server.url.clone(),
        options(&other_ca.pem, None, "localhost"),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(error, ClientError::Transport(_)));
    assert!(
        error.to_string().contains("unknown server CA"),
        "{error} ({message})"
    );
}

#[sqlx::test]
async fn the_client_says_when_the_servers_name_does_not_match(pool: PgPool) {
    let server = tls_server(pool).await;
    let error = Client::connect(
        server.url.clone(),
        options(&server.ca.pem, None, "registry.elsewhere.example"),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(TlsFailure::find(&error), Some(TlsFailure::NameMismatch));
    assert!(error.to_string().contains("name mismatch"), "{error}");
}

#[sqlx::test]
async fn the_client_says_when_its_certificate_is_refused_and_the_server_logs_why(pool: PgPool) {
    let server = tls_server(pool).await;
    let rogue_ca = new_ca("Some other CA");
    let rogue = leaf(
        &rogue_ca,
        "border-service.gov.example",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let (failure, message) = failure(
        &server.url,
        options(&server.ca.pem, Some(rogue), "localhost"),
    )
    .await;
    assert_eq!(failure, TlsFailure::ClientCertificateRefused, "{message}");
    assert!(
        failure
            .to_string()
            .contains("refused the client certificate"),
        "{failure}"
    );

    wait_until(
        std::time::Duration::from_secs(5),
        "the failed handshake in the log",
        || {
            let logged = server
                .logs
                .lines()
                .iter()
                .any(|line| line.contains("TLS handshake failed"));
            async move { logged }
        },
    )
    .await;
    let lines = server.logs.lines();
    let line = lines
        .iter()
        .find(|line| line.contains("TLS handshake failed"))
        .unwrap();
    assert!(line.contains("UnknownIssuer"), "no cause in {line}");
    assert!(line.contains("failed=1"), "{line}");
}

#[sqlx::test]
async fn failed_handshakes_are_logged_once_a_second_at_most(pool: PgPool) {
    let server = tls_server(pool).await;
    let started = Instant::now();
    // Plain HTTP/1.1 to the TLS port, as a misconfigured client or a scanner sends it.
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut [0u8; 64]).await;
    }
    let seconds = started.elapsed().as_secs() + 1;
    let lines: Vec<String> = server
        .logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("TLS handshake failed"))
        .collect();
    assert!(!lines.is_empty(), "{:#?}", server.logs.lines());
    assert!(
        lines.len() as u64 <= seconds,
        "{} lines in about {seconds} s: {lines:#?}",
        lines.len()
    );
    assert!(lines[0].contains("cause="), "{}", lines[0]);
    // The client is named, so an operator can tell a partner from a scanner.
    assert!(lines[0].contains("peer=\"127.0.0.1:"), "{}", lines[0]);
}
