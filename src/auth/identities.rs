//! The agencies file: who the partner agencies are, their roles and their credentials.
//! Tokens are stored only as SHA-256 hashes and compared in constant time.
//!
//! ```toml
//! [[agencies]]
//! name = "border-service"
//! roles = ["reader", "personal-data-reader"]
//! # sha256 of the token, hex: `observer-registry hash-token < token.txt`
//! token_sha256 = ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
//! # subject CN or DNS SAN of the agency's client certificate (mutual TLS)
//! certificate_names = ["border-service.gov.example"]
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use anyhow::Context;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::roles::Role;

/// One partner agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    pub name: String,
    pub roles: Vec<Role>,
    token_hashes: Vec<[u8; 32]>,
    certificate_names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    agencies: Vec<AgencyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencyEntry {
    name: String,
    roles: Vec<String>,
    #[serde(default)]
    token_sha256: Vec<String>,
    #[serde(default)]
    certificate_names: Vec<String>,
}

/// The agencies in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    agencies: Vec<Agency>,
}

impl Identities {
    /// Parses an agencies file; every mistake is named, so a bad reload keeps the old one.
    pub fn parse(text: &str) -> anyhow::Result<Identities> {
        let file: File = toml::from_str(text).context("not a valid agencies file")?;
        let mut agencies = Vec::with_capacity(file.agencies.len());
        for entry in file.agencies {
            let name = entry.name.trim().to_owned();
            anyhow::ensure!(!name.is_empty(), "an agency has an empty name");
            anyhow::ensure!(
                agencies.iter().all(|a: &Agency| a.name != name),
                "agency {name} appears twice"
            );
            let roles = entry
                .roles
                .iter()
                .map(|role| {
                    Role::parse(role).with_context(|| {
                        format!("agency {name}: unknown role `{role}` (roles: reader, personal-data-reader, registrar, accreditor, protocol, admin)")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let token_hashes = entry
                .token_sha256
                .iter()
                .map(|hex| {
                    parse_hash(hex).with_context(|| {
                        format!("agency {name}: token_sha256 must be 64 hex digits")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            anyhow::ensure!(
                !token_hashes.is_empty() || !entry.certificate_names.is_empty(),
                "agency {name} has no credentials (token_sha256 or certificate_names)"
            );
            agencies.push(Agency {
                name,
                roles,
                token_hashes,
                certificate_names: entry.certificate_names,
            });
        }
        Ok(Identities { agencies })
    }

    /// The agency whose token this is. Every stored hash is compared, in constant time, so
    /// timing tells nothing about which or how much of a token matched.
    pub fn by_token(&self, token: &str) -> Option<&Agency> {
        self.by_token_digest(&token_digest(token))
    }

    /// The agency whose token has this SHA-256 digest (see [`Identities::by_token`]).
    pub fn by_token_digest(&self, presented: &[u8; 32]) -> Option<&Agency> {
        let mut found = None;
        for agency in &self.agencies {
            for hash in &agency.token_hashes {
                if bool::from(hash.ct_eq(presented)) {
                    found = Some(agency);
                }
            }
        }
        found
    }

    /// The agency a client certificate names (subject CN or DNS SAN).
    pub fn by_certificate_name(&self, names: &[String]) -> Option<&Agency> {
        self.agencies
            .iter()
            .find(|agency| agency.certificate_names.iter().any(|n| names.contains(n)))
    }

    pub fn len(&self) -> usize {
        self.agencies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty()
    }
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

/// The SHA-256 of a token as presented: what a stream keeps to look its caller up again
/// after a reload, instead of the token itself.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The hex SHA-256 of a token, as the agencies file stores it.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The agencies file in force, replaced on reload (SIGHUP) without touching connections.
/// Each reload moves a generation counter on, so that open streams look their caller up
/// again (`api::watch`).
#[derive(Debug)]
pub struct IdentityStore {
    path: Option<PathBuf>,
    current: RwLock<Arc<Identities>>,
    reloads: watch::Sender<u64>,
}

impl IdentityStore {
    /// No agencies file: callers are anonymous (only allowed on loopback or when asked).
    pub fn anonymous() -> Self {
        IdentityStore {
            path: None,
            current: RwLock::new(Arc::default()),
            reloads: watch::Sender::new(0),
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let identities = read(path)?;
        Ok(IdentityStore {
            path: Some(path.to_owned()),
            current: RwLock::new(Arc::new(identities)),
            reloads: watch::Sender::new(0),
        })
    }

    /// Whether credentials are required at all.
    pub fn is_configured(&self) -> bool {
        self.path.is_some()
    }

    pub fn current(&self) -> Arc<Identities> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the file; on a mistake the agencies in force stay and the error is returned.
    pub fn reload(&self) -> anyhow::Result<usize> {
        let Some(path) = &self.path else { return Ok(0) };
        let identities = Arc::new(read(path)?);
        let count = identities.len();
        match self.current.write() {
            Ok(mut current) => *current = identities,
            Err(poisoned) => *poisoned.into_inner() = identities,
        }
        // After the swap: whoever is told looks up the new agencies.
        self.reloads.send_modify(|generation| *generation += 1);
        Ok(count)
    }

    /// Changes each time a reload puts a new agencies file in force.
    pub fn reloads(&self) -> watch::Receiver<u64> {
        self.reloads.subscribe()
    }
}

fn read(path: &Path) -> anyhow::Result<Identities> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the agencies file {}", path.display()))?;
    Identities::parse(&text).with_context(|| format!("in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [[agencies]]
        name = "border-service"
        roles = ["reader", "personal-data-reader"]
        token_sha256 = ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]

        [[agencies]]
        name = "foreign-ministry"
        roles = ["registrar"]
        certificate_names = ["mfa.gov.example"]
    "#;

    #[test]
    fn tokens_are_matched_by_hash_and_certificates_by_name() {
        let identities = Identities::parse(FILE).unwrap();
        assert_eq!(identities.by_token("test").unwrap().name, "border-service");
        assert!(identities.by_token("tesT").is_none());
        assert_eq!(
            identities
                .by_certificate_name(&["x".into(), "mfa.gov.example".into()])
                .unwrap()
                .roles,
            vec![Role::Registrar]
        );
        assert_eq!(
            hash_token("test\n"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let unknown_role = Identities::parse(
            "[[agencies]]\nname='a'\nroles=['god']\ntoken_sha256=[]\ncertificate_names=['x']",
        );
        assert!(format!("{:#}", unknown_role.unwrap_err()).contains("unknown role `god`"));
        let bad_hash = Identities::parse("[[agencies]]\nname='a'\nroles=[]\ntoken_sha256=['abc']");
        assert!(format!("{:#}", bad_hash.unwrap_err()).contains("64 hex digits"));
        let no_credentials = Identities::parse("[[agencies]]\nname='a'\nroles=[]");
        assert!(format!("{:#}", no_credentials.unwrap_err()).contains("no credentials"));
    }
}
