//! A border post's check of a badge: fetch the published keys once (ListBadgeKeys needs no
//! credentials), then verify what the QR code holds offline, with no call per badge.
//!
//! Against a local service that signs badges (`--badge-signing-key`), with a token from
//! `observer-registry badges` or GetObserverBadge:
//!
//! ```sh
//! cargo run -p observer-registry-client --example verify_badge \
//!     -- http://127.0.0.1:50051 'https://verify.cec.example/v#eyJhbGciOi…'
//! ```

use observer_registry_client::badge::{BadgeError, verify_badge};
use observer_registry_client::pb::v1::ListBadgeKeysRequest;
use observer_registry_client::{Client, ClientOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    let scanned = args.next().ok_or("give the token or verification URL")?;
    let client = Client::connect(server, ClientOptions::default()).await?;

    // Keep these (e.g. in a file) and refresh them now and then: a badge signed with a key
    // newer than the copy is UnknownKey until then.
    let keys = client
        .verification()
        .list_badge_keys(ListBadgeKeysRequest {})
        .await?
        .into_inner()
        .keys;

    // The token's part after `#` is taken when a verification URL is given.
    match verify_badge(&scanned, &keys) {
        Ok(badge) => println!(
            "VALID {} {} {} ({}), expires at unix time {}",
            badge.accreditation_number,
            badge.given_name,
            badge.family_name,
            badge.organization_display_name,
            badge.expire_unix_seconds
        ),
        Err(BadgeError::Expired(badge)) => {
            println!("EXPIRED {}", badge.accreditation_number)
        }
        Err(BadgeError::UnknownKey(key_id)) => {
            println!("UNKNOWN_KEY {key_id}: fetch ListBadgeKeys again, or not ours")
        }
        Err(error) => println!("NOT AUTHENTIC: {error}"),
    }
    // Offline says nothing of revocation: VerifyAccreditation (role `verifier`) does.
    Ok(())
}
