//! Badges and their verification: what a badge says and when it expires, and what a check
//! of a badge (or of an accreditation number) finds. Pure: the signature is made and checked
//! by the caller with the badge keys, the record is read by the store.

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::election::{BadgeValidity, Election};
use super::observer::{AccreditationState, Observer};
use super::refusal::{Refusal, Rule};
use crate::client::badge::BadgeClaims;

/// What the badge of `observer` says, taken from the record: only an accreditation in force
/// (ACCREDITED, so numbered) has a badge; a pending, rejected or revoked one is refused
/// (NOT_ACCREDITED).
pub fn claims(
    observer: &Observer,
    election: &Election,
    organization_display_name: &str,
) -> Result<BadgeClaims, Refusal> {
    let name = super::observer::observer_name(&observer.election_id, &observer.id);
    let number = match (
        &observer.accreditation.state,
        &observer.accreditation.number,
    ) {
        (AccreditationState::Accredited, Some(number)) => number,
        (state, _) => {
            return Err(Refusal::new(
                Rule::NotAccredited,
                format!(
                    "{name} is {}: only an accredited observer has a badge",
                    state.as_str()
                ),
            )
            .metadata("observer", name));
        }
    };
    let fields = &observer.fields;
    Ok(BadgeClaims {
        accreditation_number: number.clone(),
        election: election.name(),
        given_name: fields.given_name.as_str().to_owned(),
        family_name: fields.family_name.as_str().to_owned(),
        citizenship: fields.citizenship.to_string(),
        organization_display_name: organization_display_name.to_owned(),
        expire_unix_seconds: expire_time(
            election.fields.voting_day,
            election.fields.badge_validity_days,
        )
        .timestamp(),
    })
}

/// When an election's badges expire: at the start (UTC) of the day `badge_validity_days`
/// after voting day, so a validity of 1 covers voting day itself, wherever it is.
pub fn expire_time(voting_day: NaiveDate, validity: BadgeValidity) -> DateTime<Utc> {
    let days = u64::try_from(validity.days()).unwrap_or(0);
    voting_day
        .checked_add_days(Days::new(days))
        .unwrap_or(NaiveDate::MAX)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
}

/// The verdict of a verification (`AccreditationCheck.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Revoked,
    Expired,
    Unknown,
    BadSignature,
}

/// What the token's signature showed, when a token was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// Verified with a listed key.
    Verified,
    /// Malformed, signed with an unknown key, or altered.
    Failed,
    /// Only a number was given.
    NotGiven,
}

/// The accreditation as recorded now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No observer holds the number (or, for a token, the token's number).
    Missing,
    Accredited,
    Revoked,
}

