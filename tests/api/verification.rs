//! VerificationService and its HTTP twin (API.md, "Badges and verification"): the public
//! keys, the verdict of a badge's token or an accreditation number against the record as it
//! is now, key rotation, who may verify, the per-agency and per-address rate limits, and the
//! watch for enumeration.

use crate::common::{self, agencies, registry};

use std::sync::Arc;

use agencies::*;
use chrono::{DateTime, Utc};
use common::*;
use observer_registry::badge::proxies::TrustedProxies;
use observer_registry::badge::{BadgeKeyring, BadgeSigner, Badges, VerifyLimits, VerifyUrl};
use observer_registry::client::RegistryChannel;
use observer_registry::client::badge::{BadgeClaims, BadgeKey};
use observer_registry::pb::v1 as pb;
use observer_registry::pb::v1::verification_service_client::VerificationServiceClient;
use observer_registry::server::ServeOptions;
use pb::accreditation_check::VerificationStatus as Status;
use pb::verify_accreditation_request::Subject;
use registry::*;
use sqlx::PgPool;
use tonic::Code;
use tonic_types::StatusExt;

/// The service's "now" in these tests: before voting day 2023-03-19, whose badges expire
/// 30 days after it, at 2023-04-18T00:00:00Z.
pub const BEFORE_VOTING: &str = "2023-03-10T09:00:00Z";
pub const BADGES_EXPIRE: &str = "2023-04-18T00:00:00Z";
pub const VERIFIER: &str = "verifier-agency";
pub const SCO: &str = "Shanghai Cooperation Organization";

/// Badges signed with `signer`, verifying also with `older`, with the page at
/// `http://verify.test/v` and these limits.
pub fn badges(signer: BadgeSigner, older: Vec<BadgeKey>, limits: VerifyLimits) -> Arc<Badges> {
    Arc::new(Badges {
        keyring: BadgeKeyring::new(Some(signer), older),
        verify_url: Some(VerifyUrl::parse("http://verify.test/v").unwrap()),
        limits,
        trusted_proxies: Default::default(),
    })
}

/// Limits high enough that no test but the rate-limit ones meets them.
pub fn generous() -> VerifyLimits {
    VerifyLimits {
        per_agency_per_second: 1000,
        per_address_per_second: 1000,
        enumeration_threshold: 1000,
    }
}

/// Anonymous callers (every role), the clock at [`BEFORE_VOTING`], badges signed by `signer`.
pub fn options(clock: &ManualClock, badges: Arc<Badges>) -> ServeOptions {
    ServeOptions {
        clock: clock.clock(),
        badges,
        ..test_options()
    }
}

/// Anonymous callers, the clock at [`BEFORE_VOTING`], a fresh key and `limits`.
pub fn limited(limits: VerifyLimits) -> ServeOptions {
    let clock = ManualClock::new(at(BEFORE_VOTING));
    let key = BadgeSigner::generate().unwrap();
    options(&clock, badges(key, Vec::new(), limits))
}

/// A client of `app` without credentials that makes each call once.
pub fn verification(app: &TestApp) -> Verification {
    VerificationServiceClient::new(client_without_retries(app, None).channel())
}

pub type Verification = VerificationServiceClient<RegistryChannel>;

/// An observer of `kz-2023` registered and accredited through the API.
pub async fn accredited_observer(app: &TestApp, id: &str) -> pb::Observer {
    open_election(app, "kz-2023").await;
    let person = observer("Eoghan", "Murphy", "IE", "sco", "P1234567");
    let created = create_observer(app, KZ, id, person).await;
    accredit(app, &created.name).await.unwrap()
}

/// The claims of `observer`'s badge, expiring at `expiry`.
pub fn claims_of(observer: &pb::Observer, expiry: DateTime<Utc>) -> BadgeClaims {
    BadgeClaims {
        accreditation_number: number(observer).to_owned(),
        election: KZ.to_owned(),
        given_name: observer.given_name.clone(),
        family_name: observer.family_name.clone(),
        citizenship: observer.citizenship.clone(),
        organization_display_name: SCO.to_owned(),
        expire_unix_seconds: expiry.timestamp(),
    }
}

