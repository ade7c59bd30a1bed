//! The rules of the official record (API.md, "The record is the official record"): once an
//! observer is decided its identity changes only by a recorded correction, an accredited
//! observer is revoked and never deleted. PostgreSQL holds the same rules
//! (`observers_identity_after_decision`, `observers_accredited_not_deleted`,
//! `observers_decided_kept`).

use super::{AccreditationState, ObserverFields};
use crate::domain::refusal::{Refusal, Rule};

/// A field of an observer that a caller sets: the update mask's paths. A new field must be
/// added here, and every `match` over it then tells where it must be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObserverField {
    GivenName,
    FamilyName,
    Citizenship,
    Organization,
    Delegation,
    Role,
    TravelDocumentNumber,
    DateOfBirth,
    Email,
    Phone,
    DeploymentRegion,
}

impl ObserverField {
    pub const ALL: [ObserverField; 11] = [
        ObserverField::GivenName,
        ObserverField::FamilyName,
        ObserverField::Citizenship,
        ObserverField::Organization,
        ObserverField::Delegation,
        ObserverField::Role,
        ObserverField::TravelDocumentNumber,
        ObserverField::DateOfBirth,
        ObserverField::Email,
        ObserverField::Phone,
        ObserverField::DeploymentRegion,
    ];

    /// The field's path in an update mask (snake_case, as the proto names it).
    pub fn path(self) -> &'static str {
        match self {
            ObserverField::GivenName => "given_name",
            ObserverField::FamilyName => "family_name",
            ObserverField::Citizenship => "citizenship",
            ObserverField::Organization => "organization",
            ObserverField::Delegation => "delegation",
            ObserverField::Role => "role",
            ObserverField::TravelDocumentNumber => "travel_document_number",
            ObserverField::DateOfBirth => "date_of_birth",
            ObserverField::Email => "email",
            ObserverField::Phone => "phone",
            ObserverField::DeploymentRegion => "deployment_region",
        }
    }

    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|field| field.path() == path)
    }

    /// Who the observer is: fixed once decided, changed only by a correction.
    pub fn is_identity(self) -> bool {
        match self {
            ObserverField::GivenName
            | ObserverField::FamilyName
            | ObserverField::Citizenship
            | ObserverField::TravelDocumentNumber
            | ObserverField::DateOfBirth
            | ObserverField::Organization => true,
            ObserverField::Delegation
            | ObserverField::Role
            | ObserverField::Email
            | ObserverField::Phone
            | ObserverField::DeploymentRegion => false,
        }
    }

    /// Personal data (API.md): erased once the election's retention period has passed.
    pub fn is_personal(self) -> bool {
        match self {
            ObserverField::TravelDocumentNumber
            | ObserverField::DateOfBirth
            | ObserverField::Email
            | ObserverField::Phone => true,
            ObserverField::GivenName
            | ObserverField::FamilyName
            | ObserverField::Citizenship
            | ObserverField::Organization
            | ObserverField::Delegation
            | ObserverField::Role
            | ObserverField::DeploymentRegion => false,
        }
    }

    /// The identity fields, for messages.
    pub fn identity_paths() -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|field| field.is_identity())
            .map(ObserverField::path)
            .collect()
    }
}

/// The fields whose values differ between `before` and `after`.
pub fn changed_fields(before: &ObserverFields, after: &ObserverFields) -> Vec<ObserverField> {
    ObserverField::ALL
        .into_iter()
        .filter(|field| match field {
            ObserverField::GivenName => before.given_name != after.given_name,
            ObserverField::FamilyName => before.family_name != after.family_name,
            ObserverField::Citizenship => before.citizenship != after.citizenship,
            ObserverField::Organization => before.organization_id != after.organization_id,
            ObserverField::Delegation => before.delegation_id != after.delegation_id,
            ObserverField::Role => before.role != after.role,
            ObserverField::TravelDocumentNumber => {
                before.travel_document_number != after.travel_document_number
            }
            ObserverField::DateOfBirth => before.date_of_birth != after.date_of_birth,
            ObserverField::Email => before.email != after.email,
            ObserverField::Phone => before.phone != after.phone,
            ObserverField::DeploymentRegion => before.deployment_region != after.deployment_region,
        })
        .collect()
}

/// UpdateObserver: once decided, an identity field that would change is refused
/// (OBSERVER_DECIDED, one violation per field); the rest stays updatable. A field sent again
/// with the value it has is no change.
pub fn check_update(
    observer: &str,
    state: AccreditationState,
    changed: &[ObserverField],
    field_prefix: &str,
) -> Result<(), Refusal> {
    let identity: Vec<ObserverField> = changed
        .iter()
        .copied()
        .filter(|f| f.is_identity())
        .collect();
    if !state.is_decided() || identity.is_empty() {
        return Ok(());
    }
    let refusal = Refusal::new(
        Rule::ObserverDecided,
        format!(
            "{observer} is {}: its identity ({}) changes only through CorrectObserver, with a reason",
            state.as_str(),
            ObserverField::identity_paths().join(", ")
        ),
    )
    .metadata("state", state.as_str());
    Err(identity.into_iter().fold(refusal, |refusal, field| {
        refusal.field(
            format!("{field_prefix}.{}", field.path()),
            "is part of a decided observer's identity",
        )
    }))
}

