//! What a demo run did, as printed for the operator on stdout.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Outcome, story};
use crate::pb::v1 as pb;

/// How many records of one kind this run made and how many it found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub created: usize,
    pub present: usize,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Present => self.present += 1,
        }
    }
}

/// A decision this run accredited observers by, with the numbers it issued.
#[derive(Debug)]
pub struct DecisionTaken {
    pub text: &'static str,
    pub count: usize,
    pub first_number: String,
    pub last_number: String,
}

impl DecisionTaken {
    pub fn new(decision: &story::Decision, accredited: &[pb::Observer]) -> DecisionTaken {
        let number = |observer: Option<&pb::Observer>| {
            observer
                .and_then(|o| o.accreditation.as_ref())
                .map(|a| a.number.clone())
                .unwrap_or_default()
        };
        DecisionTaken {
            text: decision.text,
            count: accredited.len(),
            first_number: number(accredited.first()),
            last_number: number(accredited.last()),
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub election: Tally,
    pub organizations: Tally,
    pub invitations: Tally,
    /// `created`: accepted by this run.
    pub accepted: Tally,
    pub delegations: Tally,
    pub observers: Tally,
    /// `created`: accredited by this run.
    pub accredited: Tally,
    pub meetings: Tally,
    /// `created`: completed by this run.
    pub held: Tally,
    pub head_set: bool,
    /// The election's `decision_required` was set by this run.
    pub decisions_required: bool,
    /// The election's `invitation_required` was set by this run.
    pub invitations_required: bool,
    /// The decisions this run accredited observers by, in order.
    pub decisions: Vec<DecisionTaken>,
    /// The number of the first observer of the first decision, once accredited.
    pub first_accredited: Option<String>,
    pub reopened_until: Option<DateTime<Utc>>,
    pub deadline_changes: usize,
    /// `None`: the server does not implement GetElectionSummary.
    pub summary: Option<pb::ElectionSummary>,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    pub fn print(&self, server: &str) {
        print!("{}", self.render(server));
    }

    fn changed_nothing(&self) -> bool {
        let tallies = [
            self.election,
            self.organizations,
            self.invitations,
            self.accepted,
            self.delegations,
            self.observers,
            self.accredited,
            self.meetings,
            self.held,
        ];
        tallies.iter().all(|t| t.created == 0)
            && !self.head_set
            && !self.decisions_required
            && !self.invitations_required
            && self.deadline_changes == 0
    }

    fn render(&self, server: &str) -> String {
        let election = story::ELECTION;
        let mut out = format!("The Astana 2023 story in {election} at {server}\n\n");
        self.render_counts(&mut out);
        out.push('\n');
        self.render_changes(&mut out);
        self.render_headline(&mut out);
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        render_grpcurl(&mut out, server);
        render_verification(&mut out, server, self.first_accredited.as_deref());
        out
    }

    /// What was created and what was already there, per kind of record.
    fn render_counts(&self, out: &mut String) {
        let _ = writeln!(out, "  {:<16}{:>8}{:>16}", "", "created", "already there");
        for (what, tally) in [
            ("election", self.election),
            ("organizations", self.organizations),
            ("invitations", self.invitations),
            ("accepted", self.accepted),
            ("delegations", self.delegations),
            ("observers", self.observers),
            ("accreditations", self.accredited),
            ("meetings", self.meetings),
            ("meetings held", self.held),
        ] {
            let _ = writeln!(out, "  {what:<16}{:>8}{:>16}", tally.created, tally.present);
        }
    }

    /// The changes beyond creating records: the head of delegation, the deadline.
    fn render_changes(&self, out: &mut String) {
        let election = story::ELECTION;
        if self.head_set {
            let _ = writeln!(
                out,
                "{} {} ({election}/observers/{}) is now head of {election}/delegations/{}.",
                story::HEAD_OF_CEC_TJ.given_name,
                story::HEAD_OF_CEC_TJ.family_name,
                story::observer_id(1),
                story::HEADED_DELEGATION,
            );
        }
        if self.invitations_required {
            let _ = writeln!(
                out,
                "{election} now admits observers of organizations with an accepted invitation only."
            );
        }
        if self.decisions_required {
            let _ = writeln!(
                out,
                "{election} now requires the commission's decision behind each accreditation."
            );
        }
        if !self.decisions.is_empty() {
            // The article gives no resolutions: the reader must not take these as real.
            out.push_str(
                "Accredited by the commission's decisions (numbers and dates illustrative):\n",
            );
        }
        for decision in &self.decisions {
            let _ = writeln!(
                out,
                "  {}: {} observers, {} to {}",
                decision.text, decision.count, decision.first_number, decision.last_number
            );
        }
        if let Some(until) = self.reopened_until {
            let _ = writeln!(
                out,
                "Accreditation was reopened until {} to accredit, then closed again at {}.",
                until.to_rfc3339_opts(SecondsFormat::Secs, true),
                story::ACCREDITATION_DEADLINE,
            );
        } else if self.deadline_changes > 0 {
            let _ = writeln!(
                out,
                "The accreditation deadline was set to {}.",
                story::ACCREDITATION_DEADLINE
            );
        }
        if self.changed_nothing() {
            out.push_str("Nothing changed: the story was already loaded.\n");
        }
    }

    /// The election's headline, checked against the article's.
    fn render_headline(&self, out: &mut String) {
        match &self.summary {
            Some(summary) => {
                let _ = writeln!(out, "\nHeadline: {}", summary.headline);
                let _ = writeln!(
                    out,
                    "Invitations: {} organizations invited, {} accepted, {} observers announced \
                     (letters' dates and references illustrative)",
                    summary.invited_organizations,
                    summary.accepted_invitations,
                    summary.expected_observers
                );
                if summary.headline != story::HEADLINE {
                    let _ = writeln!(
                        out,
                        "warning: the article says \"{}\"; the election also holds records \
                         that are not the story's",
                        story::HEADLINE
                    );
                }
            }
            None => out.push_str(
                "\nHeadline: not available (this server does not implement GetElectionSummary)\n",
            ),
        }
    }
}

/// grpcurl commands to look at what was loaded.
fn render_grpcurl(out: &mut String, server: &str) {
    let election = story::ELECTION;
    let (plaintext, target) = grpcurl_target(server);
    let _ = writeln!(out, "\nLook at it with grpcurl:");
    for (body, method) in [
        (
            format!(r#"{{"name": "{election}"}}"#),
            "ElectionService/GetElectionSummary",
        ),
        (
            format!(r#"{{"parent": "{election}"}}"#),
            "DelegationService/ListDelegations",
        ),
        (
            format!(r#"{{"parent": "{election}", "order_by": "start_time"}}"#),
            "MeetingService/ListMeetings",
        ),
        (
            format!(r#"{{"parent": "{election}", "filter": "citizenship = \"TJ\""}}"#),
            "ObserverService/ListPublicRegister",
        ),
        (
            format!(
                r#"{{"name": "{election}/observers/{}"}}"#,
                story::observer_id(1)
            ),
            "ObserverService/GetObserver",
        ),
    ] {
        let _ = writeln!(
            out,
            "  grpcurl {plaintext}-d '{body}' {target} observer_registry.v1.{method}"
        );
    }
}

/// How to verify a badge: the published keys (no credentials), an accreditation checked by
/// number (a verifier's token), and where badges come from.
fn render_verification(out: &mut String, server: &str, first_accredited: Option<&str>) {
    let election = story::ELECTION;
    let (plaintext, target) = grpcurl_target(server);
    let service = "observer_registry.v1.VerificationService";
    let _ = writeln!(out, "\nVerify a badge:");
    let _ = writeln!(
        out,
        "  grpcurl {plaintext}{target} {service}/ListBadgeKeys   # the public keys, no credentials"
    );
    if let Some(number) = first_accredited {
        let _ = writeln!(
            out,
            "  grpcurl {plaintext}-H 'authorization: Bearer VERIFIER_TOKEN' \
             -d '{{\"accreditation_number\":\"{number}\"}}' {target} {service}/VerifyAccreditation"
        );
    }
    let _ = writeln!(
        out,
        "  observer-registry badges --server {server} --election {election} --out badges/   # badges to print \
         (the server needs --badge-signing-key)"
    );
    let _ = writeln!(
        out,
        "  observer-registry verify-badge TOKEN --keys KEYS.pem   # offline; without --keys, online"
    );
}

/// grpcurl's `-plaintext` flag (unless the server is `https`) and `host:port`.
fn grpcurl_target(server: &str) -> (&'static str, String) {
    let uri = server.parse::<http::Uri>().ok();
    let plaintext = match uri.as_ref().and_then(|u| u.scheme_str()) {
        Some("https") => "",
        _ => "-plaintext ",
    };
    let target = uri
        .as_ref()
        .and_then(|u| u.authority())
        .map_or_else(|| server.to_owned(), |a| a.to_string());
    (plaintext, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpcurl_hints_name_the_server() {
        assert_eq!(
            grpcurl_target("http://127.0.0.1:50051"),
            ("-plaintext ", "127.0.0.1:50051".to_owned())
        );
        assert_eq!(
            grpcurl_target("https://registry.example:443"),
            ("", "registry.example:443".to_owned())
        );
    }

    #[test]
    fn a_run_that_found_everything_says_so() {
        let report = Report {
            election: Tally {
                created: 0,
                present: 1,
            },
            ..Default::default()
        };
        let text = report.render("http://127.0.0.1:50051");
        assert!(text.contains("Nothing changed"), "{text}");
        assert!(text.contains("not available"), "{text}");
        assert!(text.contains("grpcurl -plaintext -d '{\"name\": \"elections/kz-2023\"}' 127.0.0.1:50051 observer_registry.v1.ElectionService/GetElectionSummary"), "{text}");
        assert!(text.contains("grpcurl -plaintext 127.0.0.1:50051 observer_registry.v1.VerificationService/ListBadgeKeys"), "{text}");
        // Nothing accredited: no number to verify.
        assert!(!text.contains("VerifyAccreditation"), "{text}");
    }

    #[test]
    fn the_first_accredited_number_is_verified_by_a_verifier() {
        let report = Report {
            first_accredited: Some("KZ-2023-000001".into()),
            ..Default::default()
        };
        let text = report.render("http://127.0.0.1:50051");
        assert!(text.contains("grpcurl -plaintext -H 'authorization: Bearer VERIFIER_TOKEN' -d '{\"accreditation_number\":\"KZ-2023-000001\"}' 127.0.0.1:50051 observer_registry.v1.VerificationService/VerifyAccreditation"), "{text}");
        assert!(text.contains("observer-registry badges --server http://127.0.0.1:50051 --election elections/kz-2023 --out badges/"), "{text}");
    }
}
