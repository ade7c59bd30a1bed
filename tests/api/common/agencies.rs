//! Agencies files for the tests of authorization and of the audit trail: one agency per role
//! (and a few combinations), each with its own bearer token, written to a file of its own
//! under the system's temporary directory and removed when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use observer_registry::auth::IdentityStore;
use observer_registry::auth::identities::hash_token;
use observer_registry::client::Client;
use observer_registry::server::ServeOptions;

use crate::common::*;

/// Agencies with exactly one role, named after it.
pub const READER: &str = "reader-agency";
pub const PERSONAL_DATA_READER: &str = "personal-data-agency";
pub const REGISTRAR: &str = "registrar-agency";
pub const ACCREDITOR: &str = "accreditor-agency";
pub const PROTOCOL: &str = "protocol-agency";
pub const ADMIN: &str = "admin-agency";
/// Agencies that also read personal data.
pub const REGISTRAR_PD: &str = "registrar-pd-agency";
pub const ACCREDITOR_PD: &str = "accreditor-pd-agency";
pub const ADMIN_PD: &str = "admin-pd-agency";

/// The agencies of [`Agencies::standard`] and their roles.
pub const STANDARD: &[(&str, &[&str])] = &[
    (READER, &["reader"]),
    (PERSONAL_DATA_READER, &["personal-data-reader"]),
    (REGISTRAR, &["registrar"]),
    (ACCREDITOR, &["accreditor"]),
    (PROTOCOL, &["protocol"]),
    (ADMIN, &["admin"]),
    (REGISTRAR_PD, &["registrar", "personal-data-reader"]),
    (ACCREDITOR_PD, &["accreditor", "personal-data-reader"]),
    (ADMIN_PD, &["admin", "personal-data-reader"]),
];

/// One agency of a file.
#[derive(Debug, Clone)]
pub struct Agency {
    pub name: String,
    pub roles: Vec<String>,
    /// The bearer token in clear; the file holds only its hash.
    pub token: Option<String>,
    pub certificate_names: Vec<String>,
}

impl Agency {
    /// An agency with a fresh random token.
    pub fn with_token(name: &str, roles: &[&str]) -> Agency {
        Agency {
            name: name.to_owned(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            token: Some(format!("{name}-{}", uuid::Uuid::new_v4().simple())),
            certificate_names: Vec::new(),
        }
    }

    /// An agency known by the names of its client certificate only.
    pub fn with_certificate(name: &str, roles: &[&str], certificate_name: &str) -> Agency {
        Agency {
            name: name.to_owned(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            token: None,
            certificate_names: vec![certificate_name.to_owned()],
        }
    }

    pub fn token(&self) -> &str {
        self.token
            .as_deref()
            .unwrap_or_else(|| panic!("agency {} has no token", self.name))
    }
}

/// The agencies file format of `observer_registry::auth::identities`.
pub fn render(agencies: &[Agency]) -> String {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = String::new();
    for agency in agencies {
        let hashes: Vec<String> = agency.token.iter().map(|t| hash_token(t)).collect();
        text.push_str(&format!(
            "[[agencies]]\nname = {:?}\nroles = [{}]\ntoken_sha256 = [{}]\ncertificate_names = [{}]\n\n",
            agency.name,
            list(&agency.roles),
            list(&hashes),
            list(&agency.certificate_names),
        ));
    }
    text
}

/// A file under the temporary directory with a name no other test uses; removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(label: &str, extension: &str) -> TempFile {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "observer-registry-{label}-{}-{}-{}.{extension}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4().simple(),
        ));
        TempFile { path }
    }

    pub fn write(&self, contents: impl AsRef<[u8]>) {
        std::fs::write(&self.path, contents).unwrap();
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An agencies file and the agencies it holds.
pub struct Agencies {
    pub file: TempFile,
    pub agencies: Vec<Agency>,
}

impl Agencies {
    /// Writes `agencies` to a fresh file.
    pub fn new(label: &str, agencies: Vec<Agency>) -> Agencies {
        let file = TempFile::new(label, "toml");
        file.write(render(&agencies));
        Agencies { file, agencies }
    }

    /// One agency per role and the combinations of [`STANDARD`], each with a token.
    pub fn standard(label: &str) -> Agencies {
        Agencies::new(
            label,
            STANDARD
                .iter()
                .map(|(name, roles)| Agency::with_token(name, roles))
                .collect(),
        )
    }

    pub fn agency(&self, name: &str) -> &Agency {
        self.agencies
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no agency {name}"))
    }

    pub fn token(&self, name: &str) -> &str {
        self.agency(name).token()
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Server options that require these agencies' credentials (no anonymous callers).
    pub fn options(&self) -> ServeOptions {
        ServeOptions {
            identities: Arc::new(IdentityStore::load(self.path()).unwrap()),
            allow_anonymous: false,
            ..test_options()
        }
    }

    /// A client of `app` that authenticates as agency `name`, and makes each call once, so
    /// that a test sees the service's own answer.
    pub fn client(&self, app: &TestApp, name: &str) -> Client {
        crate::common::client_without_retries(app, Some(self.token(name)))
    }
}

/// A server over `pool` that knows the agencies of [`Agencies::standard`].
pub async fn spawn_with_standard_agencies(pool: sqlx::PgPool, label: &str) -> (TestApp, Agencies) {
    let agencies = Agencies::standard(label);
    let app = spawn_app_with_options(pool.clone(), pool, agencies.options()).await;
    (app, agencies)
}
