//! Observers: who they are, the accreditation state machine, and the rules of the official
//! record. Pure code over parsed values; the store loads the facts, PostgreSQL holds the
//! same rules again.

pub mod accreditation;
pub mod identity;
pub mod record;
pub mod registration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::country::CountryCode;
pub use accreditation::{Accreditation, AccreditationState};
use identity::{DateOfBirth, Email, PersonName, Phone, TravelDocumentNumber};

/// What an observer does on the mission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserverRole {
    LongTermObserver,
    ShortTermObserver,
    Expert,
    Interpreter,
    Coordinator,
}

impl ObserverRole {
    /// The names the contract, filters and the database use.
    pub const NAMES: &[&str] = &[
        "LONG_TERM_OBSERVER",
        "SHORT_TERM_OBSERVER",
        "EXPERT",
        "INTERPRETER",
        "COORDINATOR",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObserverRole::LongTermObserver => "LONG_TERM_OBSERVER",
            ObserverRole::ShortTermObserver => "SHORT_TERM_OBSERVER",
            ObserverRole::Expert => "EXPERT",
            ObserverRole::Interpreter => "INTERPRETER",
            ObserverRole::Coordinator => "COORDINATOR",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "LONG_TERM_OBSERVER" => Some(ObserverRole::LongTermObserver),
            "SHORT_TERM_OBSERVER" => Some(ObserverRole::ShortTermObserver),
            "EXPERT" => Some(ObserverRole::Expert),
            "INTERPRETER" => Some(ObserverRole::Interpreter),
            "COORDINATOR" => Some(ObserverRole::Coordinator),
            _ => None,
        }
    }
}

/// The fields of an observer a caller sets, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ObserverFields {
    pub given_name: PersonName,
    pub family_name: PersonName,
    pub citizenship: CountryCode,
    pub organization_id: String,
    pub delegation_id: Option<String>,
    pub role: Option<ObserverRole>,
    /// `None` only once the observer's personal data was erased (`domain::retention`).
    pub travel_document_number: Option<TravelDocumentNumber>,
    pub date_of_birth: Option<DateOfBirth>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    /// A one-line label (`text::LABEL`), empty when unknown.
    pub deployment_region: String,
}

/// A stored observer.
#[derive(Debug, Clone, PartialEq)]
pub struct Observer {
    pub election_id: String,
    pub id: String,
    pub fields: ObserverFields,
    pub accreditation: Accreditation,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: Uuid,
    pub delete_time: Option<DateTime<Utc>>,
    /// When the observer's personal data was erased with its election's; `None` while kept.
    pub personal_data_erase_time: Option<DateTime<Utc>>,
}

impl Observer {
    /// A new registration as it is stored: pending, never decided, deleted or erased, created
    /// and last updated `at` (its transaction's time), with `etag`.
    pub fn registered(
        election_id: &str,
        id: String,
        fields: ObserverFields,
        at: DateTime<Utc>,
        etag: Uuid,
    ) -> Observer {
        Observer {
            election_id: election_id.to_owned(),
            id,
            fields,
            accreditation: Accreditation::pending(),
            create_time: at,
            update_time: at,
            etag,
            delete_time: None,
            personal_data_erase_time: None,
        }
    }

    pub fn name(&self) -> String {
        observer_name(&self.election_id, &self.id)
    }
}

pub fn observer_name(election_id: &str, id: &str) -> String {
    format!("elections/{election_id}/observers/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for name in ObserverRole::NAMES {
            assert_eq!(ObserverRole::parse(name).unwrap().as_str(), *name);
        }
        assert_eq!(ObserverRole::parse("expert"), None);
    }

    #[test]
    fn a_registration_is_pending_and_undecided() {
        let fields = ObserverFields {
            given_name: PersonName::from_stored("Ana".into()),
            family_name: PersonName::from_stored("Ruiz".into()),
            citizenship: CountryCode::parse("ES").unwrap(),
            organization_id: "osce".into(),
            delegation_id: None,
            role: None,
            travel_document_number: Some(TravelDocumentNumber::from_stored("X1234567".into())),
            date_of_birth: None,
            email: None,
            phone: None,
            deployment_region: String::new(),
        };
        let at = Utc::now();
        let etag = Uuid::new_v4();
        let observer = Observer::registered("kz-2023", "ana".into(), fields.clone(), at, etag);
        assert_eq!(observer.name(), "elections/kz-2023/observers/ana");
        assert_eq!(observer.fields, fields);
        assert_eq!(observer.accreditation, Accreditation::pending());
        assert_eq!((observer.create_time, observer.update_time), (at, at));
        assert_eq!(observer.etag, etag);
        assert_eq!(observer.delete_time, None);
        assert_eq!(observer.personal_data_erase_time, None);
    }
}
