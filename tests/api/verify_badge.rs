//! `observer-registry verify-badge` through the real binary: badges signed with a key that
//! the real `badge-key` command made, verified offline against the public key it printed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use observer_registry::badge::BadgeSigner;
use observer_registry::client::badge::BadgeClaims;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// A temporary folder with a key made by `badge-key`: `key.pem` (private) and `public.pem`
/// (what the command printed).
struct Keys {
    dir: PathBuf,
    signer: BadgeSigner,
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Keys {
    async fn made_by_badge_key() -> Keys {
        let dir = std::env::temp_dir().join(format!("verify-badge-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let private = dir.join("key.pem");
        let output = command(&["badge-key", "--out", private.to_str().unwrap()])
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        std::fs::write(dir.join("public.pem"), &output.stdout).unwrap();
        let signer =
            BadgeSigner::from_pkcs8_pem(&std::fs::read_to_string(&private).unwrap()).unwrap();
        Keys { dir, signer }
    }

    fn public(&self) -> PathBuf {
        self.dir.join("public.pem")
    }

    /// The badge of KZ-2023-000001, expiring `expires_in` from now (negative: ago).
    fn badge(&self, expires_in: i64) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        self.signer.sign(&BadgeClaims {
            accreditation_number: "KZ-2023-000001".into(),
            election: "elections/kz-2023".into(),
            given_name: "Bakhtiyor".into(),
            family_name: "Hudoerzoda".into(),
            citizenship: "TJ".into(),
            organization_display_name: "CCER of Tajikistan".into(),
            expire_unix_seconds: now.as_secs() as i64 + expires_in,
        })
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_observer-registry"));
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("OBSERVER_REGISTRY_SERVER")
        .env_remove("OBSERVER_REGISTRY_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// What `verify-badge` said: its exit code, stdout and stderr.
struct Said {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Said {
    #[track_caller]
    fn exited(&self, code: i32) {
        assert_eq!(self.code, Some(code), "{}{}", self.stdout, self.stderr);
    }
}

/// `badge` with one character in the middle of its claims changed: another name, number or
/// expiry.
fn tampered(badge: &str) -> String {
    let (header, rest) = badge.split_once('.').unwrap();
    let claims = rest.split_once('.').unwrap().0;
    let at = header.len() + 1 + claims.len() / 2;
    let mut bytes = badge.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

async fn verify_badge(token: &str, keys: Option<&Path>, extra: &[&str], stdin: &str) -> Said {
    let mut args = vec!["verify-badge", token];
    if let Some(keys) = keys {
        args.extend(["--keys", keys.to_str().unwrap()]);
    }
    args.extend(extra);
    let mut child = command(&args).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    Said {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_badge_verifies_offline_against_the_key_badge_key_printed() {
    let keys = Keys::made_by_badge_key().await;
    let badge = keys.badge(30 * 86_400);

    let said = verify_badge(&badge, Some(&keys.public()), &[], "").await;
    said.exited(0);
    let first = said.stdout.lines().next().unwrap();
    assert!(first.starts_with("VALID (offline"), "{}", said.stdout);
    for shown in [
        "KZ-2023-000001",
        "Bakhtiyor Hudoerzoda",
        "CCER of Tajikistan",
        "elections/kz-2023",
        &keys.signer.public().key_id,
    ] {
        assert!(said.stdout.contains(shown), "{shown}: {}", said.stdout);
    }

    // As JSON, with the expiry in UTC.
    let said = verify_badge(&badge, Some(&keys.public()), &["--json"], "").await;
    said.exited(0);
    let check: serde_json::Value = serde_json::from_str(&said.stdout).unwrap();
    assert_eq!(check["verdict"], "VALID");
    assert_eq!(check["online"], false);
    assert_eq!(check["accreditation_number"], "KZ-2023-000001");
    assert_eq!(check["family_name"], "Hudoerzoda");
    assert_eq!(check["organization_display_name"], "CCER of Tajikistan");
    assert!(check["expire_time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_verification_url_and_a_token_on_stdin_verify_as_the_token() {
    let keys = Keys::made_by_badge_key().await;
    let badge = keys.badge(86_400);

    let url = format!("https://verify.cec.example/v#{badge}");
    let said = verify_badge(&url, Some(&keys.public()), &[], "").await;
    said.exited(0);

    for stdin in [format!("{badge}\n"), format!("{url}\n")] {
        let said = verify_badge("-", Some(&keys.public()), &[], &stdin).await;
        said.exited(0);
        assert!(said.stdout.contains("KZ-2023-000001"), "{}", said.stdout);
    }
}

#[tokio::test]
async fn an_expired_badge_is_expired_and_not_valid() {
    let keys = Keys::made_by_badge_key().await;
    let said = verify_badge(&keys.badge(-60), Some(&keys.public()), &[], "").await;
    said.exited(1);
    assert!(said.stdout.starts_with("EXPIRED"), "{}", said.stdout);
    // Still authentic, so what it says is shown.
    assert!(
        said.stdout.contains("Bakhtiyor Hudoerzoda"),
        "{}",
        said.stdout
    );
}

#[tokio::test]
async fn a_badge_changed_in_one_byte_is_not_valid() {
    let keys = Keys::made_by_badge_key().await;
    let tampered = tampered(&keys.badge(86_400));
    let said = verify_badge(&tampered, Some(&keys.public()), &["--json"], "").await;
    said.exited(1);
    let check: serde_json::Value = serde_json::from_str(&said.stdout).unwrap();
    assert_eq!(check["verdict"], "BAD_SIGNATURE");
    // Nothing of a forged badge is repeated as if it were true.
    assert!(check.get("family_name").is_none(), "{check}");
}

#[tokio::test]
async fn a_badge_of_another_key_is_signed_with_an_unknown_key() {
    let keys = Keys::made_by_badge_key().await;
    let other = Keys::made_by_badge_key().await;
    let said = verify_badge(&keys.badge(86_400), Some(&other.public()), &[], "").await;
    said.exited(1);
    assert!(said.stdout.starts_with("UNKNOWN_KEY"), "{}", said.stdout);
    assert!(
        said.stdout.contains(&keys.signer.public().key_id),
        "{}",
        said.stdout
    );
}

#[tokio::test]
async fn nothing_checked_is_exit_code_2() {
    let keys = Keys::made_by_badge_key().await;
    let badge = keys.badge(86_400);

    // A keys file without a public key (the private key file, by mistake).
    let said = verify_badge(&badge, Some(&keys.dir.join("key.pem")), &[], "").await;
    said.exited(2);
    assert!(said.stdout.is_empty());
    assert!(said.stderr.contains("key.pem"), "{}", said.stderr);

    let said = verify_badge(&badge, Some(&keys.dir.join("missing.pem")), &[], "").await;
    said.exited(2);

    let said = verify_badge("-", Some(&keys.public()), &[], "  \n").await;
    said.exited(2);

    // Online (no --keys) with no service listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let said = verify_badge(&badge, None, &["--server", &server, "--retries", "1"], "").await;
    said.exited(2);
    assert!(said.stderr.contains("cannot connect"), "{}", said.stderr);
}

/// Online: VerifyAccreditation at a server that signs with the key `badge-key` made; the
/// record's state counts, so a revoked accreditation is REVOKED though its badge verifies offline.
#[sqlx::test]
async fn online_a_badge_is_valid_until_its_accreditation_is_revoked(pool: sqlx::PgPool) {
    use crate::common::registry::*;
    use crate::common::*;
    use observer_registry::badge::{BadgeKeyring, Badges, VerifyLimits};
    use observer_registry::pb::v1 as pb;
    use std::sync::Arc;

    let keys = Keys::made_by_badge_key().await;
    let mut options = test_options();
    options.badges = Arc::new(Badges {
        keyring: BadgeKeyring::load(Some(&keys.dir.join("key.pem")), &[]).unwrap(),
        verify_url: None,
        limits: VerifyLimits::default(),
        trusted_proxies: Default::default(),
    });
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    let election = open_election(&app, "kz-2023").await;
    // Badges of 2023 valid until 2033, so that the check is about the record.
    app.elections()
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                badge_validity_days: 3650,
                ..election.clone()
            }),
            update_mask: mask(&["badge_validity_days"]),
        })
        .await
        .unwrap();
    let registered = observer("Bakhtiyor", "Hudoerzoda", "TJ", "cec-tj", "TJ1234567");
    let registered = create_observer(&app, &election.name, "obs-1", registered).await;
    let accredited = accredit(&app, &registered.name).await.unwrap();
    let badge = keys.signer.sign(&BadgeClaims {
        accreditation_number: number(&accredited).to_owned(),
        election: election.name.clone(),
        given_name: "Bakhtiyor".into(),
        family_name: "Hudoerzoda".into(),
        citizenship: "TJ".into(),
        organization_display_name: "Central Commission on Election and Referendum".into(),
        // 2023-03-19 + 3650 days.
        expire_unix_seconds: 1_679_184_000 + 3650 * 86_400,
    });
    let server = format!("http://{}", app.addr);

    let said = verify_badge(&badge, None, &["--server", &server, "--json"], "").await;
    said.exited(0);
    let check: serde_json::Value = serde_json::from_str(&said.stdout).unwrap();
    assert_eq!(check["verdict"], "VALID");
    assert_eq!(check["online"], true);
    assert_eq!(check["accreditation_number"], number(&accredited));
    assert_eq!(check["family_name"], "Hudoerzoda");

    revoke(&app, &accredited.name, "left the country")
        .await
        .unwrap();
    let said = verify_badge(&badge, None, &["--server", &server], "").await;
    said.exited(1);
    assert!(
        said.stdout.starts_with("REVOKED (online"),
        "{}",
        said.stdout
    );
    // Offline it still verifies: only the signature and expiry are checked there.
    verify_badge(&badge, Some(&keys.public()), &[], "")
        .await
        .exited(0);

    let said = verify_badge(&tampered(&badge), None, &["--server", &server], "").await;
    said.exited(1);
    assert!(said.stdout.starts_with("BAD_SIGNATURE"), "{}", said.stdout);
}
