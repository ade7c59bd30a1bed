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

#[derive(Debug, Default)]
pub struct Report {
    pub election: Tally,
    pub organizations: Tally,
    pub delegations: Tally,
    pub observers: Tally,
    /// `created`: accredited by this run.
    pub accredited: Tally,
    pub meetings: Tally,
    /// `created`: completed by this run.
    pub held: Tally,
    pub head_set: bool,
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
            self.delegations,
            self.observers,
            self.accredited,
            self.meetings,
            self.held,
        ];
        tallies.iter().all(|t| t.created == 0) && !self.head_set && self.deadline_changes == 0
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
        out
    }

    /// What was created and what was already there, per kind of record.
    fn render_counts(&self, out: &mut String) {
        let _ = writeln!(out, "  {:<16}{:>8}{:>16}", "", "created", "already there");
        for (what, tally) in [
            ("election", self.election),
            ("organizations", self.organizations),
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
    }
}
