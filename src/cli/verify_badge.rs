//! `observer-registry verify-badge TOKEN`: an operator's check of a badge, offline against a
//! keys file (`--keys`) with the client crate's verifier, or online with VerifyAccreditation,
//! which also sees revocations. Prints the verdict and what the badge says; the exit code
//! tells VALID from the rest, so scripts need not parse the output.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tonic::Code;

use crate::cli::{ClientArgs, reason};
use crate::client::badge::{self, BadgeError, VerifiedBadge};
use crate::pb::v1 as pb;
use pb::accreditation_check::VerificationStatus;
use pb::verification_service_client::VerificationServiceClient;
use pb::verify_accreditation_request::Subject;

/// The exit code of a badge that is not VALID.
const NOT_VALID: u8 = 1;
/// The exit code when nothing could be checked.
const CANNOT_CHECK: u8 = 2;

/// `verify-badge`: the badge, and where its keys or the service are.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(after_help = "\
Offline or online: with --keys, offline (signature and expiry against the keys in FILE; no
network, and no revocation check); without it, online with VerifyAccreditation at --server
(signature, expiry and the record's current state; needs an agency token with the role
verifier or reader).

Verdicts: offline VALID, EXPIRED, BAD_SIGNATURE, UNKNOWN_KEY (signed with a key not in
FILE: another issuer, or a key newer than FILE) or MALFORMED; online VALID, REVOKED,
EXPIRED, UNKNOWN or BAD_SIGNATURE.

Exit codes: 0 VALID; 1 any other verdict; 2 nothing checked (unreadable token or keys
file, service unreachable or refusing the call, or bad arguments).")]
pub struct VerifyBadgeArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The badge's token, or the verification URL its QR code holds (the token after `#`),
    /// or `-` to read either from standard input.
    // Not `token`: that is the agency's bearer token of `ClientArgs`.
    #[arg(value_name = "TOKEN")]
    pub badge: String,
    /// Verify offline against the Ed25519 public keys (PEM "PUBLIC KEY" blocks) in FILE:
    /// what `badge-key` printed, or ListBadgeKeys' PEMs one after another.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Print the check as one JSON object (AccreditationCheck's field names, plus
    /// `verdict` and `online`).
    #[arg(long)]
    pub json: bool,
}

/// What was found, offline or online.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
struct Check {
    verdict: &'static str,
    online: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    accreditation_number: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    given_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    family_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    citizenship: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    organization_display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    election: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    election_display_name: String,
    /// RFC 3339, UTC.
    #[serde(skip_serializing_if = "String::is_empty")]
    expire_time: String,
    /// Offline: the key that signed the badge, or the unknown key it names.
    #[serde(skip_serializing_if = "String::is_empty")]
    key_id: String,
}

pub async fn run(args: &VerifyBadgeArgs) -> anyhow::Result<ExitCode> {
    let check = match check(args).await {
        Ok(check) => check,
        Err(error) => {
            eprintln!("error: {error:#}");
            return Ok(ExitCode::from(CANNOT_CHECK));
        }
    };
    let text = if args.json {
        serde_json::to_string(&check)?
    } else {
        render(&check, args.keys.as_ref())
    };
    println!("{text}");
    Ok(match check.verdict {
        "VALID" => ExitCode::SUCCESS,
        _ => ExitCode::from(NOT_VALID),
    })
}

async fn check(args: &VerifyBadgeArgs) -> anyhow::Result<Check> {
    let scanned = scanned(&args.badge)?;
    let token = badge::token_in(&scanned);
    match &args.keys {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let keys = badge::keys_from_pem(&pem).with_context(|| path.display().to_string())?;
            Ok(offline(badge::verify_badge_at(
                token,
                &keys,
                SystemTime::now(),
            )))
        }
        None => online(&args.client, token).await,
    }
}

/// The argument, or standard input for `-`.
fn scanned(argument: &str) -> anyhow::Result<String> {
    let text = if argument == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the token from standard input")?;
        text
    } else {
        argument.to_owned()
    };
    let text = text.trim();
    anyhow::ensure!(!text.is_empty(), "no token given");
    Ok(text.to_owned())
}

