//! Sending organizations, shared by all elections.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::country::CountryCode;
use super::text::{self, TextKind};

/// An abbreviation ("CIS IPA", "OSCE/ODIHR"): a label, and short.
pub const ABBREVIATION: TextKind = TextKind {
    max_chars: 32,
    ..text::LABEL
};

/// What kind of body sends observers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationKind {
    InternationalOrganization,
    ParliamentaryAssembly,
    ForeignElectionBody,
    ForeignGovernment,
    NonGovernmentalOrganization,
}

impl OrganizationKind {
    /// The stored (and filter) names, in the order of [`OrganizationKind::ALL`].
    pub const NAMES: &[&str] = &[
        "INTERNATIONAL_ORGANIZATION",
        "PARLIAMENTARY_ASSEMBLY",
        "FOREIGN_ELECTION_BODY",
        "FOREIGN_GOVERNMENT",
        "NON_GOVERNMENTAL_ORGANIZATION",
    ];
    pub const ALL: [OrganizationKind; 5] = [
        OrganizationKind::InternationalOrganization,
        OrganizationKind::ParliamentaryAssembly,
        OrganizationKind::ForeignElectionBody,
        OrganizationKind::ForeignGovernment,
        OrganizationKind::NonGovernmentalOrganization,
    ];

    /// The stored (and filter) name, as the contract spells the enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            OrganizationKind::InternationalOrganization => "INTERNATIONAL_ORGANIZATION",
            OrganizationKind::ParliamentaryAssembly => "PARLIAMENTARY_ASSEMBLY",
            OrganizationKind::ForeignElectionBody => "FOREIGN_ELECTION_BODY",
            OrganizationKind::ForeignGovernment => "FOREIGN_GOVERNMENT",
            OrganizationKind::NonGovernmentalOrganization => "NON_GOVERNMENTAL_ORGANIZATION",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Foreign commissions and governments belong to a country; the other kinds do not.
    pub fn has_country(self) -> bool {
        matches!(
            self,
            OrganizationKind::ForeignElectionBody | OrganizationKind::ForeignGovernment
        )
    }

    /// Foreign election bodies and governments name their country, the other kinds none:
    /// the description of what is wrong with `organization.country` otherwise.
    pub fn check_country(self, country_given: bool) -> Result<(), &'static str> {
        match (self.has_country(), country_given) {
            (true, false) => Err("is required for a foreign election body or government"),
            (false, true) => {
                Err("must be empty unless kind is FOREIGN_ELECTION_BODY or FOREIGN_GOVERNMENT")
            }
            (true, true) | (false, false) => Ok(()),
        }
    }

    /// Counted among "international organizations" in the headline figures (BRIEF).
    pub fn is_international(self) -> bool {
        matches!(
            self,
            OrganizationKind::InternationalOrganization | OrganizationKind::ParliamentaryAssembly
        )
    }
}

/// The fields of an organization a caller sets, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationFields {
    pub display_name: String,
    pub abbreviation: String,
    pub kind: OrganizationKind,
    /// Set exactly when `kind.has_country()`.
    pub country: Option<CountryCode>,
}

/// A stored organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: String,
    pub fields: OrganizationFields,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: Uuid,
}

impl Organization {
    pub fn name(&self) -> String {
        format!("organizations/{}", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_in_the_order_of_the_filter_names() {
        let names: Vec<_> = OrganizationKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, OrganizationKind::NAMES);
        for kind in OrganizationKind::ALL {
            assert_eq!(OrganizationKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn only_foreign_bodies_and_governments_name_a_country() {
        use OrganizationKind::*;
        for kind in [ForeignElectionBody, ForeignGovernment] {
            assert!(kind.check_country(true).is_ok());
            assert!(kind.check_country(false).is_err());
        }
        for kind in [
            InternationalOrganization,
            ParliamentaryAssembly,
            NonGovernmentalOrganization,
        ] {
            assert!(kind.check_country(false).is_ok());
            assert!(kind.check_country(true).is_err());
        }
    }

    #[test]
    fn abbreviations_are_short_optional_labels() {
        assert_eq!(ABBREVIATION.parse(" CIS IPA ").unwrap(), "CIS IPA");
        assert_eq!(ABBREVIATION.parse("").unwrap(), "");
        assert!(ABBREVIATION.parse(&"x".repeat(33)).is_err());
        assert!(ABBREVIATION.parse("CIS\u{7}IPA").is_err());
    }
}
