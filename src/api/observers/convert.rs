//! Between the contract's `Observer` and the domain's: parsing every caller-set field into
//! its domain type (each bad field a violation under its request path), and encoding back.
//! Enum conversions are exhaustive `match`es, so a new value fails to compile until handled.

use chrono::NaiveDate;

use crate::aip::etag;
use crate::aip::field_mask::UpdatableField;
use crate::api::skeleton::{Resource, SoftDeletable};
use crate::api::to_timestamp;
use crate::auth::Caller;
use crate::domain::country::CountryCode;
use crate::domain::date::format_date;
use crate::domain::delegation::delegation_name;
use crate::domain::names;
use crate::domain::observer::identity::{
    DateOfBirth, Email, PersonName, Phone, TravelDocumentNumber,
};
use crate::domain::observer::record::ObserverField;
use crate::domain::observer::{AccreditationState, Observer, ObserverFields, ObserverRole};
use crate::domain::text;
use crate::error::Violations;
use crate::pb::v1 as pb;

impl Resource for pb::Observer {
    const MESSAGE: &'static str = "Observer";

    fn name(&self) -> &str {
        &self.name
    }
}

impl SoftDeletable for Observer {
    fn delete_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.delete_time
    }

    fn etag(&self) -> uuid::Uuid {
        self.etag
    }
}

impl UpdatableField for ObserverField {
    const ALL: &'static [Self] = &ObserverField::ALL;

    fn path(self) -> &'static str {
        ObserverField::path(self)
    }
}

/// Paths an update mask may not name: the server sets them.
pub const OUTPUT_ONLY: &[&str] = &[
    "name",
    "accreditation",
    "accreditation.state",
    "accreditation.number",
    "accreditation.decide_time",
    "accreditation.reason",
    "accreditation.decision",
    "create_time",
    "update_time",
    "etag",
    "delete_time",
    "personal_data_erase_time",
];

/// An observer's fields as a request gives them, parsed; `None` when any is bad (each bad
/// field recorded in `violations` under `at`, e.g. `requests[3].observer`).
pub struct ParsedObserver {
    pub fields: ObserverFields,
    /// The election named in the `delegation` field, when one was given.
    pub delegation_election: Option<String>,
}

/// `erased`: the observer's personal data was erased, so an empty travel document number is
/// what it has (any value given is refused before, by `domain::retention::check_update`).
pub fn parse_observer(
    observer: &pb::Observer,
    at: &str,
    today: NaiveDate,
    erased: bool,
    violations: &mut Violations,
) -> Option<ParsedObserver> {
    let field = |name: &str| format!("{at}.{name}");
    let given_name = violations.check(
        &field("given_name"),
        PersonName::parse(&observer.given_name),
    );
    let family_name = violations.check(
        &field("family_name"),
        PersonName::parse(&observer.family_name),
    );
    let citizenship = required(&observer.citizenship, &field("citizenship"), violations)
        .and_then(|code| violations.check(&field("citizenship"), CountryCode::parse(code)));
    let organization = required(&observer.organization, &field("organization"), violations)
        .and_then(|name| {
            violations.check(
                &field("organization"),
                names::parse_top_level(name, "organizations"),
            )
        });
    let delegation = optional(&observer.delegation, |name| {
        violations.check(
            &field("delegation"),
            names::parse_child(name, "elections", "delegations"),
        )
    });
    let role = violations.check(&field("role"), role_from_proto(observer.role));
    let document = if erased && observer.travel_document_number.is_empty() {
        Some(None)
    } else {
        violations
            .check(
                &field("travel_document_number"),
                TravelDocumentNumber::parse(&observer.travel_document_number),
            )
            .map(Some)
    };
    let date_of_birth = optional(&observer.date_of_birth, |value| {
        violations.check(&field("date_of_birth"), DateOfBirth::parse(value, today))
    });
    let contacts = parse_contacts(observer, at, violations);
    let (delegation, (email, phone, region)) = (delegation?, contacts?);
    Some(ParsedObserver {
        delegation_election: delegation.map(|(election, _)| election.to_owned()),
        fields: ObserverFields {
            given_name: given_name?,
            family_name: family_name?,
            citizenship: citizenship?,
            organization_id: organization?.to_owned(),
            delegation_id: delegation.map(|(_, id)| id.to_owned()),
            role: role?,
            travel_document_number: document?,
            date_of_birth: date_of_birth?,
            email,
            phone,
            deployment_region: region,
        },
    })
}

