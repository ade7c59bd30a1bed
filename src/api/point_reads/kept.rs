//! The form in which the keep holds an observer: its texts in one allocation beside its
//! fixed-size facts. An `Observer` is a string per text (each its own allocation) and its
//! ids again; kept that way, 100,000 observers took about 49 MiB. A kept observer becomes an
//! `Observer` again when a call is answered from it: copying its texts costs far less than
//! the row PostgreSQL would otherwise write (~10 µs).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::country::CountryCode;
use crate::domain::observer::identity::{
    DateOfBirth, Email, PersonName, Phone, TravelDocumentNumber,
};
use crate::domain::observer::{
    Accreditation, AccreditationState, Observer, ObserverFields, ObserverRole,
};

/// The texts, in their order in [`KeptObserver::text`].
const GIVEN_NAME: usize = 0;
const FAMILY_NAME: usize = 1;
const ORGANIZATION_ID: usize = 2;
const DELEGATION_ID: usize = 3;
const TRAVEL_DOCUMENT_NUMBER: usize = 4;
const EMAIL: usize = 5;
const PHONE: usize = 6;
const DEPLOYMENT_REGION: usize = 7;
const ACCREDITATION_NUMBER: usize = 8;
const REASON: usize = 9;
const DECISION: usize = 10;
const TEXTS: usize = 11;

/// An observer of some election, as kept by its id (which it does not hold again).
#[derive(Debug)]
pub struct KeptObserver {
    text: Box<str>,
    /// Where each text ends in `text`.
    ends: [u16; TEXTS],
    /// Bit `n` set: the optional text `n` is there (an empty one included).
    present: u16,
    citizenship: CountryCode,
    role: Option<ObserverRole>,
    state: AccreditationState,
    date_of_birth: Option<DateOfBirth>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    decide_time: Option<DateTime<Utc>>,
    delete_time: Option<DateTime<Utc>>,
    personal_data_erase_time: Option<DateTime<Utc>>,
    etag: Uuid,
}

impl KeptObserver {
    /// The observer in kept form; `None` when its texts are too long together to index with
    /// 16 bits (64 KiB, far beyond what its fields allow), which is then simply not kept.
    pub fn new(observer: &Observer) -> Option<KeptObserver> {
        let fields = &observer.fields;
        let accreditation = &observer.accreditation;
        let texts: [Option<&str>; TEXTS] = [
            Some(fields.given_name.as_str()),
            Some(fields.family_name.as_str()),
            Some(&fields.organization_id),
            fields.delegation_id.as_deref(),
            fields.travel_document_number.as_ref().map(|t| t.as_str()),
            fields.email.as_ref().map(|e| e.as_str()),
            fields.phone.as_ref().map(|p| p.as_str()),
            Some(&fields.deployment_region),
            accreditation.number.as_deref(),
            Some(&accreditation.reason),
            Some(&accreditation.decision),
        ];
        let length: usize = texts.iter().flatten().map(|t| t.len()).sum();
        if length > usize::from(u16::MAX) {
            return None;
        }
        let mut text = String::with_capacity(length);
        let mut ends = [0; TEXTS];
        let mut present = 0;
        for (n, value) in texts.iter().enumerate() {
            if let Some(value) = value {
                text.push_str(value);
                present |= 1 << n;
            }
            // Within u16: the sum was checked above.
            ends[n] = text.len() as u16;
        }
        Some(KeptObserver {
            text: text.into_boxed_str(),
            ends,
            present,
            citizenship: fields.citizenship,
            role: fields.role,
            state: accreditation.state,
            date_of_birth: fields.date_of_birth,
            create_time: observer.create_time,
            update_time: observer.update_time,
            decide_time: accreditation.decide_time,
            delete_time: observer.delete_time,
            personal_data_erase_time: observer.personal_data_erase_time,
            etag: observer.etag,
        })
    }

