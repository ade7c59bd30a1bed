//! Badges: the keys they are signed and verified with (`keys`) and the printable card
//! (`card`). The token's format is the client crate's (`observer_registry_client::badge`), so
//! partners verify exactly what the service signs; the rules of expiry and verdict are
//! `domain::badge`.

pub mod card;
pub mod guard;
pub mod keys;
pub mod proxies;

pub use keys::{BadgeKeyring, BadgeSigner};

use std::sync::Arc;

use anyhow::Context;

use crate::config::BadgeSettings;

/// What the badge and verification RPCs and pages share: the keys, the verification URL the
/// QR codes hold, and the limits on verification.
#[derive(Debug)]
pub struct Badges {
    pub keyring: BadgeKeyring,
    /// `--badge-verify-url`: the QR code holds `{url}#{token}` when set.
    pub verify_url: Option<VerifyUrl>,
    pub limits: VerifyLimits,
    /// The proxies in front of the verification port, whose `X-Forwarded-For` is believed.
    pub trusted_proxies: proxies::TrustedProxies,
}

/// How much verification one caller may ask for (see `config::BadgeSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyLimits {
    pub per_agency_per_second: u32,
    pub per_address_per_second: u32,
    pub enumeration_threshold: u32,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        VerifyLimits::from_settings(&BadgeSettings::default())
    }
}

impl VerifyLimits {
    pub fn from_settings(settings: &BadgeSettings) -> VerifyLimits {
        VerifyLimits {
            per_agency_per_second: settings.verify_rate_per_agency,
            per_address_per_second: settings.verify_rate_per_address,
            enumeration_threshold: settings.verify_enumeration_threshold,
        }
    }
}

/// The public verification page's URL, e.g. `https://verify.cec.example/v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyUrl {
    url: String,
    path: String,
}

impl VerifyUrl {
    /// An absolute http(s) URL with a path and neither query nor fragment (the token goes
    /// after `#`, which browsers never send to a server).
    pub fn parse(url: &str) -> anyhow::Result<VerifyUrl> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("--badge-verify-url {url:?} is not a URL"))?;
        anyhow::ensure!(
            matches!(uri.scheme_str(), Some("https" | "http")) && uri.host().is_some(),
            "--badge-verify-url {url:?} must be an absolute http(s) URL"
        );
        anyhow::ensure!(
            uri.query().is_none() && !url.contains('#'),
            "--badge-verify-url {url:?} must have no query and no fragment: the token follows '#'"
        );
        let path = uri.path();
        anyhow::ensure!(
            path.len() > 1 && !path.starts_with("/v1/") && path != "/metrics",
            "--badge-verify-url {url:?} needs a path of its own for the page, e.g. /v"
        );
        Ok(VerifyUrl {
            url: url.to_owned(),
            path: path.to_owned(),
        })
    }

    /// What the QR code of `token` holds.
    pub fn with_token(&self, token: &str) -> String {
        format!("{}#{token}", self.url)
    }

    /// The path the service serves the page at.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Badges {
    /// No keys, no page: GetObserverBadge is refused and no badge verifies.
    pub fn none() -> Badges {
        Badges {
            keyring: BadgeKeyring::none(),
            verify_url: None,
            limits: VerifyLimits::default(),
            trusted_proxies: proxies::TrustedProxies::default(),
        }
    }

    pub fn from_settings(settings: &BadgeSettings) -> anyhow::Result<Arc<Badges>> {
        Ok(Arc::new(Badges {
            keyring: BadgeKeyring::load(
                settings.badge_signing_key.as_deref(),
                &settings.badge_verification_keys,
            )?,
            verify_url: settings
                .badge_verify_url
                .as_deref()
                .map(VerifyUrl::parse)
                .transpose()?,
            limits: VerifyLimits::from_settings(settings),
            trusted_proxies: proxies::TrustedProxies::parse(&settings.verify_trusted_proxies)
                .map_err(|e| anyhow::anyhow!("--verify-trusted-proxies: {e}"))?,
        }))
    }

    /// What a badge's QR code holds: the verification URL with the token, or the token.
    pub fn qr_payload(&self, token: &str) -> String {
        match &self.verify_url {
            Some(url) => url.with_token(token),
            None => token.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verify_url_needs_a_path_of_its_own_and_no_fragment() {
        let url = VerifyUrl::parse("https://verify.cec.example/v").unwrap();
        assert_eq!(url.path(), "/v");
        assert_eq!(url.with_token("abc"), "https://verify.cec.example/v#abc");
        for bad in [
            "verify.cec.example/v",
            "ftp://verify.cec.example/v",
            "https://verify.cec.example/",
            "https://verify.cec.example/v?x=1",
            "https://verify.cec.example/v#x",
            "https://verify.cec.example/v1/verify",
        ] {
            assert!(VerifyUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
