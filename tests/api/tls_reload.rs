//! The server's certificate is rotated in place, as cert-manager does with a Secret: new
//! connections get the new certificate without a restart, and a pair that does not load
//! leaves the old one in force.

use std::time::Duration;

use observer_registry::client::{Client, ClientOptions};
use observer_registry::pb::v1 as pb;
use observer_registry::server::ServeOptions;
use rcgen::ExtendedKeyUsagePurpose;
use sqlx::PgPool;
use tonic::Status;

use crate::common::HealthClient;
use crate::common::agencies::*;
use crate::common::binary::*;
use crate::common::tls::*;

/// A certificate for `localhost` from a CA of its own: a client that trusts only that CA
/// tells which certificate the server presented.
struct Generation {
    ca: TestCa,
    cert: Vec<u8>,
    key: Vec<u8>,
}

fn generation(name: &str) -> Generation {
    let ca = new_ca(name);
    let (cert, key) = leaf(
        &ca,
        "localhost",
        &["localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    Generation { ca, cert, key }
}

/// A new connection that trusts only `trusted`, with the agency's client certificate.
async fn connect(
    addr: std::net::SocketAddr,
    trusted: &TestCa,
    identity: &(Vec<u8>, Vec<u8>),
) -> Result<Client, String> {
    let options = ClientOptions {
        ca_certificate_pem: Some(trusted.pem.clone().into_bytes()),
        client_identity_pem: Some(identity.clone()),
        tls_domain_name: Some("localhost".into()),
        ..Default::default()
    };
    Client::connect(format!("https://127.0.0.1:{}", addr.port()), options)
        .await
        .map_err(|e| e.to_string())
}

async fn list(client: &Client) -> Result<(), Status> {
    client
        .elections()
        .list_elections(pb::ListElectionsRequest::default())
        .await
        .map(|_| ())
}

/// Whether a new connection trusting only `trusted` is served (its agency authenticated by
/// its client certificate).
async fn served_to(
    addr: std::net::SocketAddr,
    trusted: &TestCa,
    identity: &(Vec<u8>, Vec<u8>),
) -> bool {
    match connect(addr, trusted, identity).await {
        Ok(client) => list(&client).await.is_ok(),
        Err(_) => false,
    }
}

struct Server {
    addr: std::net::SocketAddr,
    tls: TlsMaterial,
    agency_identity: (Vec<u8>, Vec<u8>),
    _agencies: Agencies,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A server with `first`'s certificate that knows one agency by its client certificate.
async fn start(pool: PgPool, first: &Generation) -> Server {
    let clients = new_ca("Agencies CA");
    let agency_identity = leaf(
        &clients,
        "border.gov.example",
        &["border.gov.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let agencies = Agencies::new(
        "tls-reload",
        vec![Agency::with_certificate(
            "border-service",
            &["reader"],
            "border.gov.example",
        )],
    );
    let tls = TlsMaterial::new(&first.cert, &first.key, Some(&clients.pem));
    let options = ServeOptions {
        tls: Some(tls.server_tls()),
        ..agencies.options()
    };
    let (addr, stop) = spawn_server(pool, options).await;
    Server {
        addr,
        tls,
        agency_identity,
        _agencies: agencies,
        _stop: stop,
    }
}

#[sqlx::test]
async fn a_rotated_certificate_is_served_to_new_connections_without_a_restart(pool: PgPool) {
    let (old, new) = (generation("Old CA"), generation("New CA"));
    let server = start(pool, &old).await;
    let (addr, identity) = (server.addr, &server.agency_identity);
    let open = connect(addr, &old.ca, identity).await.unwrap();
    list(&open).await.unwrap();
    assert!(!served_to(addr, &new.ca, identity).await);

    server.tls.rotate(&new.cert, &new.key);

    assert!(
        served_to(addr, &new.ca, identity).await,
        "a new connection did not get the new certificate"
    );
    assert!(
        !served_to(addr, &old.ca, identity).await,
        "a new connection still got the old certificate"
    );
    // A connection made before keeps its session.
    list(&open).await.unwrap();
}

#[sqlx::test]
async fn a_certificate_that_does_not_load_leaves_the_old_one_in_force(pool: PgPool) {
    let (old, new) = (generation("Old CA"), generation("New CA"));
    let server = start(pool, &old).await;
    let (addr, identity) = (server.addr, &server.agency_identity);

    // Half written: the certificate cut short.
    let half = &new.cert[..new.cert.len() / 2];
    server.tls.rotate(half, &old.key);
    assert!(served_to(addr, &old.ca, identity).await, "after a cut file");
    // The certificate new, the key still old: they do not belong together.
    server.tls.rotate(&new.cert, &old.key);
    assert!(served_to(addr, &old.ca, identity).await, "after a mismatch");
    assert!(!served_to(addr, &new.ca, identity).await);
    // Then the key arrives.
    server.tls.rotate(&new.cert, &new.key);
    assert!(
        served_to(addr, &new.ca, identity).await,
        "after the key came"
    );
}

/// The real binary, from its TLS settings: a rotation is logged, and so is a pair that does
/// not load; a pair that does not load at start stops it.
#[sqlx::test]
async fn the_binary_logs_each_rotation_and_refuses_to_start_with_a_bad_pair(pool: PgPool) {
    let (old, new) = (generation("Old CA"), generation("New CA"));
    let tls = TlsMaterial::new(&old.cert, &old.key, None);
    let files = tls.files();
    let url = database_url(&pool);
    let env = [
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("TLS_CERT_FILE", files.cert.to_str().unwrap()),
        ("TLS_KEY_FILE", files.key.to_str().unwrap()),
    ];
    let mut binary = Binary::start(&url, &env).await;
    let addr = binary.address;
    let connects = |trusted: &TestCa| {
        let options = ClientOptions {
            ca_certificate_pem: Some(trusted.pem.clone().into_bytes()),
            tls_domain_name: Some("localhost".into()),
            ..Default::default()
        };
        async move {
            match Client::connect(format!("https://127.0.0.1:{}", addr.port()), options).await {
                Ok(client) => health_of(&client).await,
                Err(_) => false,
            }
        }
    };
    assert!(connects(&old.ca).await);

    tls.rotate(&new.cert, &old.key);
    assert!(connects(&old.ca).await);
    let refused = wait_for_log(
        &mut binary.logs,
        "server certificate not reloaded; the previous one stays in force",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(refused["level"], "ERROR", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not go with")),
        "{refused}"
    );

    tls.rotate(&new.cert, &new.key);
    assert!(connects(&new.ca).await);
    wait_for_log(
        &mut binary.logs,
        "server certificate reloaded",
        Duration::from_secs(10),
    )
    .await;
    binary.stop().await;

    // At start, a pair that does not load is an error, not a server without a certificate.
    tls.rotate(&new.cert, &old.key);
    let output = tokio::time::timeout(Duration::from_secs(20), command(&url, &env).output())
        .await
        .expect("the binary did not exit")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("does not go with"), "{stderr}");
}

/// Whether the server answers the health check on this connection.
async fn health_of(client: &Client) -> bool {
    HealthClient::new(client.channel())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .is_ok()
}
