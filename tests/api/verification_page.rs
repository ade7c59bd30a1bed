//! The verification page a badge's QR code opens, in a real browser (headless Chromium from
//! Debian's packages): it checks the signature on the device with WebCrypto Ed25519, asks
//! the registry for the current state, and says which of the two it could do.

use crate::common::registry;
use crate::verification::*;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use observer_registry::badge::BadgeSigner;
use observer_registry::pb::v1 as pb;
use registry::*;
use sqlx::PgPool;

const CHROMIUM: &str = "/usr/bin/chromium";

/// What the page showed: `data-verdict`, `data-mode` and the whole DOM, for messages.
struct Shown {
    verdict: String,
    mode: String,
    dom: String,
}

/// The value of attribute `name` of the page's `<main>`.
fn main_attribute(dom: &str, name: &str) -> String {
    let main = dom
        .find("<main")
        .map(|start| &dom[start..])
        .and_then(|main| main.split_once('>').map(|(tag, _)| tag))
        .unwrap_or_default();
    main.split_once(&format!("{name}=\""))
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(value, _)| value.to_owned())
        .unwrap_or_default()
}

/// Opens `http://{addr}{path}` in headless Chromium, lets its scripts and fetches run, and
/// reads the verdict from the DOM it ends with. 127.0.0.1 is a secure context, as HTTPS is.
async fn browse(addr: SocketAddr, path: &str) -> Shown {
    browse_as(&addr.ip().to_string(), addr, path).await
}

/// The same under the name `host`, resolved to `addr`: a name other than localhost over
/// plain HTTP is not a secure context, and such a page has no WebCrypto, as on a phone
/// whose browser lacks Ed25519.
async fn browse_as(host: &str, addr: SocketAddr, path: &str) -> Shown {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the page's tests need Debian's Chromium \
         (as root: DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)"
    );
    let profile = tempdir();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                // Virtual time runs ahead only while nothing is loading, so every fetch of
                // the page has finished when the DOM is dumped.
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--host-resolver-rules=MAP {host} {}", addr.ip()))
            .arg("--dump-dom")
            .arg(format!("http://{host}:{}{path}", addr.port()))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("Chromium took over a minute")
    .expect("Chromium did not start");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && dom.contains("<main"),
        "Chromium failed ({}): {}\n{dom}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Shown {
        verdict: main_attribute(&dom, "data-verdict"),
        mode: main_attribute(&dom, "data-mode"),
        dom,
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("verify-page-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[track_caller]
fn assert_shown(shown: &Shown, verdict: &str, mode: &str) {
    assert_eq!(
        (shown.verdict.as_str(), shown.mode.as_str()),
        (verdict, mode),
        "{}",
        shown.dom
    );
}

/// A badge's expiry that the phone's own clock has not reached.
fn far_future() -> DateTime<Utc> {
    at("2035-01-01T00:00:00Z")
}

#[sqlx::test]
async fn verification_page_in_a_browser_says_valid_revoked_not_authentic_and_offline(pool: PgPool) {
    let Fixture {
        app,
        observer,
        token,
        signer_key,
        ..
    } = fixture_with_badge_until(pool, far_future()).await;
    let http = app.serve_http(true).await;
    // The same routes whose registry cannot answer (the database is out of reach).
    let cut_off = app.serve_http(false).await;
    let page = |token: &str| format!("/v#{token}");

    // As a phone meets it: the URL in the printed badge's QR code.
    let badge = app
        .observers()
        .get_observer_badge(pb::GetObserverBadgeRequest {
            name: observer.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let scanned = crate::common::badges::scan(&badge.svg);
    let from_qr = scanned
        .strip_prefix("http://verify.test")
        .unwrap_or_else(|| panic!("the QR code holds {scanned}"))
        .to_owned();
    assert_eq!(from_qr, page(&badge.token));
    let scanned_valid = browse(http, &from_qr).await;
    assert_shown(&scanned_valid, "VALID", "online");
    assert!(scanned_valid.dom.contains("Eoghan Murphy"));
    let scanned_tampered = browse(http, &page(&tampered(&badge.token))).await;
    assert_shown(&scanned_tampered, "BAD_SIGNATURE", "online");

    let valid = browse(http, &page(&token)).await;
    assert_shown(&valid, "VALID", "online");
    assert!(valid.dom.contains("Eoghan Murphy") && valid.dom.contains(SCO));
    assert!(valid.dom.contains(number(&observer)));
    assert!(valid.dom.contains("Signature checked on this device"));

    let offline = browse(cut_off, &page(&token)).await;
    assert_shown(&offline, "VALID", "offline");
    assert!(offline.dom.contains("OFFLINE ONLY"));
    assert!(offline.dom.contains("Eoghan Murphy"));

    // The phone's own clock judges the badge's expiry when the registry cannot.
    let signer = BadgeSigner::from_pkcs8_pem(&signer_key).unwrap();
    let expired = signer.sign(&claims_of(&observer, at("2024-01-01T00:00:00Z")));
    assert_shown(
        &browse(cut_off, &page(&expired)).await,
        "EXPIRED",
        "offline",
    );

    // A forgery needs no database to be refused: the registry answers even while cut off.
    for addr in [http, cut_off] {
        let forged = browse(addr, &page(&tampered(&token))).await;
        assert_shown(&forged, "BAD_SIGNATURE", "online");
        assert!(!forged.dom.contains("Eoghan"));
    }

    let insecure = browse_as("verify.test", http, &page(&token)).await;
    assert_shown(&insecure, "VALID", "online");
    assert!(insecure.dom.contains("could not be checked on this device"));
    // Neither check possible: the page says so rather than guess.
    let unchecked = browse_as("verify.test", cut_off, &page(&token)).await;
    assert_shown(&unchecked, "UNCHECKED", "none");
    assert!(!unchecked.dom.contains("Eoghan"));

    assert_shown(&browse(http, "/v").await, "MISSING", "none");
    assert_shown(
        &browse(http, "/v#%%garbled").await,
        "BAD_SIGNATURE",
        "online",
    );

    revoke(&app, &observer.name, "Left the mission")
        .await
        .unwrap();
    let revoked = browse(http, &page(&token)).await;
    assert_shown(&revoked, "REVOKED", "online");
    assert_shown(&browse(http, &from_qr).await, "REVOKED", "online");
}
