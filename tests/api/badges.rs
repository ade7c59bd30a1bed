//! Badges (API.md "Badges and verification", issue 18): GetObserverBadge signs what the record
//! says and draws it as a printable card whose QR code scans back to the token; only an
//! accredited observer has one, only an accreditor gets it, and only a service with a signing
//! key makes it. The `badges` command writes an election's cards and A4 sheets.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{self, agencies, badges, registry};

use agencies::{Agencies, Agency, TempFile};
use common::*;
use observer_registry::badge::{BadgeKeyring, BadgeSigner, Badges, VerifyUrl};
use observer_registry::client::Client;
use observer_registry::client::badge::{BadgeKey, VerifiedBadge, verify_badge_at};
use observer_registry::pb::v1 as pb;
use observer_registry::server::ServeOptions;
use registry::*;
use sqlx::PgPool;
use tonic::{Code, Status};

/// Badges of kz-2023 (voting day 2023-03-19, badges valid 30 days) expire at this instant.
const KZ_EXPIRY: &str = "2023-04-18T00:00:00Z";

/// A server that signs badges with a new key (and puts `verify_url` in the QR codes), and
/// the key's public half to verify them with.
fn signing(verify_url: Option<&str>, options: ServeOptions) -> (ServeOptions, BadgeKey) {
    let signer = BadgeSigner::generate().unwrap();
    let public = signer.public().clone();
    let badges = Badges {
        keyring: BadgeKeyring::new(Some(signer), Vec::new()),
        verify_url: verify_url.map(|url| VerifyUrl::parse(url).unwrap()),
        limits: Default::default(),
        trusted_proxies: Default::default(),
    };
    let options = ServeOptions {
        badges: Arc::new(badges),
        ..options
    };
    (options, public)
}

async fn spawn_signing(pool: PgPool) -> (TestApp, BadgeKey) {
    let (options, key) = signing(None, test_options());
    (
        spawn_app_with_options(pool.clone(), pool, options).await,
        key,
    )
}

fn name(id: &str) -> String {
    format!("{KZ}/observers/{id}")
}

/// `elections/kz-2023` (accreditation open) with `people` registered as `obs-{i}` by `sco`,
/// then accredited.
async fn with_accredited(app: &TestApp, people: &[(&str, &str)]) -> Vec<pb::Observer> {
    open_election(app, "kz-2023").await;
    let mut accredited = Vec::new();
    for (i, (given, family)) in people.iter().enumerate() {
        let person = observer(given, family, "CN", "sco", &format!("D{i:07}"));
        let id = format!("obs-{i}");
        create_observer(app, KZ, &id, person).await;
        accredited.push(accredit(app, &name(&id)).await.unwrap());
    }
    accredited
}

