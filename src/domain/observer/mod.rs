//! Observers and their accreditation.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::country::CountryCode;

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
    pub const NAMES: &[&str] = &[
        "LONG_TERM_OBSERVER",
        "SHORT_TERM_OBSERVER",
        "EXPERT",
        "INTERPRETER",
        "COORDINATOR",
    ];
    const ALL: [ObserverRole; 5] = [
        ObserverRole::LongTermObserver,
        ObserverRole::ShortTermObserver,
        ObserverRole::Expert,
        ObserverRole::Interpreter,
        ObserverRole::Coordinator,
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

/// Where an observer stands in the accreditation state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccreditationState {
    Pending,
    Accredited,
    Rejected,
    Revoked,
}

impl AccreditationState {
    pub const NAMES: &[&str] = &["PENDING", "ACCREDITED", "REJECTED", "REVOKED"];
    const ALL: [AccreditationState; 4] = [
        AccreditationState::Pending,
        AccreditationState::Accredited,
        AccreditationState::Rejected,
        AccreditationState::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// BRIEF: `PENDING → ACCREDITED | REJECTED`, `ACCREDITED → REVOKED`; nothing else.
    pub fn can_become(self, next: AccreditationState) -> bool {
        use AccreditationState::*;
        matches!(
            (self, next),
            (Pending, Accredited) | (Pending, Rejected) | (Accredited, Revoked)
        )
    }
}

/// The accreditation number: `{host country}-{voting year}-{sequence, 6 digits}`.
pub fn accreditation_number(host_country: CountryCode, voting_year: i32, sequence: i32) -> String {
    format!("{host_country}-{voting_year}-{sequence:06}")
}

/// Travel document numbers are compared as the border service reads them: without
/// surrounding blanks and in upper case.
pub fn normalize_document_number(number: &str) -> String {
    number.trim().to_uppercase()
}

/// The fields of an observer a caller sets, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ObserverFields {
    pub given_name: String,
    pub family_name: String,
    pub citizenship: CountryCode,
    pub organization_id: String,
    pub delegation_id: Option<String>,
    pub role: Option<ObserverRole>,
    pub travel_document_number: String,
    pub date_of_birth: Option<NaiveDate>,
    pub email: String,
    pub phone: String,
    pub deployment_region: String,
}

/// The accreditation record, set only by the accreditation methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Accreditation {
    pub state: AccreditationState,
    pub number: Option<String>,
    pub decide_time: Option<DateTime<Utc>>,
    pub reason: String,
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
}

impl Observer {
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
    fn the_state_machine_allows_only_the_briefs_transitions() {
        use AccreditationState::*;
        let all = [Pending, Accredited, Rejected, Revoked];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|from| all.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pending, Accredited),
                (Pending, Rejected),
                (Accredited, Revoked)
            ]
        );
    }

    #[test]
    fn numbers_are_padded_to_six_digits() {
        let kz = CountryCode::parse("KZ").unwrap();
        assert_eq!(accreditation_number(kz, 2023, 1), "KZ-2023-000001");
        assert_eq!(accreditation_number(kz, 2023, 793), "KZ-2023-000793");
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(ObserverRole::parse("EXPERT"), Some(ObserverRole::Expert));
        assert_eq!(ObserverRole::Expert.as_str(), "EXPERT");
        assert_eq!(AccreditationState::Revoked.as_str(), "REVOKED");
        assert_eq!(normalize_document_number(" n1234567 "), "N1234567");
    }
}
