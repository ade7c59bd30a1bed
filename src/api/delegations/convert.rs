//! Delegations between the contract and the domain: requests parsed into validated fields
//! (every bad field named at once), update masks as fields, and delegations encoded back.

use chrono::{DateTime, Utc};

use crate::aip::etag;
use crate::aip::field_mask::UpdatableField;
use crate::api::skeleton::{Resource, SoftDeletable};
use crate::api::{optional_date, to_timestamp};
use crate::domain::date::format_date;
use crate::domain::delegation::{Delegation, DelegationFields, stay_in_order};
use crate::domain::names;
use crate::domain::observer::observer_name;
use crate::domain::text::{NAME, NOTE};
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;

/// Fields an update may not name: the server sets them, or they name the resource.
pub const OUTPUT_ONLY: &[&str] = &[
    "name",
    "member_count",
    "create_time",
    "update_time",
    "etag",
    "delete_time",
];

/// The fields of a delegation an update may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegationField {
    DisplayName,
    Organization,
    Head,
    ArrivalDate,
    DepartureDate,
    Notes,
}

impl UpdatableField for DelegationField {
    const ALL: &'static [Self] = &[
        DelegationField::DisplayName,
        DelegationField::Organization,
        DelegationField::Head,
        DelegationField::ArrivalDate,
        DelegationField::DepartureDate,
        DelegationField::Notes,
    ];

    fn path(self) -> &'static str {
        match self {
            DelegationField::DisplayName => "display_name",
            DelegationField::Organization => "organization",
            DelegationField::Head => "head",
            DelegationField::ArrivalDate => "arrival_date",
            DelegationField::DepartureDate => "departure_date",
            DelegationField::Notes => "notes",
        }
    }
}

impl DelegationField {
    /// Copies this field from `changes` into `merged`.
    pub fn apply(self, merged: &mut pb::Delegation, changes: &pb::Delegation) {
        match self {
            DelegationField::DisplayName => merged.display_name.clone_from(&changes.display_name),
            DelegationField::Organization => merged.organization.clone_from(&changes.organization),
            DelegationField::Head => merged.head.clone_from(&changes.head),
            DelegationField::ArrivalDate => merged.arrival_date.clone_from(&changes.arrival_date),
            DelegationField::DepartureDate => {
                merged.departure_date.clone_from(&changes.departure_date);
            }
            DelegationField::Notes => merged.notes.clone_from(&changes.notes),
        }
    }
}

impl Resource for pb::Delegation {
    const MESSAGE: &'static str = "Delegation";
    fn name(&self) -> &str {
        &self.name
    }
}

impl SoftDeletable for Delegation {
    fn delete_time(&self) -> Option<DateTime<Utc>> {
        self.delete_time
    }
    fn etag(&self) -> uuid::Uuid {
        self.etag
    }
}

/// `elections/{election}/delegations/{delegation}` as its two ids; INVALID_ARGUMENT on
/// `field`.
pub fn parse_name<'a>(name: &'a str, field: &str) -> Result<(&'a str, &'a str)> {
    names::parse_child(name, "elections", "delegations").map_err(|e| Error::invalid(field, e))
}

/// The caller-set fields of a delegation in `election_id`, recording every bad one.
pub fn parse_fields(
    delegation: &pb::Delegation,
    election_id: &str,
    violations: &mut Violations,
) -> Option<DelegationFields> {
    let display_name = violations.check(
        "delegation.display_name",
        NAME.parse(&delegation.display_name),
    );
    let notes = violations.check("delegation.notes", NOTE.parse(&delegation.notes));
    let organization_id = if delegation.organization.is_empty() {
        violations.add("delegation.organization", "is required");
        None
    } else {
        violations.check(
            "delegation.organization",
            names::parse_top_level(&delegation.organization, "organizations"),
        )
    };
    let head_observer_id = parse_head(&delegation.head, election_id, violations);
    let arrival_date = optional_date(
        violations,
        "delegation.arrival_date",
        &delegation.arrival_date,
    );
    let departure_date = optional_date(
        violations,
        "delegation.departure_date",
        &delegation.departure_date,
    );
    if !stay_in_order(arrival_date, departure_date) {
        violations.add(
            "delegation.departure_date",
            "must not be before arrival_date",
        );
    }
    Some(DelegationFields {
        display_name: display_name?,
        organization_id: organization_id?.to_owned(),
        head_observer_id: head_observer_id?,
        arrival_date,
        departure_date,
        notes: notes?,
    })
}

