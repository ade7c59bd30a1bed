//! The badge keys: the one the service signs with (`--badge-signing-key`) and the older ones
//! that printed badges still verify with (`--badge-verification-keys`), listed by
//! ListBadgeKeys. Private keys are PKCS#8 PEM, public keys SubjectPublicKeyInfo PEM.

use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::Context;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::client::badge::{self, BadgeClaims, BadgeError, BadgeKey, VerifiedBadge};
use crate::pb::v1 as pb;

/// The key badges are signed with.
pub struct BadgeSigner {
    key: SigningKey,
    public: BadgeKey,
}

impl std::fmt::Debug for BadgeSigner {
    // Never the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BadgeSigner")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl BadgeSigner {
    /// The signer of a PKCS#8 PEM private key.
    pub fn from_pkcs8_pem(pem: &str) -> anyhow::Result<BadgeSigner> {
        let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| {
            anyhow::anyhow!("not an Ed25519 private key in PKCS#8 PEM (\"BEGIN PRIVATE KEY\")")
        })?;
        Ok(BadgeSigner::new(key))
    }

    fn new(key: SigningKey) -> BadgeSigner {
        BadgeSigner {
            public: BadgeKey::new(key.verifying_key()),
            key,
        }
    }

    /// A new random key, from the operating system's generator.
    pub fn generate() -> anyhow::Result<BadgeSigner> {
        let mut secret = [0u8; 32];
        OsRng
            .try_fill_bytes(&mut secret)
            .context("the operating system gave no random bytes")?;
        Ok(BadgeSigner::new(SigningKey::from_bytes(&secret)))
    }

    /// The private key as PKCS#8 PEM, for the key file.
    pub fn to_pkcs8_pem(&self) -> anyhow::Result<String> {
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| anyhow::anyhow!("cannot encode the key as PKCS#8"))?;
        Ok(pem.as_str().to_owned())
    }

    /// The public half, with its key id.
    pub fn public(&self) -> &BadgeKey {
        &self.public
    }

    /// The token of `claims`, signed with this key.
    pub fn sign(&self, claims: &BadgeClaims) -> String {
        let input = badge::signing_input(claims, &self.public.key_id);
        badge::assemble(&input, &self.key.sign(input.as_bytes()))
    }
}

/// The signing key, when there is one, and every key badges verify with (the signing key
/// first).
#[derive(Debug, Default)]
pub struct BadgeKeyring {
    signer: Option<BadgeSigner>,
    keys: Vec<BadgeKey>,
    verified: VerifiedTokens,
}

/// Tokens whose signature verified, by the SHA-256 of the whole token: the same badge is
/// scanned again and again (at the door, at each polling station), and an Ed25519 check
/// costs more than the rest of a verification. Only authentic tokens enter, so forged ones
/// cannot fill it; the keys never change while it lives. Bounded: when full it starts over,
/// which costs one check per badge.
#[derive(Default)]
struct VerifiedTokens(Mutex<HashMap<[u8; 32], VerifiedBadge>>);

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifiedTokens")
    }
}

impl VerifiedTokens {
    /// About 600 bytes each: a few MiB at most.
    const CAPACITY: usize = 4096;

    fn get_or_verify(
        &self,
        token: &str,
        verify: impl FnOnce() -> Result<VerifiedBadge, BadgeError>,
    ) -> Result<VerifiedBadge, BadgeError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(badge) = self
            .0
            .lock()
            .ok()
            .and_then(|seen| seen.get(&digest).cloned())
        {
            return Ok(badge);
        }
        let badge = verify()?;
        if let Ok(mut seen) = self.0.lock() {
            if seen.len() >= Self::CAPACITY {
                seen.clear();
            }
            seen.insert(digest, badge.clone());
        }
        Ok(badge)
    }
}

impl BadgeKeyring {
    /// No keys: no badges are made, and none verify.
    pub fn none() -> BadgeKeyring {
        BadgeKeyring::default()
    }

    /// Signs with `signer` and verifies with it and `older`.
    pub fn new(signer: Option<BadgeSigner>, older: Vec<BadgeKey>) -> BadgeKeyring {
        let mut keys: Vec<BadgeKey> = signer.iter().map(|s| s.public.clone()).collect();
        for key in older {
            if !keys.iter().any(|known| known.key_id == key.key_id) {
                keys.push(key);
            }
        }
        BadgeKeyring {
            signer,
            keys,
            verified: VerifiedTokens::default(),
        }
    }

    /// The keys of the command line: the signing key file and the older keys' files (public
    /// keys, or old private key files, one or more per file).
    pub fn load(signing_key: Option<&Path>, older: &[PathBuf]) -> anyhow::Result<BadgeKeyring> {
        let signer = signing_key
            .map(|path| {
                let pem = read(path)?;
                BadgeSigner::from_pkcs8_pem(&pem)
                    .with_context(|| format!("badge signing key {}", path.display()))
            })
            .transpose()?;
        let mut keys = Vec::new();
        for path in older {
            let pem = read(path)?;
            keys.extend(
                public_keys_in(&pem)
                    .with_context(|| format!("badge verification keys {}", path.display()))?,
            );
        }
        Ok(BadgeKeyring::new(signer, keys))
    }

