//! Retention of personal data (API.md, "Retention of personal data"): when an election's
//! personal data is due for erasure, what erasure changes, and what an erased election
//! refuses. PostgreSQL holds the same rules (`observers_personal_data_erased`,
//! `observers_personal_data_erasure`, `elections_personal_data_erasure`).

use chrono::{DateTime, Utc};

use super::election::Election;
use super::observer::ObserverFields;
use super::observer::record::ObserverField;
use super::refusal::{Refusal, Rule};

/// Whether the service erases the election's personal data on its own at `now`: its
/// retention period has passed (`ElectionFields::personal_data_due`), it keeps personal data
/// for a while at all (retention 0 keeps it), and it was not erased yet.
pub fn is_due(election: &Election, now: DateTime<Utc>) -> bool {
    election.personal_data_erase_time.is_none()
        && election
            .fields
            .personal_data_due()
            .is_some_and(|due| due <= now)
}

/// What erasure leaves of an observer: names, citizenship, organization, delegation, role
/// and deployment region remain; the travel document number, date of birth, e-mail and phone
/// go.
pub fn erased(fields: ObserverFields) -> ObserverFields {
    ObserverFields {
        travel_document_number: None,
        date_of_birth: None,
        email: None,
        phone: None,
        ..fields
    }
}

/// CreateObserver and BatchCreateObservers: an election whose personal data was erased takes
/// no new observers, whose personal data would outlive its retention period
/// (PERSONAL_DATA_ERASED).
pub fn check_registration(
    election: &str,
    erase_time: Option<DateTime<Utc>>,
) -> Result<(), Refusal> {
    match erase_time {
        None => Ok(()),
        Some(when) => Err(Refusal::new(
            Rule::PersonalDataErased,
            format!(
                "the personal data of {election} was erased at {}: it takes no new observers",
                when.to_rfc3339()
            ),
        )
        .metadata("election", election)),
    }
}

/// UpdateObserver and CorrectObserver of an erased observer: personal data is never put
/// back (PERSONAL_DATA_ERASED, one violation per field). `setting` are the fields the request
/// gives a value (empty values are no personal data, and are accepted).
pub fn check_update(
    observer: &str,
    erase_time: Option<DateTime<Utc>>,
    setting: &[ObserverField],
    field_prefix: &str,
) -> Result<(), Refusal> {
    let personal: Vec<ObserverField> = setting
        .iter()
        .copied()
        .filter(|f| f.is_personal())
        .collect();
    let Some(when) = erase_time else {
        return Ok(());
    };
    if personal.is_empty() {
        return Ok(());
    }
    let refusal = Refusal::new(
        Rule::PersonalDataErased,
        format!(
            "the personal data of {observer} was erased at {}: it is never put back",
            when.to_rfc3339()
        ),
    );
    Err(personal.iter().fold(refusal, |refusal, field| {
        refusal.field(
            format!("{field_prefix}.{}", field.path()),
            "personal data was erased",
        )
    }))
}

/// The audit event's reason for one erasure: how many observers it erased, and why.
pub fn audit_reason(observers: u64, trigger: Trigger) -> String {
    let whose = if observers == 1 {
        "1 observer".to_owned()
    } else {
        format!("{observers} observers")
    };
    match trigger {
        Trigger::Request => format!("personal data of {whose} erased on request"),
        Trigger::RetentionPassed => {
            format!("personal data of {whose} erased: the retention period passed")
        }
    }
}