/// What a verification finds. A forged badge says nothing more (it could name anyone); a
/// revocation beats an expiry, since it is what a border post must act on; and an
/// accreditation in force is valid only until the badge expires.
pub fn verdict(
    signature: Signature,
    standing: Standing,
    expire_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Verdict {
    match (signature, standing) {
        (Signature::Failed, _) => Verdict::BadSignature,
        (_, Standing::Missing) => Verdict::Unknown,
        (_, Standing::Revoked) => Verdict::Revoked,
        (_, Standing::Accredited) if now >= expire_time => Verdict::Expired,
        (_, Standing::Accredited) => Verdict::Valid,
    }
}

/// The standing of a recorded accreditation. A deleted record is no longer in force: its
/// badge must not pass at a border post, yet it was never unknown, so it reads as revoked.
pub fn standing(state: AccreditationState, deleted: bool) -> Standing {
    match state {
        AccreditationState::Accredited if !deleted => Standing::Accredited,
        AccreditationState::Accredited | AccreditationState::Revoked => Standing::Revoked,
        // Only accredited and revoked observers hold a number (observers_number_matches_state).
        AccreditationState::Pending | AccreditationState::Rejected => Standing::Missing,
    }
}

/// The longest accreditation number looked up: `{country}-{year}-{sequence}` is 14 characters
/// for a million observers; anything far longer is not a number.
const MAX_NUMBER_LENGTH: usize = 32;

/// An accreditation number as read from a badge, `{AA}-{YYYY}-{digits}` (see
/// `observer::accreditation_number`), trimmed and upper-cased as people type it.
pub fn parse_accreditation_number(text: &str) -> Result<String, String> {
    let number = text.trim().to_ascii_uppercase();
    let mut parts = number.split('-');
    let well_formed = number.len() <= MAX_NUMBER_LENGTH
        && matches!(
            (parts.next(), parts.next(), parts.next(), parts.next()),
            (Some(country), Some(year), Some(sequence), None)
                if country.len() == 2
                    && country.bytes().all(|b| b.is_ascii_uppercase())
                    && year.len() == 4
                    && year.bytes().all(|b| b.is_ascii_digit())
                    && !sequence.is_empty()
                    && sequence.bytes().all(|b| b.is_ascii_digit())
        );
    if well_formed {
        Ok(number)
    } else {
        Err("is not an accreditation number like KZ-2023-000001".to_owned())
    }
}

/// Whether a verdict shows the record's details: not for a forgery or an unknown number.
pub fn shows_record(verdict: Verdict) -> bool {
    !matches!(verdict, Verdict::Unknown | Verdict::BadSignature)
}

/// Whether a verdict counts toward the suspicion of enumeration (guessing numbers, or
/// forging tokens).
pub fn looks_like_probing(verdict: Verdict) -> bool {
    !shows_record(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn election() -> Election {
        use crate::domain::country::CountryCode;
        use crate::domain::election::ElectionFields;
        Election {
            id: "kz-2023".into(),
            fields: ElectionFields {
                display_name: "Early Presidential Election".into(),
                host_country: CountryCode::parse("KZ").unwrap(),
                voting_day: day("2023-03-19"),
                accreditation_deadline: None,
                description: String::new(),
                decision_required: false,
                badge_validity_days: BadgeValidity::parse(30).unwrap(),
                invitation_required: false,
                personal_data_retention: crate::domain::election::Retention::from_stored(90),
            },
            create_time: at("2023-01-01T00:00:00Z"),
            update_time: at("2023-01-01T00:00:00Z"),
            etag: uuid::Uuid::nil(),
            personal_data_erase_time: None,
        }
    }

    fn observer(state: AccreditationState, number: Option<&str>) -> Observer {
        use crate::domain::country::CountryCode;
        use crate::domain::observer::identity::{PersonName, TravelDocumentNumber};
        use crate::domain::observer::{Accreditation, ObserverFields};
        Observer {
            election_id: "kz-2023".into(),
            id: "li-wei".into(),
            fields: ObserverFields {
                given_name: PersonName::parse("Li").unwrap(),
                family_name: PersonName::parse("Wei").unwrap(),
                citizenship: CountryCode::parse("CN").unwrap(),
                organization_id: "sco".into(),
                delegation_id: None,
                role: None,
                travel_document_number: Some(TravelDocumentNumber::parse("E12345678").unwrap()),
                date_of_birth: None,
                email: None,
                phone: None,
                deployment_region: String::new(),
            },
            accreditation: Accreditation {
                state,
                number: number.map(str::to_owned),
                ..Accreditation::pending()
            },
            create_time: at("2023-01-01T00:00:00Z"),
            update_time: at("2023-01-01T00:00:00Z"),
            etag: uuid::Uuid::nil(),
            delete_time: None,
            personal_data_erase_time: None,
        }
    }

    #[test]
    fn an_accredited_observers_badge_says_what_the_record_says() {
        let accredited = observer(AccreditationState::Accredited, Some("KZ-2023-000042"));
        let claims = claims(&accredited, &election(), "SCO").unwrap();
        assert_eq!(
            claims,
            BadgeClaims {
                accreditation_number: "KZ-2023-000042".into(),
                election: "elections/kz-2023".into(),
                given_name: "Li".into(),
                family_name: "Wei".into(),
                citizenship: "CN".into(),
                organization_display_name: "SCO".into(),
                expire_unix_seconds: at("2023-04-18T00:00:00Z").timestamp(),
            }
        );
    }

    #[test]
    fn only_an_accreditation_in_force_has_a_badge() {
        for (state, number) in [
            (AccreditationState::Pending, None),
            (AccreditationState::Rejected, None),
            (AccreditationState::Revoked, Some("KZ-2023-000001")),
        ] {
            let refusal = claims(&observer(state, number), &election(), "SCO").unwrap_err();
            assert_eq!(refusal.rule, Rule::NotAccredited);
            assert!(
                refusal.message.contains(state.as_str()),
                "{}",
                refusal.message
            );
        }
    }

    #[test]
    fn badges_expire_at_the_start_of_the_day_their_validity_runs_out() {
        let validity = BadgeValidity::parse(30).unwrap();
        assert_eq!(
            expire_time(day("2023-03-19"), validity),
            at("2023-04-18T00:00:00Z")
        );
        let one_day = BadgeValidity::parse(1).unwrap();
        assert_eq!(
            expire_time(day("2023-03-19"), one_day),
            at("2023-03-20T00:00:00Z")
        );
        let default = BadgeValidity::parse(0).unwrap();
        assert_eq!(
            expire_time(day("2023-03-19"), default),
            at("2023-04-18T00:00:00Z")
        );
    }

    #[test]
    fn a_forged_badge_is_a_bad_signature_whatever_the_record() {
        let expiry = at("2030-01-01T00:00:00Z");
        let now = at("2023-03-19T08:00:00Z");
        for standing in [Standing::Missing, Standing::Accredited, Standing::Revoked] {
            assert_eq!(
                verdict(Signature::Failed, standing, expiry, now),
                Verdict::BadSignature
            );
        }
    }

    #[test]
    fn a_revoked_accreditation_is_revoked_even_with_an_authentic_unexpired_badge() {
        let expiry = at("2030-01-01T00:00:00Z");
        let now = at("2023-03-19T08:00:00Z");
        assert_eq!(
            verdict(Signature::Verified, Standing::Revoked, expiry, now),
            Verdict::Revoked
        );
        // and also once expired: the revocation is what matters.
        assert_eq!(
            verdict(Signature::Verified, Standing::Revoked, now, expiry),
            Verdict::Revoked
        );
    }

    #[test]
    fn an_accreditation_in_force_is_valid_until_the_badge_expires() {
        let expiry = at("2023-04-18T00:00:00Z");
        for signature in [Signature::Verified, Signature::NotGiven] {
            assert_eq!(
                verdict(
                    signature,
                    Standing::Accredited,
                    expiry,
                    at("2023-04-17T23:59:59Z")
                ),
                Verdict::Valid
            );
            assert_eq!(
                verdict(signature, Standing::Accredited, expiry, expiry),
                Verdict::Expired
            );
        }
    }

    #[test]
    fn an_unknown_number_is_unknown_and_shows_nothing() {
        let expiry = at("2030-01-01T00:00:00Z");
        let now = at("2023-03-19T08:00:00Z");
        let found = verdict(Signature::NotGiven, Standing::Missing, expiry, now);
        assert_eq!(found, Verdict::Unknown);
        assert!(!shows_record(found) && looks_like_probing(found));
        assert!(shows_record(Verdict::Revoked) && !looks_like_probing(Verdict::Expired));
    }

    #[test]
    fn numbers_are_read_as_people_type_them_and_anything_else_is_refused() {
        assert_eq!(
            parse_accreditation_number(" kz-2023-000001 ").unwrap(),
            "KZ-2023-000001"
        );
        for bad in [
            "",
            "KZ-2023-",
            "KZ2023000001",
            "K-2023-1",
            "KZ-23-1",
            "KZ-2023-1-2",
        ] {
            assert!(parse_accreditation_number(bad).is_err(), "{bad}");
        }
        assert!(parse_accreditation_number(&format!("KZ-2023-{}", "1".repeat(40))).is_err());
    }

    #[test]
    fn a_deleted_accreditation_is_no_longer_in_force() {
        use AccreditationState::*;
        assert_eq!(standing(Accredited, false), Standing::Accredited);
        assert_eq!(standing(Accredited, true), Standing::Revoked);
        assert_eq!(standing(Revoked, false), Standing::Revoked);
        assert_eq!(standing(Pending, false), Standing::Missing);
    }
}
