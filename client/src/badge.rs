//! Badges verified offline: the token a badge's QR code carries, and its check against the
//! published keys (VerificationService.ListBadgeKeys, or a PEM file of them).
//!
//! A token is a JWS in compact form (RFC 7515) with the algorithm EdDSA over Ed25519
//! (RFC 8037): `{header}.{claims}.{signature}`, each base64url without padding. The header
//! is `{"alg":"EdDSA","kid":KEY_ID}`; the claims are short-keyed JSON (see [`BadgeClaims`]) to
//! keep the QR code small enough to scan from a card.
//!
//! The keys come from [`Client::verification`](crate::Client::verification)`.list_badge_keys`
//! (fetch them once and keep them; a badge signed with a newer key is
//! [`BadgeError::UnknownKey`] until they are fetched again) or from a PEM file with
//! [`keys_from_pem`]. Offline says whether a badge is authentic and unexpired, not whether
//! its accreditation was revoked since: VerifyAccreditation says that.
//!
//! ```
//! # fn example(token: &str, keys: &[observer_registry_client::pb::v1::BadgeKey]) {
//! use observer_registry_client::badge::{verify_badge, BadgeError};
//!
//! match verify_badge(token, keys) {
//!     Ok(badge) => println!("VALID: {} {}", badge.given_name, badge.family_name),
//!     Err(BadgeError::Expired(badge)) => println!("EXPIRED: {}", badge.accreditation_number),
//!     Err(error) => println!("not authentic: {error}"),
//! }
//! # }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pb::v1 as pb;

/// The only algorithm badges are signed with, as ListBadgeKeys names it.
pub const ALGORITHM: &str = "Ed25519";

/// The JWS `alg` of a badge token.
const JWS_ALGORITHM: &str = "EdDSA";

/// What a badge says, as signed. Names and organization are as recorded when the badge was
/// made; VerifyAccreditation returns the record's current ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadgeClaims {
    /// The accreditation number, e.g. `KZ-2023-000001`.
    #[serde(rename = "n")]
    pub accreditation_number: String,
    /// The election, `elections/{election}`.
    #[serde(rename = "e")]
    pub election: String,
    /// Given name(s).
    #[serde(rename = "g")]
    pub given_name: String,
    /// Family name.
    #[serde(rename = "f")]
    pub family_name: String,
    /// Citizenship, ISO 3166-1 alpha-2.
    #[serde(rename = "c")]
    pub citizenship: String,
    /// The sending organization's display name.
    #[serde(rename = "o")]
    pub organization_display_name: String,
    /// Expiry, seconds since the Unix epoch (the JWT `exp`).
    #[serde(rename = "exp")]
    pub expire_unix_seconds: i64,
}

impl BadgeClaims {
    /// When the badge expires.
    pub fn expire_time(&self) -> SystemTime {
        let seconds = self.expire_unix_seconds.max(0).unsigned_abs();
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// Whether the badge has expired at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.expire_time()
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
}

/// A badge whose signature verified, with the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBadge {
    /// What the badge says.
    pub claims: BadgeClaims,
    /// The id of the key that signed it.
    pub key_id: String,
}

impl std::ops::Deref for VerifiedBadge {
    type Target = BadgeClaims;

    fn deref(&self) -> &BadgeClaims {
        &self.claims
    }
}

/// Why a badge is not valid offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadgeError {
    /// Not a badge token: wrong shape, encoding or algorithm.
    Malformed,
    /// Signed with a key that is not among the keys given (another issuer, or a key newer
    /// than the keys file: fetch ListBadgeKeys again).
    UnknownKey(String),
    /// The signature does not match: the token was altered or forged.
    BadSignature,
    /// Authentic, but past its expiry.
    Expired(Box<VerifiedBadge>),
}

impl fmt::Display for BadgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadgeError::Malformed => f.write_str("not a badge token"),
            BadgeError::UnknownKey(key_id) => write!(f, "signed with an unknown key {key_id:?}"),
            BadgeError::BadSignature => f.write_str("the signature does not verify"),
            BadgeError::Expired(badge) => write!(
                f,
                "badge {} expired (unix time {})",
                badge.accreditation_number, badge.expire_unix_seconds
            ),
        }
    }
}

impl std::error::Error for BadgeError {}

/// A public key badges verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeKey {
    /// The key id a token names, see [`key_id`].
    pub key_id: String,
    /// The Ed25519 public key.
    pub key: VerifyingKey,
}