/// Why an election's personal data is erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// ErasePersonalData.
    Request,
    /// The service on its own, once `is_due`.
    RetentionPassed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::country::CountryCode;
    use crate::domain::election::{ElectionFields, Retention};
    use crate::domain::observer::identity::{
        DateOfBirth, Email, PersonName, Phone, TravelDocumentNumber,
    };
    use chrono::NaiveDate;

    fn at(instant: &str) -> DateTime<Utc> {
        instant.parse().unwrap()
    }

    fn election(retention_days: i32) -> Election {
        Election {
            id: "kz-2023".into(),
            fields: ElectionFields {
                personal_data_retention: Retention::from_stored(retention_days),
                ..crate::domain::election::tests::kz_2023()
            },
            create_time: at("2023-01-01T00:00:00Z"),
            update_time: at("2023-01-01T00:00:00Z"),
            etag: uuid::Uuid::nil(),
            personal_data_erase_time: None,
        }
    }

    #[test]
    fn an_election_is_due_once_its_retention_period_passed_and_only_once() {
        let mut kz = election(90);
        assert!(!is_due(&kz, at("2023-06-16T23:59:59Z")));
        assert!(is_due(&kz, at("2023-06-17T00:00:00Z")));
        kz.personal_data_erase_time = Some(at("2023-06-17T00:00:00Z"));
        assert!(!is_due(&kz, at("2030-01-01T00:00:00Z")));
        // Retention 0 keeps personal data for good.
        assert!(!is_due(&election(0), at("2100-01-01T00:00:00Z")));
    }

    #[test]
    fn erasure_keeps_who_the_observer_is_and_drops_personal_data() {
        let fields = ObserverFields {
            given_name: PersonName::parse("Anna").unwrap(),
            family_name: PersonName::parse("Ivanova").unwrap(),
            citizenship: CountryCode::parse("RU").unwrap(),
            organization_id: "sco".into(),
            delegation_id: Some("sco-mission".into()),
            role: None,
            travel_document_number: Some(TravelDocumentNumber::parse("N1234567").unwrap()),
            date_of_birth: Some(
                DateOfBirth::parse("1980-05-01", NaiveDate::from_ymd_opt(2023, 1, 1).unwrap())
                    .unwrap(),
            ),
            email: Some(Email::parse("anna@example.org").unwrap()),
            phone: Some(Phone::parse("+7 701 000 00 00").unwrap()),
            deployment_region: "Almaty".into(),
        };
        let after = erased(fields.clone());
        assert_eq!(after.travel_document_number, None);
        assert_eq!(after.date_of_birth, None);
        assert_eq!(after.email, None);
        assert_eq!(after.phone, None);
        assert_eq!(
            (
                &after.given_name,
                &after.family_name,
                after.citizenship,
                &after.organization_id,
                &after.delegation_id,
                &after.deployment_region
            ),
            (
                &fields.given_name,
                &fields.family_name,
                fields.citizenship,
                &fields.organization_id,
                &fields.delegation_id,
                &fields.deployment_region
            )
        );
    }

    #[test]
    fn an_erased_election_takes_no_observers() {
        assert!(check_registration("elections/kz-2023", None).is_ok());
        let refusal =
            check_registration("elections/kz-2023", Some(at("2023-06-17T00:00:00Z"))).unwrap_err();
        assert_eq!(refusal.rule, Rule::PersonalDataErased);
    }

    #[test]
    fn personal_data_is_never_put_back_but_the_rest_stays_updatable() {
        let erased_at = Some(at("2023-06-17T00:00:00Z"));
        let refusal = check_update(
            "o",
            erased_at,
            &[
                ObserverField::Role,
                ObserverField::Email,
                ObserverField::TravelDocumentNumber,
            ],
            "observer",
        )
        .unwrap_err();
        assert_eq!(refusal.rule, Rule::PersonalDataErased);
        let fields: Vec<&str> = refusal.fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["observer.email", "observer.travel_document_number"]
        );
        assert!(check_update("o", erased_at, &[ObserverField::Role], "observer").is_ok());
        assert!(check_update("o", None, &[ObserverField::Email], "observer").is_ok());
    }

    #[test]
    fn the_audit_reason_counts_the_observers() {
        assert_eq!(
            audit_reason(3, Trigger::Request),
            "personal data of 3 observers erased on request"
        );
        assert_eq!(
            audit_reason(1, Trigger::RetentionPassed),
            "personal data of 1 observer erased: the retention period passed"
        );
    }
}