/// The head's observer id: `Some(None)` when there is no head, `None` when it is bad.
fn parse_head(
    head: &str,
    election_id: &str,
    violations: &mut Violations,
) -> Option<Option<String>> {
    if head.is_empty() {
        return Some(None);
    }
    match names::parse_child(head, "elections", "observers") {
        Ok((head_election, head)) if head_election == election_id => Some(Some(head.to_owned())),
        Ok(_) => {
            violations.add(
                "delegation.head",
                "must be an observer of the same election",
            );
            None
        }
        Err(e) => {
            violations.add("delegation.head", e);
            None
        }
    }
}

/// The delegation's fields with the masked ones taken from `changes`, parsed again as a
/// whole (an update must leave a valid delegation behind).
pub fn merge(
    current: &Delegation,
    changes: &pb::Delegation,
    masked: &[DelegationField],
    election_id: &str,
) -> Result<DelegationFields> {
    let mut merged = to_proto(current);
    for field in masked {
        field.apply(&mut merged, changes);
    }
    let mut violations = Violations::new();
    let fields = parse_fields(&merged, election_id, &mut violations);
    violations.finish()?;
    fields.ok_or_else(|| Error::internal(anyhow::anyhow!("validation passed without values")))
}

pub fn to_proto(delegation: &Delegation) -> pb::Delegation {
    pb::Delegation {
        name: delegation.name(),
        display_name: delegation.fields.display_name.clone(),
        organization: format!("organizations/{}", delegation.fields.organization_id),
        head: delegation
            .fields
            .head_observer_id
            .as_deref()
            .map(|head| observer_name(&delegation.election_id, head))
            .unwrap_or_default(),
        arrival_date: delegation
            .fields
            .arrival_date
            .map(format_date)
            .unwrap_or_default(),
        departure_date: delegation
            .fields
            .departure_date
            .map(format_date)
            .unwrap_or_default(),
        notes: delegation.fields.notes.clone(),
        member_count: delegation.member_count,
        create_time: Some(to_timestamp(delegation.create_time)),
        update_time: Some(to_timestamp(delegation.update_time)),
        etag: etag::format(delegation.etag),
        delete_time: delegation.delete_time.map(to_timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aip::field_mask::resolve_fields;

    fn valid() -> pb::Delegation {
        pb::Delegation {
            display_name: "SCO observation mission".into(),
            organization: "organizations/sco".into(),
            ..Default::default()
        }
    }

    fn refused_fields(delegation: &pb::Delegation) -> Vec<String> {
        let mut violations = Violations::new();
        let _ = parse_fields(delegation, "kz", &mut violations);
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
        let all: Vec<DelegationField> = resolve_fields(None, OUTPUT_ONLY).unwrap();
        let paths: Vec<_> = all.iter().map(|f| f.path()).collect();
        assert_eq!(
            paths,
            [
                "display_name",
                "organization",
                "head",
                "arrival_date",
                "departure_date",
                "notes"
            ]
        );
        let mask = prost_types::FieldMask {
            paths: vec!["member_count".into()],
        };
        assert!(resolve_fields::<DelegationField>(Some(&mask), OUTPUT_ONLY).is_err());
    }

    #[test]
    fn text_fields_are_normalized_and_control_characters_refused() {
        let mut violations = Violations::new();
        let fields = parse_fields(
            &pb::Delegation {
                display_name: "  SCO ".into(),
                notes: " line one\nline two ".into(),
                ..valid()
            },
            "kz",
            &mut violations,
        )
        .unwrap();
        assert!(violations.is_empty());
        assert_eq!(fields.display_name, "SCO");
        assert_eq!(fields.notes, "line one\nline two");

        let bad = pb::Delegation {
            display_name: "SCO\0".into(),
            notes: "bell\u{7}".into(),
            ..valid()
        };
        assert_eq!(
            refused_fields(&bad),
            ["delegation.display_name", "delegation.notes"]
        );
    }

    #[test]
    fn the_head_is_an_observer_of_the_same_election() {
        let other = pb::Delegation {
            head: "elections/other/observers/anna".into(),
            ..valid()
        };
        assert_eq!(refused_fields(&other), ["delegation.head"]);
        let mut violations = Violations::new();
        let same = pb::Delegation {
            head: "elections/kz/observers/anna".into(),
            ..valid()
        };
        let fields = parse_fields(&same, "kz", &mut violations).unwrap();
        assert_eq!(fields.head_observer_id.as_deref(), Some("anna"));
    }

    #[test]
    fn departure_before_arrival_is_named() {
        let bad = pb::Delegation {
            arrival_date: "2023-03-21".into(),
            departure_date: "2023-03-15".into(),
            ..valid()
        };
        assert_eq!(refused_fields(&bad), ["delegation.departure_date"]);
    }
}