impl BadgeKey {
    /// The key from its PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
    pub fn from_public_key_pem(pem: &str) -> Result<BadgeKey, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| KeyError)?;
        Ok(BadgeKey::new(key))
    }

    /// The key with its derived id.
    pub fn new(key: VerifyingKey) -> BadgeKey {
        BadgeKey {
            key_id: key_id(&key),
            key,
        }
    }

    /// The key as a PEM "PUBLIC KEY".
    pub fn public_key_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }
}

/// A PEM that does not hold an Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError;

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an Ed25519 public key in PEM (\"BEGIN PUBLIC KEY\")")
    }
}

impl std::error::Error for KeyError {}

/// The id of a public key: the first 8 bytes of the SHA-256 of its 32 raw bytes, base64url
/// without padding (11 characters). Derived, so a keys file needs nothing but the PEMs.
pub fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..8])
}

/// Every public key in `pem_text` (one or more "PUBLIC KEY" blocks, as `observer-registry
/// badge-key` writes them and ListBadgeKeys returns them).
pub fn keys_from_pem(pem_text: &str) -> Result<Vec<BadgeKey>, KeyError> {
    let keys = pem_blocks(pem_text, "PUBLIC KEY")?
        .into_iter()
        .map(BadgeKey::from_public_key_pem)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(KeyError);
    }
    Ok(keys)
}

/// Every PEM block labelled `label` (e.g. `PUBLIC KEY`) in `pem_text`, BEGIN to END line,
/// in order; a block without its END line is an error.
pub fn pem_blocks<'a>(pem_text: &'a str, label: &str) -> Result<Vec<&'a str>, KeyError> {
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let mut blocks = Vec::new();
    let mut rest = pem_text;
    while let Some(start) = rest.find(&begin) {
        let stop = rest[start..].find(&end).ok_or(KeyError)? + start + end.len();
        blocks.push(&rest[start..stop]);
        rest = &rest[stop..];
    }
    Ok(blocks)
}

/// The keys of a ListBadgeKeys response; keys of another algorithm or that do not parse are
/// left out (they cannot have signed a badge this client can check).
pub fn keys_from_list(keys: &[pb::BadgeKey]) -> Vec<BadgeKey> {
    keys.iter()
        .filter(|key| key.algorithm == ALGORITHM)
        .filter_map(|key| BadgeKey::from_public_key_pem(&key.public_key_pem).ok())
        .collect()
}

/// The token in what a QR code holds: the bare token, or a verification URL with the token
/// after `#` (`https://verify.cec.example/v#TOKEN`).
pub fn token_in(scanned: &str) -> &str {
    let scanned = scanned.trim();
    match scanned.rsplit_once('#') {
        Some((_, token)) => token,
        None => scanned,
    }
}