/// CorrectObserver's mask: identity fields only, at least one (INVALID_ARGUMENT otherwise,
/// one violation per other field).
pub fn check_correction_mask(mask: &[ObserverField]) -> Result<(), Refusal> {
    let others: Vec<ObserverField> = mask.iter().copied().filter(|f| !f.is_identity()).collect();
    if mask.is_empty() {
        return Err(Refusal::new(
            Rule::InvalidArgument,
            format!(
                "update_mask: name the identity fields to correct ({})",
                ObserverField::identity_paths().join(", ")
            ),
        )
        .field("update_mask", "must name at least one identity field"));
    }
    if others.is_empty() {
        return Ok(());
    }
    let refusal = Refusal::new(
        Rule::InvalidArgument,
        "CorrectObserver corrects identity fields only; change the others with UpdateObserver",
    );
    Err(others.into_iter().fold(refusal, |refusal, field| {
        refusal.field(
            "update_mask",
            format!("{} is not an identity field", field.path()),
        )
    }))
}

/// DeleteObserver: an ACCREDITED observer is revoked first, never silently deleted.
pub fn check_delete(observer: &str, state: AccreditationState) -> Result<(), Refusal> {
    if state == AccreditationState::Accredited {
        return Err(Refusal::new(
            Rule::ObserverAccredited,
            format!("{observer} is ACCREDITED: revoke the accreditation (with a reason) before deleting it"),
        )
        .metadata("state", state.as_str()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::country::CountryCode;
    use crate::domain::observer::identity::{PersonName, TravelDocumentNumber};
    use AccreditationState::*;

    fn fields() -> ObserverFields {
        ObserverFields {
            given_name: PersonName::parse("Anna").unwrap(),
            family_name: PersonName::parse("Lee").unwrap(),
            citizenship: CountryCode::parse("DE").unwrap(),
            organization_id: "osce".to_owned(),
            delegation_id: None,
            role: None,
            travel_document_number: Some(TravelDocumentNumber::parse("C01X00T47").unwrap()),
            date_of_birth: None,
            email: None,
            phone: None,
            deployment_region: String::new(),
        }
    }

    #[test]
    fn only_the_values_that_differ_are_changes() {
        let before = fields();
        let mut after = fields();
        assert!(changed_fields(&before, &after).is_empty());
        after.given_name = PersonName::parse("Hanna").unwrap();
        after.deployment_region = "Astana".to_owned();
        assert_eq!(
            changed_fields(&before, &after),
            vec![ObserverField::GivenName, ObserverField::DeploymentRegion]
        );
    }

    #[test]
    fn a_decided_observers_identity_is_refused_field_by_field() {
        for state in [Accredited, Rejected, Revoked] {
            let refusal = check_update(
                "o",
                state,
                &[
                    ObserverField::GivenName,
                    ObserverField::Citizenship,
                    ObserverField::Role,
                ],
                "observer",
            )
            .unwrap_err();
            assert_eq!(refusal.rule, Rule::ObserverDecided);
            let fields: Vec<&str> = refusal.fields.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(fields, ["observer.given_name", "observer.citizenship"]);
        }
    }

    #[test]
    fn contacts_delegation_and_role_stay_updatable_after_a_decision() {
        let others: Vec<ObserverField> = ObserverField::ALL
            .into_iter()
            .filter(|f| !f.is_identity())
            .collect();
        assert_eq!(others.len(), 5);
        assert!(check_update("o", Accredited, &others, "observer").is_ok());
        assert!(check_update("o", Pending, &ObserverField::ALL, "observer").is_ok());
    }

    #[test]
    fn corrections_touch_identity_fields_only() {
        assert!(check_correction_mask(&[ObserverField::FamilyName]).is_ok());
        let refusal =
            check_correction_mask(&[ObserverField::FamilyName, ObserverField::Email]).unwrap_err();
        assert_eq!(refusal.rule, Rule::InvalidArgument);
        assert_eq!(refusal.fields.len(), 1);
        assert!(check_correction_mask(&[]).is_err());
    }

    #[test]
    fn an_accredited_observer_is_revoked_not_deleted() {
        assert_eq!(
            check_delete("o", Accredited).unwrap_err().rule,
            Rule::ObserverAccredited
        );
        for state in [Pending, Rejected, Revoked] {
            assert!(check_delete("o", state).is_ok());
        }
    }

    #[test]
    fn mask_paths_round_trip() {
        for field in ObserverField::ALL {
            assert_eq!(ObserverField::from_path(field.path()), Some(field));
        }
        assert_eq!(ObserverField::from_path("accreditation"), None);
    }
}
