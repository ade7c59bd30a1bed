//! Headline figures of an election, as the press office quotes them.

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
