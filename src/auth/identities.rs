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
    /// A credential in two agencies, an unknown role and an empty list are mistakes too: the
    /// first would make the caller whichever agency happened to come first, the last would
    /// refuse every call.
    pub fn parse(text: &str) -> anyhow::Result<Identities> {
        let file: File = toml::from_str(text).context("not a valid agencies file")?;
        anyhow::ensure!(
            !file.agencies.is_empty(),
            "the agencies file lists no agencies, so every call would be refused; \
             add [[agencies]] entries (or serve without --identities on a loopback address)"
        );
        let mut agencies: Vec<Agency> = Vec::with_capacity(file.agencies.len());
        for entry in file.agencies {
            let agency = parse_agency(entry)?;
            if let Some(other) = agencies.iter().find(|a| a.name == agency.name) {
                anyhow::bail!("agency {} appears twice", other.name);
            }
            for hash in &agency.token_hashes {
                if let Some(other) = agencies.iter().find(|a| a.token_hashes.contains(hash)) {
                    anyhow::bail!(
                        "agency {}: token_sha256 {} is already agency {}'s; a token must name one agency",
                        agency.name,
                        hex(hash),
                        other.name
                    );
                }
            }
            for name in &agency.certificate_names {
                if let Some(other) = agencies.iter().find(|a| a.certificate_names.contains(name)) {
                    anyhow::bail!(
                        "agency {}: certificate name {name} is already agency {}'s; a certificate must name one agency",
                        agency.name,
                        other.name
                    );
                }
            }
            agencies.push(agency);
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

    /// The agency a client certificate names (its DNS SANs, or its subject CN when it has
    /// none; see `auth::credentials`). DNS names compare without regard to case (RFC 4343).
    pub fn by_certificate_name(&self, names: &[String]) -> Option<&Agency> {
        self.agencies.iter().find(|agency| {
            agency.certificate_names.iter().any(|n| {
                names
                    .iter()
                    .any(|presented| presented.eq_ignore_ascii_case(n))
            })
        })
    }

    pub fn len(&self) -> usize {
        self.agencies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty()
    }
}

/// One `[[agencies]]` entry, checked on its own.
fn parse_agency(entry: AgencyEntry) -> anyhow::Result<Agency> {
    let name = entry.name.trim().to_owned();
    anyhow::ensure!(!name.is_empty(), "an agency has an empty name");
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
            parse_hash(hex)
                .with_context(|| format!("agency {name}: token_sha256 must be 64 hex digits"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        !token_hashes.is_empty() || !entry.certificate_names.is_empty(),
        "agency {name} has no credentials (token_sha256 or certificate_names)"
    );
    // DNS names are case-insensitive: stored lower case, so that `MFA.gov.example` and
    // `mfa.gov.example` are found to be one name in two agencies.
    let certificate_names = entry
        .certificate_names
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    Ok(Agency {
        name,
        roles,
        token_hashes,
        certificate_names,
    })
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a token as presented: what a stream keeps to look its caller up again
/// after a reload, instead of the token itself.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The hex SHA-256 of a token, as the agencies file stores it.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.trim().as_bytes()))
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

    fn refusal(text: &str) -> String {
        format!("{:#}", Identities::parse(text).unwrap_err())
    }

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_token_in_two_agencies_is_refused_naming_both_and_the_hash() {
        let error = refusal(&format!(
            "[[agencies]]\nname='a'\nroles=['reader']\ntoken_sha256=['{HASH}']\n\
             [[agencies]]\nname='b'\nroles=['admin']\ntoken_sha256=['{}']",
            HASH.to_uppercase()
        ));
        assert_eq!(
            error,
            format!(
                "agency b: token_sha256 {HASH} is already agency a's; a token must name one agency"
            )
        );
    }

    #[test]
    fn a_certificate_name_in_two_agencies_is_refused_whatever_its_case() {
        let error = refusal(
            "[[agencies]]\nname='a'\nroles=['reader']\ncertificate_names=['mfa.gov.example']\n\
             [[agencies]]\nname='b'\nroles=['admin']\ncertificate_names=['MFA.gov.example']",
        );
        assert!(
            error.starts_with("agency b: certificate name mfa.gov.example is already agency a's"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_list_is_refused() {
        for text in ["", "agencies = []"] {
            assert!(refusal(text).contains("lists no agencies"), "{text:?}");
        }
    }

    #[test]
    fn an_unknown_role_is_refused_naming_the_agency_and_the_role() {
        let error = refusal(
            "[[agencies]]\nname='mfa'\nroles=['reader','raeder']\ntoken_sha256=['{HASH}']"
                .replace("{HASH}", HASH)
                .as_str(),
        );
        assert!(
            error.starts_with("agency mfa: unknown role `raeder`"),
            "{error}"
        );
    }

    #[test]
    fn certificate_names_match_without_regard_to_case() {
        let identities = Identities::parse(FILE).unwrap();
        let found = identities.by_certificate_name(&["MFA.Gov.Example".into()]);
        assert_eq!(found.unwrap().name, "foreign-ministry");
    }
}
