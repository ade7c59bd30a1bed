//! Headline figures of an election, as the press office quotes them.

use super::organization::OrganizationKind;

/// Observers of one (organization, citizenship, state), as tallied.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub organization_id: String,
    pub organization_name: String,
    pub organization_kind: OrganizationKind,
    pub citizenship: String,
    pub accredited: bool,
    pub pending: bool,
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
}

impl Summary {
    pub fn from_tallies(tallies: &[Tally], delegations: i64, meetings: i64) -> Summary {
        use std::collections::BTreeMap;
        let mut by_organization: BTreeMap<&str, (&str, OrganizationKind, i64)> = BTreeMap::new();
        let mut by_country: BTreeMap<&str, i64> = BTreeMap::new();
        let mut summary = Summary {
            delegations,
            meetings,
            ..Summary::default()
        };
        for tally in tallies.iter().filter(|t| t.observers > 0) {
            if tally.pending {
                summary.pending_observers += tally.observers;
            }
            if !tally.accredited {
                continue;
            }
            summary.accredited_observers += tally.observers;
            by_organization
                .entry(&tally.organization_id)
                .or_insert((&tally.organization_name, tally.organization_kind, 0))
                .2 += tally.observers;
            *by_country.entry(&tally.citizenship).or_default() += tally.observers;
        }
        summary.organizations = by_organization.len() as i64;
        summary.international_organizations = by_organization
            .values()
            .filter(|(_, kind, _)| kind.is_international())
            .count() as i64;
        summary.countries = by_country.len() as i64;
        summary.by_organization = by_organization
            .into_iter()
            .map(|(id, (name, _, n))| (id.to_owned(), name.to_owned(), n))
            .collect();
        summary
            .by_organization
            .sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
        summary.by_country = by_country
            .into_iter()
            .map(|(c, n)| (c.to_owned(), n))
            .collect();
        summary
            .by_country
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        summary
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

    fn tally(org: &str, kind: OrganizationKind, country: &str, state: &str, n: i64) -> Tally {
        Tally {
            organization_id: org.into(),
            organization_name: org.to_uppercase(),
            organization_kind: kind,
            citizenship: country.into(),
            accredited: state == "ACCREDITED",
            pending: state == "PENDING",
            observers: n,
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
    fn only_accredited_observers_count_and_breakdowns_are_largest_first() {
        use OrganizationKind::*;
        let tallies = [
            tally("sco", InternationalOrganization, "CN", "ACCREDITED", 3),
            tally("sco", InternationalOrganization, "RU", "ACCREDITED", 1),
            tally("cis-ipa", ParliamentaryAssembly, "RU", "ACCREDITED", 5),
            tally("cec-az", ForeignElectionBody, "AZ", "ACCREDITED", 2),
            tally("cec-az", ForeignElectionBody, "AZ", "PENDING", 7),
            tally("cec-md", ForeignElectionBody, "MD", "REVOKED", 4),
            tally("cec-mn", ForeignElectionBody, "MN", "REJECTED", 1),
            tally("osce", InternationalOrganization, "DE", "ACCREDITED", 0),
        ];
        let summary = Summary::from_tallies(&tallies, 3, 2);
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
