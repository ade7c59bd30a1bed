//! Organizations between the contract and the domain: requests parsed into validated fields
//! (every bad field named at once), update masks as fields, kinds matched exhaustively, and
//! organizations encoded back.

use crate::aip::etag;
use crate::aip::field_mask::UpdatableField;
use crate::api::skeleton::Resource;
use crate::api::to_timestamp;
use crate::domain::country::CountryCode;
use crate::domain::names;
use crate::domain::organization::{
    ABBREVIATION, Organization, OrganizationFields, OrganizationKind,
};
use crate::domain::text::NAME;
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;

/// Fields an update may not name: the server sets them, or they name the resource.
pub const OUTPUT_ONLY: &[&str] = &["name", "create_time", "update_time", "etag"];

/// The fields of an organization an update may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationField {
    DisplayName,
    Abbreviation,
    Kind,
    Country,
}

impl UpdatableField for OrganizationField {
    const ALL: &'static [Self] = &[
        OrganizationField::DisplayName,
        OrganizationField::Abbreviation,
        OrganizationField::Kind,
        OrganizationField::Country,
    ];

    fn path(self) -> &'static str {
        match self {
            OrganizationField::DisplayName => "display_name",
            OrganizationField::Abbreviation => "abbreviation",
            OrganizationField::Kind => "kind",
            OrganizationField::Country => "country",
        }
    }
}

impl OrganizationField {
    /// Copies this field from `changes` into `merged`.
    pub fn apply(self, merged: &mut pb::Organization, changes: &pb::Organization) {
        match self {
            OrganizationField::DisplayName => merged.display_name.clone_from(&changes.display_name),
            OrganizationField::Abbreviation => {
                merged.abbreviation.clone_from(&changes.abbreviation);
            }
            OrganizationField::Kind => merged.kind = changes.kind,
            OrganizationField::Country => merged.country.clone_from(&changes.country),
        }
    }
}

impl Resource for pb::Organization {
    const MESSAGE: &'static str = "Organization";
    fn name(&self) -> &str {
        &self.name
    }
}

/// `organizations/{organization}` as its id; INVALID_ARGUMENT on `field`.
pub fn parse_name<'a>(name: &'a str, field: &str) -> Result<&'a str> {
    names::parse_top_level(name, "organizations").map_err(|e| Error::invalid(field, e))
}

pub fn kind_from_proto(kind: pb::OrganizationKind) -> Option<OrganizationKind> {
    match kind {
        pb::OrganizationKind::Unspecified => None,
        pb::OrganizationKind::InternationalOrganization => {
            Some(OrganizationKind::InternationalOrganization)
        }
        pb::OrganizationKind::ParliamentaryAssembly => {
            Some(OrganizationKind::ParliamentaryAssembly)
        }
        pb::OrganizationKind::ForeignElectionBody => Some(OrganizationKind::ForeignElectionBody),
        pb::OrganizationKind::ForeignGovernment => Some(OrganizationKind::ForeignGovernment),
        pb::OrganizationKind::NonGovernmentalOrganization => {
            Some(OrganizationKind::NonGovernmentalOrganization)
        }
    }
}

pub fn kind_to_proto(kind: OrganizationKind) -> pb::OrganizationKind {
    match kind {
        OrganizationKind::InternationalOrganization => {
            pb::OrganizationKind::InternationalOrganization
        }
        OrganizationKind::ParliamentaryAssembly => pb::OrganizationKind::ParliamentaryAssembly,
        OrganizationKind::ForeignElectionBody => pb::OrganizationKind::ForeignElectionBody,
        OrganizationKind::ForeignGovernment => pb::OrganizationKind::ForeignGovernment,
        OrganizationKind::NonGovernmentalOrganization => {
            pb::OrganizationKind::NonGovernmentalOrganization
        }
    }
}

/// The caller-set fields of an organization, recording every bad one.
pub fn parse_fields(
    organization: &pb::Organization,
    violations: &mut Violations,
) -> Option<OrganizationFields> {
    let display_name = violations.check(
        "organization.display_name",
        NAME.parse(&organization.display_name),
    );
    let abbreviation = violations.check(
        "organization.abbreviation",
        ABBREVIATION.parse(&organization.abbreviation),
    );
    // An unknown number is as unset as UNSPECIFIED.
    let kind = pb::OrganizationKind::try_from(organization.kind)
        .ok()
        .and_then(kind_from_proto);
    if kind.is_none() {
        violations.add(
            "organization.kind",
            "is required: one of INTERNATIONAL_ORGANIZATION, PARLIAMENTARY_ASSEMBLY, \
             FOREIGN_ELECTION_BODY, FOREIGN_GOVERNMENT, NON_GOVERNMENTAL_ORGANIZATION",
        );
    }
    let country = parse_country(kind, &organization.country, violations);
    Some(OrganizationFields {
        display_name: display_name?,
        abbreviation: abbreviation?,
        kind: kind?,
        country: country?,
    })
}

