//! Headline figures of an election, as the press office quotes them.

use super::invitation::InvitationState;
use super::organization::OrganizationKind;

/// Accredited observers sent by one organization.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationCount {
    pub organization_id: String,
    pub display_name: String,
    pub kind: OrganizationKind,
    pub observers: i64,
}

/// The figures of an election. Statistics count accredited observers only (BRIEF).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub accredited_observers: i64,
    pub pending_observers: i64,
    pub international_organizations: i64,
    pub organizations: i64,
    pub countries: i64,
    pub delegations: i64,
    pub meetings: i64,
    /// (organization id, display name, accredited observers), largest first.
    pub by_organization: Vec<(String, String, i64)>,
    /// (country, accredited observers), largest first.
    pub by_country: Vec<(String, i64)>,
    pub invitations: InvitationFigures,
}

/// What the invitations of an election come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InvitationFigures {
    /// Organizations invited, whatever became of the invitation (one invitation each).
    pub invited_organizations: i64,
    pub accepted_invitations: i64,
    /// The observers the accepted invitations' replies announce.
    pub expected_observers: i64,
}

/// The invitations of one state: how many, and the observers their replies announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvitationTally {
    pub state: InvitationState,
    pub invitations: i64,
    pub expected_observers: i64,
}

impl InvitationFigures {
    /// The figures from the tallies per state: every invitation is an invited organization;
    /// only accepted ones count with their observers (a withdrawn acceptance keeps its
    /// number on record, but nobody comes).
    pub fn new(tallies: &[InvitationTally]) -> InvitationFigures {
        let accepted = tallies
            .iter()
            .filter(|t| t.state == InvitationState::Accepted);
        InvitationFigures {
            invited_organizations: tallies.iter().map(|t| t.invitations).sum(),
            accepted_invitations: accepted.clone().map(|t| t.invitations).sum(),
            expected_observers: accepted.map(|t| t.expected_observers).sum(),
        }
    }
}

impl Summary {
    /// The figures from accredited observers per organization and per country (each
    /// counted once), pending observers, live delegations and meetings not cancelled.
    pub fn new(
        by_organization: Vec<OrganizationCount>,
        by_country: Vec<(String, i64)>,
        pending_observers: i64,
        delegations: i64,
        meetings: i64,
    ) -> Summary {
        let mut by_organization: Vec<OrganizationCount> = by_organization
            .into_iter()
            .filter(|o| o.observers > 0)
            .collect();
        let mut by_country: Vec<(String, i64)> =
            by_country.into_iter().filter(|(_, n)| *n > 0).collect();
        by_organization.sort_by(|a, b| {
            b.observers
                .cmp(&a.observers)
                .then_with(|| a.display_name.cmp(&b.display_name))
        });
        by_country.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Summary {
            accredited_observers: by_country.iter().map(|(_, n)| n).sum(),
            pending_observers,
            international_organizations: by_organization
                .iter()
                .filter(|o| o.kind.is_international())
                .count() as i64,
            organizations: by_organization.len() as i64,
            countries: by_country.len() as i64,
            delegations,
            meetings,
            by_organization: by_organization
                .into_iter()
                .map(|o| (o.organization_id, o.display_name, o.observers))
                .collect(),
            by_country,
            invitations: InvitationFigures::default(),
        }
    }

    /// E.g. "793 observers from 12 international organizations and 41 countries".
    pub fn headline(&self) -> String {
        format!(
            "{} from {} and {}",
            count(self.accredited_observers, "observer", "observers"),
            count(
                self.international_organizations,
                "international organization",
                "international organizations"
            ),
            count(self.countries, "country", "countries"),
        )
    }
}

fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_figures_count_every_organization_and_the_accepted_observers() {
        let tally = |state, invitations, expected_observers| InvitationTally {
            state,
            invitations,
            expected_observers,
        };
        let figures = InvitationFigures::new(&[
            tally(InvitationState::Sent, 3, 0),
            tally(InvitationState::Accepted, 2, 350),
            tally(InvitationState::Declined, 1, 0),
            tally(InvitationState::Withdrawn, 1, 40),
        ]);
        assert_eq!(
            figures,
            InvitationFigures {
                invited_organizations: 7,
                accepted_invitations: 2,
                expected_observers: 350,
            }
        );
        assert_eq!(InvitationFigures::new(&[]), InvitationFigures::default());
    }

    fn org(id: &str, kind: OrganizationKind, observers: i64) -> OrganizationCount {
        OrganizationCount {
            organization_id: id.into(),
            display_name: id.to_uppercase(),
            kind,
            observers,
        }
    }

    #[test]
    fn the_headline_agrees_in_number() {
        let one = Summary {
            accredited_observers: 1,
            international_organizations: 1,
            countries: 1,
            ..Summary::default()
        };
        assert_eq!(
            one.headline(),
            "1 observer from 1 international organization and 1 country"
        );
        let many = Summary {
            accredited_observers: 793,
            international_organizations: 12,
            countries: 41,
            ..Summary::default()
        };
        assert_eq!(
            many.headline(),
            "793 observers from 12 international organizations and 41 countries"
        );
        assert_eq!(
            Summary::default().headline(),
            "0 observers from 0 international organizations and 0 countries"
        );
    }

    #[test]
    fn breakdowns_are_largest_first_and_only_international_kinds_count_as_such() {
        use OrganizationKind::*;
        let summary = Summary::new(
            vec![
                org("sco", InternationalOrganization, 4),
                org("cis-ipa", ParliamentaryAssembly, 5),
                org("cec-az", ForeignElectionBody, 2),
                org("osce", InternationalOrganization, 0),
            ],
            vec![
                ("CN".into(), 3),
                ("RU".into(), 6),
                ("AZ".into(), 2),
                ("DE".into(), 0),
            ],
            7,
            3,
            2,
        );
        assert_eq!(summary.accredited_observers, 11);
        assert_eq!(summary.pending_observers, 7);
        assert_eq!(summary.organizations, 3);
        assert_eq!(summary.international_organizations, 2);
        assert_eq!(summary.countries, 3);
        assert_eq!((summary.delegations, summary.meetings), (3, 2));
        assert_eq!(
            summary.by_organization[0],
            ("cis-ipa".into(), "CIS-IPA".into(), 5)
        );
        assert_eq!(
            summary.by_country,
            vec![("RU".into(), 6), ("CN".into(), 3), ("AZ".into(), 2)]
        );
    }
}