/// The token with one character of its claims part changed.
pub fn tampered(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let at = token.find('.').unwrap() + 5;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

async fn check(
    client: &mut Verification,
    subject: Subject,
) -> Result<pb::AccreditationCheck, tonic::Status> {
    client
        .verify_accreditation(pb::VerifyAccreditationRequest {
            subject: Some(subject),
        })
        .await
        .map(|r| r.into_inner())
}

fn token(token: &str) -> Subject {
    Subject::Token(token.to_owned())
}

fn by_number(number: &str) -> Subject {
    Subject::AccreditationNumber(number.to_owned())
}

/// A check that says only its status.
#[track_caller]
fn assert_bare(found: &pb::AccreditationCheck, status: Status) {
    assert_eq!(
        found,
        &pb::AccreditationCheck {
            status: status.into(),
            online: true,
            ..Default::default()
        }
    );
}

pub struct Fixture {
    pub app: TestApp,
    pub clock: ManualClock,
    pub signer_key: String,
    pub observer: pb::Observer,
    pub token: String,
}

/// An anonymous server at [`BEFORE_VOTING`] with an accredited observer and its badge.
async fn fixture(pool: PgPool) -> Fixture {
    fixture_with_badge_until(pool, at(BADGES_EXPIRE)).await
}

/// The same with a badge that expires at `expiry`.
pub async fn fixture_with_badge_until(pool: PgPool, expiry: DateTime<Utc>) -> Fixture {
    let clock = ManualClock::new(at(BEFORE_VOTING));
    let signer = BadgeSigner::generate().unwrap();
    let signer_key = signer.to_pkcs8_pem().unwrap();
    let claims_signer = BadgeSigner::from_pkcs8_pem(&signer_key).unwrap();
    let app = spawn_app_with_options(
        pool.clone(),
        pool,
        options(&clock, badges(signer, Vec::new(), generous())),
    )
    .await;
    let observer = accredited_observer(&app, "murphy").await;
    let token = claims_signer.sign(&claims_of(&observer, expiry));
    Fixture {
        app,
        clock,
        signer_key,
        observer,
        token,
    }
}

#[sqlx::test]
async fn verification_of_an_accredited_observers_badge_is_valid_with_the_records_names(
    pool: PgPool,
) {
    let f = fixture(pool).await;
    let mut client = verification(&f.app);

    let found = check(&mut client, token(&f.token)).await.unwrap();

    assert_eq!(found.status(), Status::Valid);
    assert!(found.online);
    assert_eq!(found.accreditation_number, number(&f.observer));
    assert_eq!(
        (found.given_name.as_str(), found.family_name.as_str()),
        ("Eoghan", "Murphy")
    );
    assert_eq!(found.citizenship, "IE");
    assert_eq!(found.organization_display_name, SCO);
    assert_eq!(found.election, KZ);
    assert_eq!(found.election_display_name, "Early parliamentary election");
    assert_eq!(instant(found.expire_time.as_ref()), at(BADGES_EXPIRE));
    // A QR code's verification URL verifies as its token.
    let url = f.app.badges.qr_payload(&f.token);
    assert!(url.starts_with("http://verify.test/v#"));
    let by_url = check(&mut client, token(&url)).await.unwrap();
    assert_eq!(by_url, found);

    // Names are the record's current ones, not the badge's.
    let renamed = pb::Observer {
        name: f.observer.name.clone(),
        given_name: "Eoin".to_owned(),
        ..Default::default()
    };
    f.app
        .observers()
        .correct_observer(pb::CorrectObserverRequest {
            observer: Some(renamed),
            update_mask: mask(&["given_name"]),
            reason: "given name misspelled on the badge".to_owned(),
        })
        .await
        .unwrap();
    let found = check(&mut client, token(&f.token)).await.unwrap();
    assert_eq!(found.given_name, "Eoin");
}

#[sqlx::test]
async fn verification_of_a_revoked_accreditation_is_revoked_though_its_badge_is_authentic(
    pool: PgPool,
) {
    let f = fixture(pool).await;
    let mut client = verification(&f.app);
    revoke(&f.app, &f.observer.name, "Left the mission")
        .await
        .unwrap();

    let found = check(&mut client, token(&f.token)).await.unwrap();

    assert_eq!(found.status(), Status::Revoked);
    assert_eq!(found.accreditation_number, number(&f.observer));
    let found = check(&mut client, by_number(number(&f.observer)))
        .await
        .unwrap();
    assert_eq!(found.status(), Status::Revoked);
}

#[sqlx::test]
async fn verification_after_the_badges_expiry_is_expired_by_token_and_by_number(pool: PgPool) {
    let f = fixture(pool).await;
    let mut client = verification(&f.app);
    let one_second_before: DateTime<Utc> = at(BADGES_EXPIRE) - chrono::Duration::seconds(1);
    f.clock.set(one_second_before);
    assert_eq!(
        check(&mut client, by_number(number(&f.observer)))
            .await
            .unwrap()
            .status(),
        Status::Valid
    );

    f.clock.set(at(BADGES_EXPIRE));

    let found = check(&mut client, token(&f.token)).await.unwrap();
    assert_eq!(found.status(), Status::Expired);
    assert_eq!(found.given_name, "Eoghan");
    let found = check(&mut client, by_number(number(&f.observer)))
        .await
        .unwrap();
    assert_eq!(found.status(), Status::Expired);
    assert_eq!(instant(found.expire_time.as_ref()), at(BADGES_EXPIRE));
    // A badge's own, earlier expiry counts for the badge, whatever the election's.
    let signer = BadgeSigner::from_pkcs8_pem(&f.signer_key).unwrap();
    f.clock.set(at(BEFORE_VOTING));
    let short = signer.sign(&claims_of(&f.observer, at("2023-03-10T08:00:00Z")));
    assert_eq!(
        check(&mut client, token(&short)).await.unwrap().status(),
        Status::Expired
    );
}

#[sqlx::test]
async fn verification_of_a_tampered_or_foreign_badge_is_a_bad_signature_and_says_nothing_else(
    pool: PgPool,
) {
    let f = fixture(pool).await;
    let mut client = verification(&f.app);

    let found = check(&mut client, token(&tampered(&f.token)))
        .await
        .unwrap();
    assert_bare(&found, Status::BadSignature);

    let stranger = BadgeSigner::generate().unwrap();
    let forged = stranger.sign(&claims_of(&f.observer, at(BADGES_EXPIRE)));
    assert_bare(
        &check(&mut client, token(&forged)).await.unwrap(),
        Status::BadSignature,
    );
    for garbage in [
        "not-a-token".to_owned(),
        format!("{}.{}", f.token, "A".repeat(4096)),
    ] {
        assert_bare(
            &check(&mut client, token(&garbage)).await.unwrap(),
            Status::BadSignature,
        );
    }
}

#[sqlx::test]
async fn verification_by_number_is_valid_for_an_accreditation_and_unknown_for_none(pool: PgPool) {
    let f = fixture(pool).await;
    let mut client = verification(&f.app);

    let found = check(&mut client, by_number(&number(&f.observer).to_lowercase()))
        .await
        .unwrap();
    assert_eq!(found.status(), Status::Valid);
    assert_eq!(found.family_name, "Murphy");
    assert_eq!(instant(found.expire_time.as_ref()), at(BADGES_EXPIRE));

    let found = check(&mut client, by_number("KZ-2023-999999"))
        .await
        .unwrap();
    assert_bare(&found, Status::Unknown);
}

#[sqlx::test]
async fn verification_without_a_subject_or_with_a_malformed_number_is_invalid(pool: PgPool) {
    let f = fixture(pool).await;
    let mut client = verification(&f.app);

    let empty = client
        .verify_accreditation(pb::VerifyAccreditationRequest { subject: None })
        .await
        .unwrap_err();
    assert_invalid(&empty, "INVALID_ARGUMENT", &["accreditation_number"]);
    let blank = check(&mut client, token("")).await.unwrap_err();
    assert_invalid(&blank, "INVALID_ARGUMENT", &["token"]);
    let malformed = check(&mut client, by_number("Robert'); DROP TABLE observers"))
        .await
        .unwrap_err();
    assert_invalid(&malformed, "INVALID_ARGUMENT", &["accreditation_number"]);
}

#[sqlx::test]
async fn verification_keys_rotate_old_badges_still_verify_and_the_new_key_signs(pool: PgPool) {
    let f = fixture(pool.clone()).await;
    let old_token = f.token.clone();
    let old = BadgeSigner::from_pkcs8_pem(&f.signer_key).unwrap();
    let old_id = old.public().key_id.clone();
    f.app.shutdown().await.unwrap();

    // The service restarts with a new key, the old one listed among the verification keys.
    let new = BadgeSigner::generate().unwrap();
    let new_id = new.public().key_id.clone();
    let rotated = badges(new, vec![old.public().clone()], generous());
    let app = spawn_app_with_options(pool.clone(), pool, options(&f.clock, rotated)).await;
    let mut client = verification(&app);

    let keys = client
        .list_badge_keys(pb::ListBadgeKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    let listed: Vec<(&str, bool)> = keys
        .iter()
        .map(|k| (k.key_id.as_str(), k.signing))
        .collect();
    assert_eq!(listed, [(new_id.as_str(), true), (old_id.as_str(), false)]);
    assert!(
        keys.iter().all(|k| k.algorithm == "Ed25519"
            && k.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"))
    );
    assert_eq!(
        check(&mut client, token(&old_token))
            .await
            .unwrap()
            .status(),
        Status::Valid
    );
}

/// The standard agencies and one with the `verifier` role only.
fn agencies_with_verifier(label: &str) -> Agencies {
    let mut all: Vec<Agency> = STANDARD
        .iter()
        .map(|(name, roles)| Agency::with_token(name, roles))
        .collect();
    all.push(Agency::with_token(VERIFIER, &["verifier"]));
    all.push(Agency::with_token("verifier-b", &["verifier"]));
    Agencies::new(label, all)
}

async fn spawn_with_agencies(pool: PgPool, limits: VerifyLimits) -> (TestApp, Agencies) {
    let agencies = agencies_with_verifier("verification");
    let options = ServeOptions {
        badges: badges(BadgeSigner::generate().unwrap(), Vec::new(), limits),
        ..agencies.options()
    };
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    (app, agencies)
}

fn as_agency(app: &TestApp, agencies: &Agencies, name: &str) -> Verification {
    let client = agencies.client(app, name);
    VerificationServiceClient::new(client.channel())
}

#[sqlx::test]
async fn verification_is_for_verifiers_and_readers_and_the_keys_for_anyone(pool: PgPool) {
    let (app, agencies) = spawn_with_agencies(pool, generous()).await;
    let unknown = || by_number("KZ-2023-000001");

    for allowed in [VERIFIER, READER, PERSONAL_DATA_READER] {
        let mut client = as_agency(&app, &agencies, allowed);
        let found = check(&mut client, unknown()).await.unwrap();
        assert_eq!(found.status(), Status::Unknown, "{allowed}");
    }
    for refused in [REGISTRAR, ACCREDITOR, PROTOCOL] {
        let mut client = as_agency(&app, &agencies, refused);
        let status = check(&mut client, unknown()).await.unwrap_err();
        assert_error(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    }
    let mut anonymous = verification(&app);
    let status = check(&mut anonymous, unknown()).await.unwrap_err();
    assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");

    let keys = anonymous
        .list_badge_keys(pb::ListBadgeKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].signing);
}

#[sqlx::test]
async fn verification_beyond_an_agencys_rate_is_refused_with_when_to_retry(pool: PgPool) {
    let limits = VerifyLimits {
        per_agency_per_second: 1,
        ..generous()
    };
    let (app, agencies) = spawn_with_agencies(pool, limits).await;
    let mut verifier = as_agency(&app, &agencies, VERIFIER);

    // Ten seconds' worth at once, then no more.
    for _ in 0..10 {
        check(&mut verifier, by_number("KZ-2023-000001"))
            .await
            .unwrap();
    }
    let refused = check(&mut verifier, by_number("KZ-2023-000001"))
        .await
        .unwrap_err();

    assert_error(&refused, Code::ResourceExhausted, "RATE_LIMITED");
    let retry = refused
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("a RetryInfo with a delay");
    assert!(retry > std::time::Duration::ZERO && retry <= std::time::Duration::from_secs(1));
    // Another agency is not held back.
    let mut other = as_agency(&app, &agencies, "verifier-b");
    check(&mut other, by_number("KZ-2023-000001"))
        .await
        .unwrap();
}

#[sqlx::test]
async fn verification_probing_is_logged_once_and_counted_without_naming_the_caller(pool: PgPool) {
    let options = limited(VerifyLimits {
        enumeration_threshold: 3,
        ..generous()
    });
    let (app, logs) = spawn_app_logging(pool, options).await;
    let http = app.serve_http(true).await;
    let mut client = verification(&app);

    for sequence in 1..=6 {
        let found = check(&mut client, by_number(&format!("KZ-2023-{sequence:06}")))
            .await
            .unwrap();
        assert_eq!(found.status(), Status::Unknown);
    }
    check(&mut client, token("forged.badge.token"))
        .await
        .unwrap();

    let warnings: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("possible enumeration"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("count=4"));
    assert!(warnings[0].contains("channel=\"grpc\"") || warnings[0].contains("channel=grpc"));

    // The same over HTTP, counted per address: forged tokens (numbers need credentials).
    for sequence in 1..=4 {
        let (status, _) = http_get(http, &format!("/v1/verify?token=forged.{sequence}.x")).await;
        assert_eq!(status, 200);
    }
    let (status, metrics) = http_get(http, "/metrics").await;
    assert_eq!(status, 200);
    let sample = |prefix: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert_eq!(
        sample("observer_registry_verification_probing_total{channel=\"grpc\"}"),
        "1"
    );
    assert_eq!(
        sample("observer_registry_verification_probing_total{channel=\"http\"}"),
        "1"
    );
    assert_eq!(
        sample("observer_registry_verifications_total{status=\"UNKNOWN\"}"),
        "6"
    );
    assert_eq!(
        sample("observer_registry_verifications_total{status=\"BAD_SIGNATURE\"}"),
        "5"
    );
    assert!(!metrics.contains("127.0.0.1") && !metrics.contains("anonymous"));
    assert!(
        logs.lines()
            .iter()
            .any(|line| line.contains("possible enumeration") && line.contains("127.0.0.1"))
    );
}

#[sqlx::test]
async fn verification_over_http_answers_proto3_json_without_credentials(pool: PgPool) {
    let f = fixture(pool).await;
    let http = f.app.serve_http(true).await;

    let answer = http_response(http, &format!("/v1/verify?token={}", f.token)).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["status"], "VALID");
    assert_eq!(json["online"], true);
    assert_eq!(json["accreditationNumber"], number(&f.observer));
    assert_eq!(json["givenName"], "Eoghan");
    assert_eq!(json["organizationDisplayName"], SCO);
    assert_eq!(json["expireTime"], BADGES_EXPIRE);

    // Without credentials a number is not enough: walking the numbers would read the register.
    let by_number = http_response(
        http,
        &format!("/v1/verify?accreditation_number={}", number(&f.observer)),
    )
    .await;
    assert_eq!(by_number.status, 400, "{}", by_number.body);
    assert!(!by_number.body.contains("Eoghan"), "{}", by_number.body);
    let tampered = http_get(http, &format!("/v1/verify?token={}", tampered(&f.token))).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&tampered.1).unwrap(),
        serde_json::json!({"status": "BAD_SIGNATURE", "online": true})
    );

    for bad in [
        "/v1/verify",
        "/v1/verify?accreditation_number=nonsense",
        "/v1/verify?token=a&accreditation_number=KZ-2023-000001",
    ] {
        let answer = http_response(http, bad).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
        let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(json["error"]["reason"], "INVALID_ARGUMENT", "{bad}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
    }

    let keys = http_response(http, "/v1/badge-keys").await;
    assert_eq!(keys.status, 200);
    let json: serde_json::Value = serde_json::from_str(&keys.body).unwrap();
    assert_eq!(json["keys"][0]["signing"], true);
    assert!(
        json["keys"][0]["publicKeyPem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );

    let page = http_response(http, "/v").await;
    assert_eq!(page.status, 200);
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"));
    assert!(page.body.contains("data-verdict") && page.body.contains("publicKeyPem"));
    assert_eq!(http_get(http, "/v1/page/verify.js").await.0, 200);
}

#[sqlx::test]
async fn verification_over_http_beyond_an_addresss_rate_is_429_with_retry_after(pool: PgPool) {
    let options = limited(VerifyLimits {
        per_address_per_second: 1,
        ..generous()
    });
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    let http = app.serve_http(true).await;
    let path = "/v1/verify?token=a.b.c";
    for _ in 0..10 {
        assert_eq!(http_get(http, path).await.0, 200);
    }

    let refused = http_response(http, path).await;

    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("1"));
    let json: serde_json::Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(json["error"]["reason"], "RATE_LIMITED");
    // gRPC callers are limited per agency, not by this address's HTTP allowance.
    let mut client = verification(&app);
    check(&mut client, by_number("KZ-2023-000001"))
        .await
        .unwrap();
}

/// A server whose HTTP verification allows one check a second per client address (bursts of
/// ten), behind `trusted_proxies`, and the address of its HTTP port.
async fn one_check_per_address(
    pool: PgPool,
    trusted_proxies: &[&str],
) -> (TestApp, std::net::SocketAddr) {
    let mut options = limited(VerifyLimits {
        per_address_per_second: 1,
        ..generous()
    });
    let trusted: Vec<String> = trusted_proxies.iter().map(|p| p.to_string()).collect();
    Arc::get_mut(&mut options.badges).unwrap().trusted_proxies =
        TrustedProxies::parse(&trusted).unwrap();
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    let http = app.serve_http(true).await;
    (app, http)
}

#[sqlx::test]
async fn verification_behind_a_trusted_proxy_limits_each_forwarded_client_on_its_own(pool: PgPool) {
    let (_app, http) = one_check_per_address(pool, &["127.0.0.0/8"]).await;
    let path = "/v1/verify?token=a.b.c";
    let from = |client: &str| format!("X-Forwarded-For: {client}");
    for _ in 0..10 {
        let answer = http_response_with(http, path, &[&from("203.0.113.7")]).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let refused = http_response_with(http, path, &[&from("203.0.113.7")]).await;
    assert_eq!(refused.status, 429);
    // Another phone behind the same Ingress has its own allowance…
    let other = http_response_with(http, path, &[&from("198.51.100.2")]).await;
    assert_eq!(other.status, 200);
    // …and a client cannot buy one by writing its own left-most entry: the proxy's right-most
    // entry is the one believed.
    let spoofed = http_response_with(http, path, &[&from("192.0.2.99, 203.0.113.7")]).await;
    assert_eq!(spoofed.status, 429);
}

#[sqlx::test]
async fn verification_without_trusted_proxies_ignores_x_forwarded_for(pool: PgPool) {
    let (_app, http) = one_check_per_address(pool, &[]).await;
    let path = "/v1/verify?token=a.b.c";
    for n in 0..10 {
        let forged = format!("X-Forwarded-For: 203.0.113.{n}");
        assert_eq!(http_response_with(http, path, &[&forged]).await.status, 200);
    }
    let forged = "X-Forwarded-For: 198.51.100.77";
    assert_eq!(http_response_with(http, path, &[forged]).await.status, 429);
}

#[sqlx::test]
async fn verification_on_a_port_of_its_own_serves_only_its_routes(pool: PgPool) {
    let f = fixture(pool).await;
    let port = f.app.serve_verify_port().await;

    let (status, body) = http_get(port, &format!("/v1/verify?token={}", f.token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"VALID\""));
    assert_eq!(http_get(port, "/v").await.0, 200);
    for admin_only in ["/metrics", "/readyz", "/livez"] {
        assert_eq!(http_get(port, admin_only).await.0, 404, "{admin_only}");
    }
}