fn offline(result: Result<VerifiedBadge, BadgeError>) -> Check {
    let verified = |verdict, badge: &VerifiedBadge| Check {
        verdict,
        accreditation_number: badge.accreditation_number.clone(),
        given_name: badge.given_name.clone(),
        family_name: badge.family_name.clone(),
        citizenship: badge.citizenship.clone(),
        organization_display_name: badge.organization_display_name.clone(),
        election: badge.election.clone(),
        expire_time: rfc3339(badge.expire_unix_seconds),
        key_id: badge.key_id.clone(),
        ..Default::default()
    };
    match result {
        Ok(badge) => verified("VALID", &badge),
        Err(BadgeError::Expired(badge)) => verified("EXPIRED", &badge),
        Err(BadgeError::UnknownKey(key_id)) => Check {
            verdict: "UNKNOWN_KEY",
            key_id,
            ..Default::default()
        },
        Err(BadgeError::BadSignature) => Check {
            verdict: "BAD_SIGNATURE",
            ..Default::default()
        },
        Err(BadgeError::Malformed) => Check {
            verdict: "MALFORMED",
            ..Default::default()
        },
    }
}

async fn online(client: &ClientArgs, token: &str) -> anyhow::Result<Check> {
    let channel = crate::cli::connect(client).await?;
    let request = pb::VerifyAccreditationRequest {
        subject: Some(Subject::Token(token.to_owned())),
    };
    let check = VerificationServiceClient::new(channel)
        .verify_accreditation(request)
        .await
        .map_err(|status| {
            // An older service: the operator can still check the signature offline.
            let hint = match status.code() {
                Code::Unimplemented => " (this server has no VerificationService: use --keys)",
                _ => "",
            };
            anyhow::anyhow!(
                "VerifyAccreditation at {} failed ({}): {}{hint}",
                client.server,
                reason(&status),
                status.message()
            )
        })?
        .into_inner();
    let verdict = match check.status() {
        VerificationStatus::Valid => "VALID",
        VerificationStatus::Revoked => "REVOKED",
        VerificationStatus::Expired => "EXPIRED",
        VerificationStatus::Unknown => "UNKNOWN",
        VerificationStatus::BadSignature => "BAD_SIGNATURE",
        // A status newer than this command: not VALID, so not accepted.
        VerificationStatus::Unspecified => "UNSPECIFIED",
    };
    Ok(Check {
        verdict,
        online: true,
        expire_time: check
            .expire_time
            .as_ref()
            .map(|time| rfc3339(time.seconds))
            .unwrap_or_default(),
        accreditation_number: check.accreditation_number,
        given_name: check.given_name,
        family_name: check.family_name,
        citizenship: check.citizenship,
        organization_display_name: check.organization_display_name,
        election: check.election,
        election_display_name: check.election_display_name,
        key_id: String::new(),
    })
}

fn rfc3339(unix_seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix_seconds, 0)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The verdict with how it was reached, then what the badge (or the record) says.
fn render(check: &Check, keys: Option<&PathBuf>) -> String {
    let how = match keys {
        Some(path) => format!(
            "offline, against the keys in {} (a revocation shows only online)",
            path.display()
        ),
        None => "online, VerifyAccreditation".to_owned(),
    };
    let mut out = format!("{} ({how})", check.verdict);
    let name = format!("{} {}", check.given_name, check.family_name);
    let election = match check.election_display_name.as_str() {
        "" => check.election.clone(),
        display_name => format!("{} ({display_name})", check.election),
    };
    for (label, value) in [
        ("accreditation number", check.accreditation_number.as_str()),
        ("name", name.trim()),
        ("citizenship", &check.citizenship),
        ("organization", &check.organization_display_name),
        ("election", &election),
        ("expires", &check.expire_time),
        ("key id", &check.key_id),
    ] {
        if !value.is_empty() {
            out.push_str(&format!("\n  {label:<22}{value}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_named_and_nothing_else_is_claimed() {
        let check = offline(Err(BadgeError::UnknownKey("k1".into())));
        let text = render(&check, Some(&PathBuf::from("keys.pem")));
        assert_eq!(
            text,
            "UNKNOWN_KEY (offline, against the keys in keys.pem (a revocation shows only \
             online))\n  key id                k1"
        );
        assert_eq!(
            serde_json::to_string(&check).unwrap(),
            r#"{"verdict":"UNKNOWN_KEY","online":false,"key_id":"k1"}"#
        );
    }

    #[test]
    fn expiry_is_printed_in_utc() {
        assert_eq!(rfc3339(1_681_776_000), "2023-04-18T00:00:00Z");
    }
}
