//! The agencies file is strict: a credential in two agencies, an empty list or an unknown
//! role stops the binary at start and leaves the file in force on reload. Credentials are
//! read as the RFCs say: the `Bearer` scheme in any case (RFC 7235), and a client
//! certificate's CN only when it has no DNS SANs (RFC 6125).

use std::time::Duration;

use observer_registry::auth::identities::hash_token;
use observer_registry::client::{Client, ClientOptions};
use observer_registry::pb::v1 as pb;
use observer_registry::server::ServeOptions;
use rcgen::ExtendedKeyUsagePurpose;
use sqlx::PgPool;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::common::agencies::*;
use crate::common::binary::*;
use crate::common::tls::*;
use crate::common::*;

/// Agencies files with one mistake each, and what the refusal must name.
fn mistakes(a: &Agency) -> Vec<(&'static str, String, Vec<String>)> {
    let a_hash = hash_token(a.token());
    let with_a_token = format!(
        "[[agencies]]\nname = \"agency-b\"\nroles = [\"admin\"]\ntoken_sha256 = [\"{a_hash}\"]\n"
    );
    let mut cert_a = Agency::with_certificate("cert-a", &["reader"], "mfa.gov.example");
    cert_a.token = None;
    let cert_b = Agency::with_certificate("cert-b", &["admin"], "MFA.gov.example");
    let mut typo = Agency::with_token("agency-c", &["reader"]);
    typo.roles = vec!["raeder".into()];
    vec![
        (
            "a token in two agencies",
            format!("{}{with_a_token}", render(std::slice::from_ref(a))),
            vec![
                "agency agency-b".into(),
                a_hash.clone(),
                format!("already agency {}'s", a.name),
            ],
        ),
        (
            "a certificate name in two agencies",
            render(&[a.clone(), cert_a, cert_b]),
            vec![
                "agency cert-b".into(),
                "mfa.gov.example".into(),
                "already agency cert-a's".into(),
            ],
        ),
        (
            "an empty list",
            "agencies = []\n".into(),
            vec!["lists no agencies".into()],
        ),
        (
            "an unknown role",
            render(&[a.clone(), typo]),
            vec!["agency agency-c".into(), "unknown role `raeder`".into()],
        ),
    ]
}

#[sqlx::test]
async fn an_agencies_file_with_a_mistake_stops_the_binary_naming_it(pool: PgPool) {
    let a = Agency::with_token("agency-a", &["reader"]);
    let url = database_url(&pool);
    for (mistake, text, named) in mistakes(&a) {
        let file = TempFile::new("strict-start", "toml");
        file.write(&text);
        let output = tokio::time::timeout(
            Duration::from_secs(20),
            command(
                &url,
                &[
                    ("LISTEN_ADDR", "127.0.0.1:0"),
                    ("IDENTITIES_FILE", file.path().to_str().unwrap()),
                ],
            )
            .output(),
        )
        .await
        .expect("the binary did not exit")
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{mistake}: started anyway:\n{stderr}"
        );
        for name in &named {
            assert!(
                stderr.contains(name.as_str()),
                "{mistake}: {name:?} not named:\n{stderr}"
            );
        }
        assert!(!stderr.contains("serving gRPC"), "{mistake}:\n{stderr}");
    }
}

#[sqlx::test]
async fn a_reload_of_a_file_with_a_mistake_keeps_the_agencies_in_force(pool: PgPool) {
    let a = Agency::with_token("agency-a", &["reader"]);
    let file = TempFile::new("strict-reload", "toml");
    file.write(render(std::slice::from_ref(&a)));
    let mut binary = Binary::start(
        &database_url(&pool),
        &[
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("IDENTITIES_FILE", file.path().to_str().unwrap()),
            ("IDENTITIES_RELOAD_INTERVAL", "1h"),
        ],
    )
    .await;
    let channel = binary.channel().await;
    let list = |token: String| {
        let channel = channel.clone();
        async move {
            Client::from_channel(channel, Some(&token))
                .unwrap()
                .elections()
                .list_elections(pb::ListElectionsRequest::default())
                .await
        }
    };
    list(a.token().to_owned()).await.unwrap();

    for (mistake, text, named) in mistakes(&a) {
        file.write(&text);
        kill(&binary.child, "-HUP");
        let refused = wait_for_log(
            &mut binary.logs,
            "agencies file not reloaded; the previous one stays in force",
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(refused["level"], "ERROR", "{mistake}: {refused}");
        let error = refused["error"].as_str().unwrap_or_default();
        for name in &named {
            assert!(
                error.contains(name.as_str()),
                "{mistake}: {name:?} not named: {refused}"
            );
        }
        list(a.token().to_owned())
            .await
            .unwrap_or_else(|status| panic!("{mistake}: agency A lost its access: {status:?}"));
    }
    binary.stop().await;
}

#[sqlx::test]
async fn the_bearer_scheme_is_matched_in_any_case(pool: PgPool) {
    let agencies = Agencies::new(
        "bearer-case",
        vec![Agency::with_token("agency-a", &["reader"])],
    );
    let app = spawn_app_with_options(pool.clone(), pool, agencies.options()).await;
    let token = agencies.token("agency-a");
    let list = |authorization: String| {
        let mut elections = app.elections();
        async move {
            let mut request = tonic::Request::new(pb::ListElectionsRequest::default());
            request.metadata_mut().insert(
                "authorization",
                MetadataValue::try_from(authorization).unwrap(),
            );
            elections.list_elections(request).await
        }
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        list(format!("{scheme} {token}"))
            .await
            .unwrap_or_else(|status| panic!("`{scheme}` refused: {status:?}"));
    }
    for refused in [
        format!("Basic {token}"),
        format!("Bearer{token}"),
        token.into(),
    ] {
        let status = list(refused.clone()).await.unwrap_err();
        assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");
    }
}

#[sqlx::test]
async fn a_client_certificate_with_dns_names_is_not_known_by_its_common_name(pool: PgPool) {
    let ca = new_ca("Observer Registry test CA");
    let (server_cert, server_key) = leaf(
        &ca,
        "localhost",
        &["localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = ExtendedKeyUsagePurpose::ClientAuth;
    // The CN names the agency, the SAN does not: the CN does not count.
    let common_name_only = leaf(
        &ca,
        "border.gov.example",
        &["someone.example"],
        client.clone(),
    );
    let by_san = leaf(
        &ca,
        "someone.example",
        &["border.gov.example"],
        client.clone(),
    );
    let without_san = leaf(&ca, "border.gov.example", &[], client);
    let agencies = Agencies::new(
        "san",
        vec![Agency::with_certificate(
            "border-service",
            &["reader"],
            "border.gov.example",
        )],
    );
    let tls = TlsMaterial::new(&server_cert, &server_key, Some(&ca.pem));
    let options = ServeOptions {
        tls: Some(tls.server_tls()),
        ..agencies.options()
    };
    let (addr, _stop) = spawn_server(pool, options).await;
    let list = |identity: (Vec<u8>, Vec<u8>)| {
        let url = format!("https://127.0.0.1:{}", addr.port());
        let options = ClientOptions {
            ca_certificate_pem: Some(ca.pem.clone().into_bytes()),
            client_identity_pem: Some(identity),
            tls_domain_name: Some("localhost".into()),
            ..Default::default()
        };
        async move {
            Client::connect(url, options)
                .await
                .unwrap()
                .elections()
                .list_elections(pb::ListElectionsRequest::default())
                .await
        }
    };

    let status = list(common_name_only).await.unwrap_err();
    assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");
    list(by_san).await.unwrap();
    list(without_san).await.unwrap();
}