    /// What it takes: itself and its texts.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.text.len()
    }

    /// The observer again, whose ids the keep holds it by.
    pub fn observer(&self, election_id: &str, id: &str) -> Observer {
        let owned = |n| self.text(n).to_owned();
        let optional = |n| self.optional(n).map(str::to_owned);
        Observer {
            election_id: election_id.to_owned(),
            id: id.to_owned(),
            fields: ObserverFields {
                given_name: PersonName::from_stored(owned(GIVEN_NAME)),
                family_name: PersonName::from_stored(owned(FAMILY_NAME)),
                citizenship: self.citizenship,
                organization_id: owned(ORGANIZATION_ID),
                delegation_id: optional(DELEGATION_ID),
                role: self.role,
                travel_document_number: optional(TRAVEL_DOCUMENT_NUMBER)
                    .map(TravelDocumentNumber::from_stored),
                date_of_birth: self.date_of_birth,
                email: optional(EMAIL).map(Email::from_stored),
                phone: optional(PHONE).map(Phone::from_stored),
                deployment_region: owned(DEPLOYMENT_REGION),
            },
            accreditation: Accreditation {
                state: self.state,
                number: optional(ACCREDITATION_NUMBER),
                decide_time: self.decide_time,
                reason: owned(REASON),
                decision: owned(DECISION),
            },
            create_time: self.create_time,
            update_time: self.update_time,
            etag: self.etag,
            delete_time: self.delete_time,
            personal_data_erase_time: self.personal_data_erase_time,
        }
    }

    fn text(&self, n: usize) -> &str {
        let start = if n == 0 { 0 } else { self.ends[n - 1] };
        // Ends fall on the boundaries of the texts pushed in `new`, so on characters'.
        self.text
            .get(usize::from(start)..usize::from(self.ends[n]))
            .unwrap_or_default()
    }

    fn optional(&self, n: usize) -> Option<&str> {
        (self.present & (1 << n) != 0).then(|| self.text(n))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 123_456_000).unwrap()
    }

    /// An observer with every field set.
    pub(in crate::api::point_reads) fn full() -> Observer {
        Observer {
            election_id: "kz-2023".into(),
            id: "o-1".into(),
            fields: ObserverFields {
                given_name: PersonName::from_stored("Айгерім".into()),
                family_name: PersonName::from_stored("Müller-Łukasz".into()),
                citizenship: CountryCode::parse("DE").unwrap(),
                organization_id: "osce-odihr".into(),
                delegation_id: Some("d-7".into()),
                role: Some(ObserverRole::LongTermObserver),
                travel_document_number: Some(TravelDocumentNumber::from_stored("C01X00T47".into())),
                date_of_birth: Some(DateOfBirth::from_stored(
                    NaiveDate::from_ymd_opt(1980, 2, 29).unwrap(),
                )),
                email: Some(Email::from_stored("a@example.org".into())),
                phone: Some(Phone::from_stored("+7 701 000 0000".into())),
                deployment_region: "Astana".into(),
            },
            accreditation: Accreditation {
                state: AccreditationState::Revoked,
                number: Some("KZ-2023-000001".into()),
                decide_time: Some(at(3)),
                reason: "left the country".into(),
                decision: "Resolution 12".into(),
            },
            create_time: at(1),
            update_time: at(2),
            etag: Uuid::from_u128(42),
            delete_time: Some(at(4)),
            personal_data_erase_time: Some(at(5)),
        }
    }

    #[test]
    fn an_observer_comes_back_as_it_was_kept() {
        let observer = full();
        let kept = KeptObserver::new(&observer).unwrap();
        assert_eq!(kept.observer("kz-2023", "o-1"), observer);
    }

    #[test]
    fn absent_and_empty_texts_stay_apart() {
        let mut observer = full();
        observer.fields.delegation_id = None;
        observer.fields.travel_document_number = None;
        observer.fields.email = None;
        observer.fields.role = None;
        observer.fields.date_of_birth = None;
        observer.fields.deployment_region = String::new();
        observer.accreditation = Accreditation::pending();
        observer.delete_time = None;
        observer.personal_data_erase_time = None;
        let kept = KeptObserver::new(&observer).unwrap();
        assert_eq!(kept.observer("kz-2023", "o-1"), observer);

        observer.fields.delegation_id = Some(String::new());
        let kept = KeptObserver::new(&observer).unwrap();
        assert_eq!(
            kept.observer("kz-2023", "o-1").fields.delegation_id,
            Some(String::new())
        );
    }

    #[test]
    fn texts_too_long_to_index_are_not_kept() {
        let mut observer = full();
        observer.accreditation.reason = "x".repeat(usize::from(u16::MAX));
        assert!(KeptObserver::new(&observer).is_none());
    }
}