/// The country of an organization of `kind`: `Some(None)` when it has none, `None` when the
/// field is bad.
fn parse_country(
    kind: Option<OrganizationKind>,
    country: &str,
    violations: &mut Violations,
) -> Option<Option<CountryCode>> {
    let field = "organization.country";
    if let Some(kind) = kind
        && let Err(why) = kind.check_country(!country.is_empty())
    {
        violations.add(field, why);
        return None;
    }
    if country.is_empty() {
        return Some(None);
    }
    violations
        .check(field, CountryCode::parse(country))
        .map(Some)
}

/// The organization's fields with the masked ones taken from `changes`, parsed again as a
/// whole (an update must leave a valid organization behind).
pub fn merge(
    current: &Organization,
    changes: &pb::Organization,
    masked: &[OrganizationField],
) -> Result<OrganizationFields> {
    let mut merged = to_proto(current);
    for field in masked {
        field.apply(&mut merged, changes);
    }
    let mut violations = Violations::new();
    let fields = parse_fields(&merged, &mut violations);
    violations.finish()?;
    fields.ok_or_else(|| Error::internal(anyhow::anyhow!("validation passed without values")))
}

pub fn to_proto(organization: &Organization) -> pb::Organization {
    pb::Organization {
        name: organization.name(),
        display_name: organization.fields.display_name.clone(),
        abbreviation: organization.fields.abbreviation.clone(),
        kind: kind_to_proto(organization.fields.kind).into(),
        country: organization
            .fields
            .country
            .map(|c| c.to_string())
            .unwrap_or_default(),
        create_time: Some(to_timestamp(organization.create_time)),
        update_time: Some(to_timestamp(organization.update_time)),
        etag: etag::format(organization.etag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aip::field_mask::resolve_fields;

    fn valid() -> pb::Organization {
        pb::Organization {
            display_name: "CIS Interparliamentary Assembly".into(),
            abbreviation: "CIS IPA".into(),
            kind: pb::OrganizationKind::ParliamentaryAssembly.into(),
            ..Default::default()
        }
    }

    fn refused_fields(organization: &pb::Organization) -> Vec<String> {
        let mut violations = Violations::new();
        let _ = parse_fields(organization, &mut violations);
        violations
            .finish()
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn an_empty_mask_updates_every_field_of_the_contract() {
        let all: Vec<OrganizationField> = resolve_fields(None, OUTPUT_ONLY).unwrap();
        let paths: Vec<_> = all.iter().map(|f| f.path()).collect();
        assert_eq!(paths, ["display_name", "abbreviation", "kind", "country"]);
    }

    #[test]
    fn kinds_round_trip_exhaustively() {
        for kind in OrganizationKind::ALL {
            assert_eq!(kind_from_proto(kind_to_proto(kind)), Some(kind));
            assert_eq!(kind_to_proto(kind).as_str_name(), kind.as_str());
        }
        assert_eq!(kind_from_proto(pb::OrganizationKind::Unspecified), None);
    }

    #[test]
    fn text_fields_are_normalized_and_control_characters_refused() {
        let mut violations = Violations::new();
        let fields = parse_fields(
            &pb::Organization {
                display_name: " CIS IPA\u{301} ".into(),
                ..valid()
            },
            &mut violations,
        )
        .unwrap();
        assert_eq!(fields.display_name, "CIS IP\u{c1}");
        let bad = pb::Organization {
            display_name: "CIS\0".into(),
            abbreviation: "C\u{200B}IS".into(),
            ..valid()
        };
        assert_eq!(
            refused_fields(&bad),
            ["organization.display_name", "organization.abbreviation"]
        );
    }

    #[test]
    fn a_country_belongs_to_foreign_bodies_and_governments_only() {
        let government = pb::Organization {
            kind: pb::OrganizationKind::ForeignGovernment.into(),
            ..valid()
        };
        assert_eq!(refused_fields(&government), ["organization.country"]);
        let assembly = pb::Organization {
            country: "AZ".into(),
            ..valid()
        };
        assert_eq!(refused_fields(&assembly), ["organization.country"]);
        let mut violations = Violations::new();
        let fields = parse_fields(
            &pb::Organization {
                country: "AZ".into(),
                ..government
            },
            &mut violations,
        )
        .unwrap();
        assert_eq!(fields.country.map(|c| c.to_string()), Some("AZ".to_owned()));
    }
}
