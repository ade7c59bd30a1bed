//! Sending organizations, shared by all elections.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::country::CountryCode;

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