/// The fields that stay updatable after a decision: e-mail, phone, deployment region.
fn parse_contacts(
    observer: &pb::Observer,
    at: &str,
    violations: &mut Violations,
) -> Option<(Option<Email>, Option<Phone>, String)> {
    let email = optional(&observer.email, |value| {
        violations.check(&format!("{at}.email"), Email::parse(value))
    });
    let phone = optional(&observer.phone, |value| {
        violations.check(&format!("{at}.phone"), Phone::parse(value))
    });
    let region = violations.check(
        &format!("{at}.deployment_region"),
        text::LABEL.parse(&observer.deployment_region),
    );
    Some((email?, phone?, region?))
}

/// A required reference field: "is required" when empty.
fn required<'a>(value: &'a str, field: &str, violations: &mut Violations) -> Option<&'a str> {
    if value.trim().is_empty() {
        violations.add(field, "is required");
        None
    } else {
        Some(value)
    }
}

/// An optional field: `Some(None)` when empty (after trimming), `Some(Some(v))` when it
/// parses, `None` when it does not.
fn optional<'a, T>(value: &'a str, parse: impl FnOnce(&'a str) -> Option<T>) -> Option<Option<T>> {
    if value.trim().is_empty() {
        Some(None)
    } else {
        parse(value).map(Some)
    }
}

/// Copies the masked fields of `changes` onto the message form of `current`, so that fields
/// outside the mask need not parse (an update of `email` does not re-validate a name).
pub fn merge_message(
    current: &pb::Observer,
    changes: &pb::Observer,
    mask: &[ObserverField],
) -> pb::Observer {
    let mut merged = current.clone();
    for field in mask {
        match field {
            ObserverField::GivenName => merged.given_name.clone_from(&changes.given_name),
            ObserverField::FamilyName => merged.family_name.clone_from(&changes.family_name),
            ObserverField::Citizenship => merged.citizenship.clone_from(&changes.citizenship),
            ObserverField::Organization => merged.organization.clone_from(&changes.organization),
            ObserverField::Delegation => merged.delegation.clone_from(&changes.delegation),
            ObserverField::Role => merged.role = changes.role,
            ObserverField::TravelDocumentNumber => merged
                .travel_document_number
                .clone_from(&changes.travel_document_number),
            ObserverField::DateOfBirth => merged.date_of_birth.clone_from(&changes.date_of_birth),
            ObserverField::Email => merged.email.clone_from(&changes.email),
            ObserverField::Phone => merged.phone.clone_from(&changes.phone),
            ObserverField::DeploymentRegion => merged
                .deployment_region
                .clone_from(&changes.deployment_region),
        }
    }
    merged
}

pub fn role_from_proto(value: i32) -> Result<Option<ObserverRole>, String> {
    match pb::ObserverRole::try_from(value) {
        Ok(pb::ObserverRole::Unspecified) => Ok(None),
        Ok(pb::ObserverRole::LongTermObserver) => Ok(Some(ObserverRole::LongTermObserver)),
        Ok(pb::ObserverRole::ShortTermObserver) => Ok(Some(ObserverRole::ShortTermObserver)),
        Ok(pb::ObserverRole::Expert) => Ok(Some(ObserverRole::Expert)),
        Ok(pb::ObserverRole::Interpreter) => Ok(Some(ObserverRole::Interpreter)),
        Ok(pb::ObserverRole::Coordinator) => Ok(Some(ObserverRole::Coordinator)),
        Err(_) => Err(format!("{value} is not an ObserverRole")),
    }
}

pub fn role_to_proto(role: Option<ObserverRole>) -> pb::ObserverRole {
    match role {
        None => pb::ObserverRole::Unspecified,
        Some(ObserverRole::LongTermObserver) => pb::ObserverRole::LongTermObserver,
        Some(ObserverRole::ShortTermObserver) => pb::ObserverRole::ShortTermObserver,
        Some(ObserverRole::Expert) => pb::ObserverRole::Expert,
        Some(ObserverRole::Interpreter) => pb::ObserverRole::Interpreter,
        Some(ObserverRole::Coordinator) => pb::ObserverRole::Coordinator,
    }
}

