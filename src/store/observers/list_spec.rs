//! What ListObservers filters and orders by, and how the filter's references read.

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{ListSpec, SortField};
use crate::domain::names;
use crate::domain::observer::identity::TravelDocumentNumber;
use crate::domain::observer::{AccreditationState, ObserverRole};

/// A document number literal in the form it is stored in.
fn canonical_document(text: &str) -> Option<String> {
    TravelDocumentNumber::parse(text)
        .ok()
        .map(TravelDocumentNumber::into_string)
}

fn organization_key(name: &str) -> Option<String> {
    names::parse_top_level(name, "organizations")
        .ok()
        .map(str::to_owned)
}

fn delegation_key(name: &str) -> Option<String> {
    names::parse_child(name, "elections", "delegations")
        .ok()
        .map(|(_, id)| id.to_owned())
}

/// What ListObservers filters and orders by; each has an index on a million rows.
pub static LIST_SPEC: ListSpec = ListSpec {
    collection: "observers",
    filter_fields: &[
        FilterField {
            path: "citizenship",
            column: "citizenship",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "organization",
            column: "organization_id",
            field_type: FieldType::Reference(organization_key),
            nullable: false,
        },
        FilterField {
            path: "delegation",
            column: "delegation_id",
            field_type: FieldType::Reference(delegation_key),
            nullable: true,
        },
        FilterField {
            path: "role",
            column: "role",
            field_type: FieldType::Enum(ObserverRole::NAMES),
            nullable: true,
        },
        FilterField {
            path: "accreditation.state",
            column: "accreditation_state",
            field_type: FieldType::Enum(AccreditationState::NAMES),
            nullable: false,
        },
        FilterField {
            path: "accreditation.number",
            column: "accreditation_number",
            field_type: FieldType::Text,
            nullable: true,
        },
        FilterField {
            path: "family_name",
            column: "family_name",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "given_name",
            column: "given_name",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "deployment_region",
            column: "deployment_region",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "create_time",
            column: "create_time",
            field_type: FieldType::Timestamp,
            nullable: false,
        },
        FilterField {
            path: "update_time",
            column: "update_time",
            field_type: FieldType::Timestamp,
            nullable: false,
        },
    ],
    personal_filter_fields: &[
        FilterField {
            path: "travel_document_number",
            column: "travel_document_number",
            field_type: FieldType::Canonical(canonical_document),
            nullable: false,
        },
        FilterField {
            path: "date_of_birth",
            column: "date_of_birth",
            field_type: FieldType::Date,
            nullable: true,
        },
        FilterField {
            path: "email",
            column: "email",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "phone",
            column: "phone",
            field_type: FieldType::Text,
            nullable: false,
        },
    ],
    sort_fields: &[
        SortField {
            path: "create_time",
            column: "create_time",
        },
        SortField {
            path: "update_time",
            column: "update_time",
        },
        SortField {
            path: "family_name",
            column: "family_name",
        },
        SortField {
            path: "given_name",
            column: "given_name",
        },
        SortField {
            path: "citizenship",
            column: "citizenship",
        },
    ],
    tiebreak: SortField {
        path: "name",
        column: "id",
    },
    default_order_by: "create_time",
};