    /// The key new badges are signed with.
    pub fn signer(&self) -> Option<&BadgeSigner> {
        self.signer.as_ref()
    }

    /// Every key badges verify with, as ListBadgeKeys lists them.
    pub fn list(&self) -> Vec<pb::BadgeKey> {
        let signing = self.signer.as_ref().map(|s| s.public.key_id.as_str());
        self.keys
            .iter()
            .map(|key| pb::BadgeKey {
                key_id: key.key_id.clone(),
                algorithm: badge::ALGORITHM.to_owned(),
                public_key_pem: key.public_key_pem(),
                signing: signing == Some(key.key_id.as_str()),
            })
            .collect()
    }

    /// The keys to verify with.
    pub fn keys(&self) -> &[BadgeKey] {
        &self.keys
    }

    /// Checks a token's signature (not its expiry) against every known key.
    pub fn verify_signature(&self, token: &str) -> Result<VerifiedBadge, BadgeError> {
        let token = badge::token_in(token);
        self.verified
            .get_or_verify(token, || badge::verify_signature(token, &self.keys))
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The public keys in a PEM file: "PUBLIC KEY" blocks, or "PRIVATE KEY" blocks whose public
/// half is taken (so an old key file can simply be listed after a rotation).
fn public_keys_in(pem: &str) -> anyhow::Result<Vec<BadgeKey>> {
    let mut keys = Vec::new();
    for block in badge::pem_blocks(pem, "PRIVATE KEY")? {
        keys.push(BadgeSigner::from_pkcs8_pem(block)?.public);
    }
    if pem.contains("-----BEGIN PUBLIC KEY-----") {
        keys.extend(badge::keys_from_pem(pem)?);
    }
    anyhow::ensure!(
        !keys.is_empty(),
        "no Ed25519 key in PEM (\"BEGIN PUBLIC KEY\" or \"BEGIN PRIVATE KEY\")"
    );
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> BadgeClaims {
        BadgeClaims {
            accreditation_number: "KZ-2023-000001".into(),
            election: "elections/kz-2023".into(),
            given_name: "Eoghan".into(),
            family_name: "Murphy".into(),
            citizenship: "IE".into(),
            organization_display_name: "OSCE/ODIHR".into(),
            expire_unix_seconds: 4_000_000_000,
        }
    }

    #[test]
    fn a_generated_key_round_trips_through_its_pem_file_and_signs_what_it_verifies() {
        let signer = BadgeSigner::generate().unwrap();
        let pem = signer.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let loaded = BadgeSigner::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(loaded.public(), signer.public());
        let keyring = BadgeKeyring::new(Some(loaded), Vec::new());
        let token = signer.sign(&claims());
        assert_eq!(keyring.verify_signature(&token).unwrap().claims, claims());
    }

    #[test]
    fn after_a_rotation_old_badges_verify_and_only_the_new_key_signs() {
        let (old, new) = (
            BadgeSigner::generate().unwrap(),
            BadgeSigner::generate().unwrap(),
        );
        let old_token = old.sign(&claims());
        // The old private key file listed as it is.
        let older = public_keys_in(&old.to_pkcs8_pem().unwrap()).unwrap();
        let keyring = BadgeKeyring::new(Some(new), older);
        assert!(keyring.verify_signature(&old_token).is_ok());
        let listed = keyring.list();
        assert_eq!(listed.len(), 2);
        assert!(listed[0].signing && !listed[1].signing);
        assert_eq!(listed[1].key_id, old.public().key_id);
        // Listing the signing key again among the old ones does not list it twice.
        let again = BadgeKeyring::new(
            BadgeSigner::from_pkcs8_pem(&old.to_pkcs8_pem().unwrap()).ok(),
            vec![old.public().clone()],
        );
        assert_eq!(again.list().len(), 1);
    }

    #[test]
    fn a_token_verified_once_is_remembered_and_a_changed_one_is_still_checked() {
        let signer = BadgeSigner::generate().unwrap();
        let token = signer.sign(&claims());
        let keyring = BadgeKeyring::new(Some(signer), Vec::new());
        for _ in 0..2 {
            assert_eq!(keyring.verify_signature(&token).unwrap().claims, claims());
        }
        let claims_start = token.find('.').unwrap() + 1;
        let mut tampered = token.clone().into_bytes();
        tampered[claims_start + 3] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(keyring.verify_signature(&tampered).is_err());
        // A URL with the token after '#' is the same badge.
        let url = format!("https://verify.cec.example/v#{token}");
        assert!(keyring.verify_signature(&url).is_ok());
    }

    #[test]
    fn a_file_without_keys_is_refused() {
        assert!(public_keys_in("hello").is_err());
        assert!(
            BadgeSigner::from_pkcs8_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            )
            .is_err()
        );
    }
}