async fn get_badge(app: &TestApp, name: &str) -> Result<pb::ObserverBadge, Status> {
    app.observers()
        .get_observer_badge(pb::GetObserverBadgeRequest {
            name: name.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

/// The token checked offline as a partner checks it, on voting day.
fn verified(token: &str, key: &BadgeKey) -> VerifiedBadge {
    let voting_day =
        UNIX_EPOCH + Duration::from_secs(at("2023-03-19T08:00:00Z").timestamp() as u64);
    verify_badge_at(token, std::slice::from_ref(key), voting_day).unwrap()
}

#[sqlx::test]
async fn an_accredited_observers_badge_is_signed_with_what_the_record_says(pool: PgPool) {
    let (app, key) = spawn_signing(pool).await;
    let observer = with_accredited(&app, &[("Li", "Wei")]).await.remove(0);
    let number = accreditation(&observer).number.clone();
    let (audited, fed) = (app.count("audit_events").await, app.count("changes").await);

    let badge = get_badge(&app, &observer.name).await.unwrap();

    assert_eq!(badge.observer, observer.name);
    assert_eq!(badge.accreditation_number, number);
    assert_eq!(badge.key_id, key.key_id);
    assert_eq!(instant(badge.expire_time.as_ref()), at(KZ_EXPIRY));
    let verified = verified(&badge.token, &key);
    assert_eq!(verified.key_id, key.key_id);
    assert_eq!(verified.accreditation_number, number);
    assert_eq!(verified.election, KZ);
    assert_eq!(
        (verified.given_name.as_str(), verified.family_name.as_str()),
        ("Li", "Wei")
    );
    assert_eq!(verified.citizenship, "CN");
    assert_eq!(
        verified.organization_display_name,
        "Shanghai Cooperation Organization"
    );
    assert_eq!(verified.expire_unix_seconds, at(KZ_EXPIRY).timestamp());
    // Past its expiry the same badge no longer verifies offline.
    let after = SystemTime::UNIX_EPOCH + Duration::from_secs(at(KZ_EXPIRY).timestamp() as u64);
    assert!(verify_badge_at(&badge.token, &[key], after).is_err());
    // A read: nothing audited, nothing in the change feed.
    assert_eq!(app.count("audit_events").await, audited);
    assert_eq!(app.count("changes").await, fed);
}

#[sqlx::test]
async fn the_cards_qr_code_holds_the_token_or_the_verification_url_with_it(pool: PgPool) {
    let (app, key) = spawn_signing(pool.clone()).await;
    let observer = with_accredited(&app, &[("Eoghan", "Murphy")])
        .await
        .remove(0);
    let badge = get_badge(&app, &observer.name).await.unwrap();
    assert!(badge.svg.contains(r#"width="85.6mm" height="54mm""#));
    assert_eq!(badges::scan(&badge.svg), badge.token);

    let (options, _) = signing(Some("https://verify.cec.example/v"), test_options());
    let with_url = spawn_app_with_options(pool.clone(), pool, options).await;
    let badge = get_badge(&with_url, &observer.name).await.unwrap();
    let scanned = badges::scan(&badge.svg);
    assert_eq!(
        scanned,
        format!("https://verify.cec.example/v#{}", badge.token)
    );
    // A phone's scan verifies as the token itself; this server's key is another.
    assert!(verify_badge_at(&scanned, &[key], UNIX_EPOCH).is_err());
}

#[sqlx::test]
async fn only_an_accreditation_in_force_has_a_badge(pool: PgPool) {
    let (app, _) = spawn_signing(pool).await;
    open_election(&app, "kz-2023").await;
    for (i, id) in ["pending", "rejected", "revoked", "deleted"]
        .iter()
        .enumerate()
    {
        let person = observer("Anna", id, "RU", "sco", &format!("N{i:07}"));
        create_observer(&app, KZ, id, person).await;
    }
    reject(&app, &name("rejected"), "Not invited")
        .await
        .unwrap();
    accredit(&app, &name("revoked")).await.unwrap();
    revoke(&app, &name("revoked"), "Left the mission")
        .await
        .unwrap();
    app.observers()
        .delete_observer(pb::DeleteObserverRequest {
            name: name("deleted"),
            etag: String::new(),
        })
        .await
        .unwrap();

    for id in ["pending", "rejected", "revoked"] {
        let status = get_badge(&app, &name(id)).await.unwrap_err();
        assert_error(&status, Code::FailedPrecondition, "NOT_ACCREDITED");
    }
    let status = get_badge(&app, &name("deleted")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[sqlx::test]
async fn without_a_signing_key_no_badge_is_made(pool: PgPool) {
    let app = spawn_app(pool).await;
    let observer = with_accredited(&app, &[("Li", "Wei")]).await.remove(0);
    let status = get_badge(&app, &observer.name).await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "BADGE_SIGNING_DISABLED");
}

#[sqlx::test]
async fn unknown_and_malformed_names_are_refused(pool: PgPool) {
    let (app, _) = spawn_signing(pool).await;
    open_election(&app, "kz-2023").await;
    let status = get_badge(&app, &name("nobody")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = get_badge(&app, "elections/kz-2023/nobody")
        .await
        .unwrap_err();
    assert_invalid(&status, "INVALID_ARGUMENT", &["name"]);
}

#[sqlx::test]
async fn only_an_accreditor_gets_a_badge(pool: PgPool) {
    let agencies = Agencies::standard("badges-roles");
    let (options, _) = signing(None, agencies.options());
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    let admin = agencies.client(&app, agencies::ADMIN);
    let registrar = agencies.client(&app, agencies::REGISTRAR);
    let accreditor = agencies.client(&app, agencies::ACCREDITOR);
    create_kz_election_as(&admin).await;
    let li = observer("Li", "Wei", "CN", "sco", "D0000001");
    register_as(&registrar, Some(&accreditor), "li", li).await;

    let request = || pb::GetObserverBadgeRequest { name: name("li") };
    for agency in [
        agencies::READER,
        agencies::REGISTRAR,
        agencies::PERSONAL_DATA_READER,
    ] {
        let client = agencies.client(&app, agency);
        let status = client
            .observers()
            .get_observer_badge(request())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{agency}");
    }
    assert!(
        accreditor
            .observers()
            .get_observer_badge(request())
            .await
            .is_ok()
    );
}

/// Registers `person` as `id` in kz-2023 through `registrar`, then accredits it through
/// `accreditor` when there is one.
async fn register_as(
    registrar: &Client,
    accreditor: Option<&Client>,
    id: &str,
    person: pb::Observer,
) {
    registrar
        .observers()
        .create_observer(create_observer_request(KZ, id, person))
        .await
        .unwrap();
    if let Some(accreditor) = accreditor {
        let request = pb::AccreditObserverRequest {
            name: name(id),
            ..Default::default()
        };
        accreditor
            .observers()
            .accredit_observer(request)
            .await
            .unwrap();
    }
}

/// kz-2023 (accreditation open) and `sco`, made by the admin agency.
async fn create_kz_election_as(admin: &Client) {
    create_organization_as(admin, "sco", "Shanghai Cooperation Organization").await;
    create_open_kz_election_as(admin, "Early parliamentary election").await;
}

#[sqlx::test]
async fn names_with_markup_are_escaped_and_the_card_stays_valid_svg(pool: PgPool) {
    let (app, key) = spawn_signing(pool).await;
    let observer = with_accredited(&app, &[(r#"Zoë "Jo""#, "O'Brien <&> Søn")])
        .await
        .remove(0);
    let badge = get_badge(&app, &observer.name).await.unwrap();
    badges::parse(&badge.svg);
    assert!(
        badge.svg.contains("O&apos;Brien &lt;&amp;&gt; Søn"),
        "{}",
        badge.svg
    );
    assert!(badge.svg.contains("Zoë &quot;Jo&quot;"));
    assert_eq!(badges::scan(&badge.svg), badge.token);
    assert_eq!(verified(&badge.token, &key).family_name, "O'Brien <&> Søn");
}

// ---- the `badges` command ----

/// A folder under the temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        TempDir(TempFile::new(label, "d").path.clone())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run_badges(app: &TestApp, token: &str, election: &str, out: &Path) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_observer-registry"))
        .args(["badges", "--election", election, "--out"])
        .arg(out)
        .args([
            "--server",
            &format!("http://{}", app.addr),
            "--retries",
            "1",
        ])
        .env("OBSERVER_REGISTRY_TOKEN", token)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Agencies of every role, and the badge office: `reader` and `accreditor`.
const OFFICE: &str = "badge-office";

fn agencies_with_office() -> Agencies {
    let mut all: Vec<Agency> = agencies::STANDARD
        .iter()
        .map(|(name, roles)| Agency::with_token(name, roles))
        .collect();
    all.push(Agency::with_token(OFFICE, &["reader", "accreditor"]));
    Agencies::new("badges-command", all)
}

#[sqlx::test]
async fn the_badges_command_writes_a_card_per_accredited_observer_and_sheets_of_ten(pool: PgPool) {
    let agencies = agencies_with_office();
    let (options, key) = signing(None, agencies.options());
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    let admin = agencies.client(&app, agencies::ADMIN);
    let registrar = agencies.client(&app, agencies::REGISTRAR);
    let accreditor = agencies.client(&app, agencies::ACCREDITOR);
    create_kz_election_as(&admin).await;
    for i in 0..14 {
        let person = observer(
            &format!("Given{i}"),
            &format!("Family{i}"),
            "CN",
            "sco",
            &format!("D{i:07}"),
        );
        // Two stay pending: they have no badge.
        let accreditor = (i < 12).then_some(&accreditor);
        register_as(&registrar, accreditor, &format!("obs-{i:02}"), person).await;
    }
    let out = TempDir::new("badges");
    let folder = out.0.join("kz");

    let run = run_badges(&app, agencies.token(OFFICE), "kz-2023", &folder).await;

    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("wrote 12 badges of elections/kz-2023 and 2 A4 sheets"),
        "{}",
        run.stdout
    );
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<String> = (1..=12).map(|n| format!("KZ-2023-{n:06}.svg")).collect();
    expected.extend(["sheet-01.svg".to_owned(), "sheet-02.svg".to_owned()]);
    assert_eq!(files, expected);
    for file in &files[..12] {
        let svg = std::fs::read_to_string(folder.join(file)).unwrap();
        let badge = verified(&badges::scan(&svg), &key);
        assert_eq!(format!("{}.svg", badge.accreditation_number), *file);
    }
    // The second sheet: two cards, both scannable from the printed page (300 dpi).
    let sheet = std::fs::read_to_string(folder.join("sheet-02.svg")).unwrap();
    let mut scanned = badges::scan_all(&badges::render(&sheet, 2480));
    scanned.sort();
    let numbers: Vec<String> = scanned
        .iter()
        .map(|token| verified(token, &key).accreditation_number.clone())
        .collect();
    assert_eq!(numbers, ["KZ-2023-000011", "KZ-2023-000012"]);
}

#[sqlx::test]
async fn the_badges_command_says_why_it_cannot_write_them(pool: PgPool) {
    let agencies = agencies_with_office();
    let (options, _) = signing(None, agencies.options());
    let app = spawn_app_with_options(pool.clone(), pool.clone(), options).await;
    create_kz_election_as(&agencies.client(&app, agencies::ADMIN)).await;
    let out = TempDir::new("badges-refused");

    let unknown = run_badges(&app, agencies.token(OFFICE), "nowhere", &out.0).await;
    assert_eq!(unknown.code, Some(2));
    assert!(unknown.stderr.contains("NOT_FOUND"), "{}", unknown.stderr);

    let accreditor_only = run_badges(&app, agencies.token(agencies::ACCREDITOR), KZ, &out.0).await;
    assert_eq!(accreditor_only.code, Some(2));
    assert!(
        accreditor_only.stderr.contains("PERMISSION_DENIED")
            && accreditor_only.stderr.contains("reader"),
        "{}",
        accreditor_only.stderr
    );

    // A service without a signing key, once there is a badge to make.
    let registrar = agencies.client(&app, agencies::REGISTRAR);
    let accreditor = agencies.client(&app, agencies::ACCREDITOR);
    let li = observer("Li", "Wei", "CN", "sco", "D0000001");
    register_as(&registrar, Some(&accreditor), "li", li).await;
    let unsigned = spawn_app_with_options(pool.clone(), pool, agencies.options()).await;
    let no_key = run_badges(&unsigned, agencies.token(OFFICE), KZ, &out.0).await;
    assert_eq!(no_key.code, Some(2));
    assert!(
        no_key.stderr.contains("BADGE_SIGNING_DISABLED"),
        "{}",
        no_key.stderr
    );
    assert!(
        no_key.stderr.contains("--badge-signing-key"),
        "{}",
        no_key.stderr
    );
}

// ---- the picture for the docs ----

/// The badge of the Astana 2023 demo's first accredited observer (`src/cli/demo/story.rs`:
/// Bakhtiyor Hudoerzoda of Tajikistan's election commission), drawn and scanned; with
/// `WRITE_BADGE_PICTURE=docs/badge-example.png` it is also written there, 1000 pixels wide.
#[sqlx::test]
async fn the_demo_badge_looks_right_and_scans(pool: PgPool) {
    let (options, key) = signing(Some("https://verify.cec.example/v"), test_options());
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    // As the demo has them (the organization's kind does not show on a badge).
    let admin = client_without_retries(&app, None);
    let commission = "Central Commission on Election and Referendum of the Republic of Tajikistan";
    create_organization_as(&admin, "cec-tj", commission).await;
    create_open_kz_election_as(&admin, "Early parliamentary elections to the Majilis").await;
    let head = observer("Bakhtiyor", "Hudoerzoda", "TJ", "cec-tj", "TJ0000001");
    create_observer(&app, KZ, "obs-0001", head).await;
    accredit(&app, &name("obs-0001")).await.unwrap();

    let badge = get_badge(&app, &name("obs-0001")).await.unwrap();

    assert_eq!(badge.accreditation_number, "KZ-2023-000001");
    for shown in [
        "Early parliamentary",
        "Hudoerzoda",
        "Bakhtiyor",
        "Valid until 2023-04-17",
    ] {
        assert!(badge.svg.contains(shown), "{shown}");
    }
    let picture = badges::render(&badge.svg, 1000);
    let scanned = badges::scan_all(&picture);
    assert_eq!(scanned.len(), 1);
    assert_eq!(verified(&scanned[0], &key).family_name, "Hudoerzoda");
    if let Ok(path) = std::env::var("WRITE_BADGE_PICTURE") {
        picture.save_png(&path).unwrap();
    }
}