pub fn state_to_proto(state: AccreditationState) -> pb::AccreditationState {
    match state {
        AccreditationState::Pending => pb::AccreditationState::Pending,
        AccreditationState::Accredited => pb::AccreditationState::Accredited,
        AccreditationState::Rejected => pb::AccreditationState::Rejected,
        AccreditationState::Revoked => pb::AccreditationState::Revoked,
    }
}

pub fn to_proto(observer: &Observer) -> pb::Observer {
    into_proto(observer.clone())
}

/// Moves the observer's strings into the message: reads answer with what they decoded.
pub fn into_proto(observer: Observer) -> pb::Observer {
    let name = observer.name();
    let fields = observer.fields;
    pb::Observer {
        name,
        given_name: fields.given_name.into_string(),
        family_name: fields.family_name.into_string(),
        citizenship: fields.citizenship.to_string(),
        organization: format!("organizations/{}", fields.organization_id),
        delegation: fields
            .delegation_id
            .as_deref()
            .map(|d| delegation_name(&observer.election_id, d))
            .unwrap_or_default(),
        role: role_to_proto(fields.role).into(),
        travel_document_number: fields
            .travel_document_number
            .map(TravelDocumentNumber::into_string)
            .unwrap_or_default(),
        date_of_birth: fields
            .date_of_birth
            .map(|d| format_date(d.date()))
            .unwrap_or_default(),
        email: fields.email.map(Email::into_string).unwrap_or_default(),
        phone: fields.phone.map(Phone::into_string).unwrap_or_default(),
        deployment_region: fields.deployment_region,
        accreditation: Some(pb::Accreditation {
            state: state_to_proto(observer.accreditation.state).into(),
            number: observer.accreditation.number.unwrap_or_default(),
            decide_time: observer.accreditation.decide_time.map(to_timestamp),
            reason: observer.accreditation.reason,
            decision: observer.accreditation.decision,
        }),
        create_time: Some(to_timestamp(observer.create_time)),
        update_time: Some(to_timestamp(observer.update_time)),
        etag: etag::format(observer.etag),
        delete_time: observer.delete_time.map(to_timestamp),
        personal_data_erase_time: observer.personal_data_erase_time.map(to_timestamp),
    }
}

/// The fields of the mask to which `changes` gives a value: an empty value sets nothing
/// that could be personal data.
pub fn fields_given(changes: &pb::Observer, mask: &[ObserverField]) -> Vec<ObserverField> {
    mask.iter()
        .copied()
        .filter(|field| match field {
            ObserverField::GivenName => !changes.given_name.is_empty(),
            ObserverField::FamilyName => !changes.family_name.is_empty(),
            ObserverField::Citizenship => !changes.citizenship.is_empty(),
            ObserverField::Organization => !changes.organization.is_empty(),
            ObserverField::Delegation => !changes.delegation.is_empty(),
            ObserverField::Role => changes.role != 0,
            ObserverField::TravelDocumentNumber => {
                !changes.travel_document_number.trim().is_empty()
            }
            ObserverField::DateOfBirth => !changes.date_of_birth.trim().is_empty(),
            ObserverField::Email => !changes.email.trim().is_empty(),
            ObserverField::Phone => !changes.phone.trim().is_empty(),
            ObserverField::DeploymentRegion => !changes.deployment_region.is_empty(),
        })
        .collect()
}

/// Clears the personal data of an observer (BRIEF): travel document, birth date, contacts.
pub fn redact(observer: &mut pb::Observer) {
    observer.travel_document_number.clear();
    observer.date_of_birth.clear();
    observer.email.clear();
    observer.phone.clear();
}

/// The observer as this caller may see it.
pub fn for_caller(caller: &Caller, mut observer: pb::Observer) -> pb::Observer {
    if !caller.reads_personal_data() {
        redact(&mut observer);
    }
    observer
}

/// The observers of a batch's response as this caller may see them.
pub fn all_for_caller(caller: &Caller, observers: Vec<pb::Observer>) -> Vec<pb::Observer> {
    observers
        .into_iter()
        .map(|o| for_caller(caller, o))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_role_maps_to_a_domain_role_and_back() {
        for value in 0..=5 {
            let role = role_from_proto(value).unwrap();
            assert_eq!(role_to_proto(role) as i32, value);
        }
        assert!(role_from_proto(6).is_err());
    }
}