/// The part of a token that is signed, `{header}.{claims}`; the signer appends
/// `.{signature}` with [`assemble`].
pub fn signing_input(claims: &BadgeClaims, key_id: &str) -> String {
    let header = Header {
        alg: JWS_ALGORITHM.to_owned(),
        kid: key_id.to_owned(),
    };
    // Serializing these plain structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(claims).unwrap_or_default();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// The token from its signing input and the 64-byte Ed25519 signature of it.
pub fn assemble(signing_input: &str, signature: &Signature) -> String {
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

/// Checks a badge's signature against `keys` and its expiry at `now`, with nothing but the
/// token: no network. `scanned` may be a verification URL; its token is after `#`.
pub fn verify_badge_at(
    scanned: &str,
    keys: &[BadgeKey],
    now: SystemTime,
) -> Result<VerifiedBadge, BadgeError> {
    let badge = verify_signature(scanned, keys)?;
    if badge.claims.is_expired_at(now) {
        return Err(BadgeError::Expired(Box::new(badge)));
    }
    Ok(badge)
}

/// Checks a badge offline, now, against the keys of a ListBadgeKeys response.
pub fn verify_badge(scanned: &str, keys: &[pb::BadgeKey]) -> Result<VerifiedBadge, BadgeError> {
    verify_badge_at(scanned, &keys_from_list(keys), SystemTime::now())
}

/// Checks a token's signature only, whatever its expiry.
pub fn verify_signature(scanned: &str, keys: &[BadgeKey]) -> Result<VerifiedBadge, BadgeError> {
    let token = token_in(scanned);
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadgeError::Malformed);
    };
    let header: Header = decode_json(header)?;
    if header.alg != JWS_ALGORITHM {
        return Err(BadgeError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or(BadgeError::Malformed)?;
    let key = keys
        .iter()
        .find(|key| key.key_id == header.kid)
        .ok_or_else(|| BadgeError::UnknownKey(header.kid.clone()))?;
    let signed = &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
    key.key
        .verify_strict(signed.as_bytes(), &signature)
        .map_err(|_| BadgeError::BadSignature)?;
    // Only now, once authentic, are the claims read.
    let claims: BadgeClaims = decode_json(claims)?;
    Ok(VerifiedBadge {
        claims,
        key_id: header.kid,
    })
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, BadgeError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| BadgeError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| BadgeError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn claims() -> BadgeClaims {
        BadgeClaims {
            accreditation_number: "KZ-2023-000001".into(),
            election: "elections/kz-2023".into(),
            given_name: "Eoghan".into(),
            family_name: "Murphy".into(),
            citizenship: "IE".into(),
            organization_display_name: "OSCE/ODIHR".into(),
            expire_unix_seconds: 1_681_776_000,
        }
    }

    fn signed(key: &SigningKey, claims: &BadgeClaims) -> String {
        let input = signing_input(claims, &key_id(&key.verifying_key()));
        assemble(&input, &key.sign(input.as_bytes()))
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_signed_token_verifies_with_its_key_and_says_what_was_signed() {
        let token = signed(&key(1), &claims());
        let keys = [BadgeKey::new(key(1).verifying_key())];
        let badge = verify_badge_at(&token, &keys, UNIX_EPOCH).unwrap();
        assert_eq!(badge.claims, claims());
        assert_eq!(badge.key_id, keys[0].key_id);
    }

    #[test]
    fn a_verification_url_verifies_as_its_token() {
        let token = signed(&key(1), &claims());
        let keys = [BadgeKey::new(key(1).verifying_key())];
        let url = format!("https://verify.cec.example/v#{token}");
        assert!(verify_badge_at(&url, &keys, UNIX_EPOCH).is_ok());
    }

    #[test]
    fn any_changed_byte_is_a_bad_signature_or_malformed() {
        let token = signed(&key(1), &claims());
        let keys = [BadgeKey::new(key(1).verifying_key())];
        let claims_start = token.find('.').unwrap() + 1;
        for index in claims_start..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered == token {
                continue;
            }
            let result = verify_badge_at(&tampered, &keys, UNIX_EPOCH);
            assert!(
                matches!(
                    result,
                    Err(BadgeError::BadSignature | BadgeError::Malformed)
                ),
                "byte {index}: {result:?}"
            );
        }
    }

    #[test]
    fn another_key_with_the_same_id_does_not_verify_and_an_unknown_id_is_named() {
        let token = signed(&key(1), &claims());
        let impostor = BadgeKey {
            key_id: key_id(&key(1).verifying_key()),
            key: key(2).verifying_key(),
        };
        assert_eq!(
            verify_badge_at(&token, &[impostor], UNIX_EPOCH),
            Err(BadgeError::BadSignature)
        );
        let other = [BadgeKey::new(key(2).verifying_key())];
        assert!(matches!(
            verify_badge_at(&token, &other, UNIX_EPOCH),
            Err(BadgeError::UnknownKey(_))
        ));
    }

    #[test]
    fn an_authentic_badge_past_its_expiry_is_expired_with_its_claims() {
        let token = signed(&key(1), &claims());
        let keys = [BadgeKey::new(key(1).verifying_key())];
        let at_expiry = UNIX_EPOCH + Duration::from_secs(1_681_776_000);
        match verify_badge_at(&token, &keys, at_expiry) {
            Err(BadgeError::Expired(badge)) => assert_eq!(badge.claims, claims()),
            other => panic!("{other:?}"),
        }
        assert!(verify_badge_at(&token, &keys, at_expiry - Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn keys_round_trip_through_pem_and_a_file_may_hold_several() {
        let first = BadgeKey::new(key(1).verifying_key());
        let second = BadgeKey::new(key(2).verifying_key());
        let file = format!("{}\n{}", first.public_key_pem(), second.public_key_pem());
        assert_eq!(keys_from_pem(&file).unwrap(), vec![first, second]);
        assert_eq!(keys_from_pem("no keys here"), Err(KeyError));
    }

    #[test]
    fn malformed_tokens_are_malformed() {
        let keys = [BadgeKey::new(key(1).verifying_key())];
        for token in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.AAAA"] {
            assert_eq!(
                verify_badge_at(token, &keys, UNIX_EPOCH).map(|_| ()),
                Err(BadgeError::Malformed),
                "{token}"
            );
        }
    }
}
