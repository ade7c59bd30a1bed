//! Delegations: the group a sending organization sends to one election, and their rules
//! (a stay in order, a head among the members, an organization that exists).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::observer::{Observer, observer_name};
use super::refusal::{Refusal, Rule};

/// The fields of a delegation a caller sets, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DelegationFields {
    pub display_name: String,
    pub organization_id: String,
    /// Id of the observer heading the delegation; always one of its members.
    pub head_observer_id: Option<String>,
    pub arrival_date: Option<NaiveDate>,
    pub departure_date: Option<NaiveDate>,
    pub notes: String,
}

impl DelegationFields {
    pub fn stay(&self) -> Stay {
        Stay {
            arrival: self.arrival_date,
            departure: self.departure_date,
        }
    }
}

/// A stored delegation.
#[derive(Debug, Clone, PartialEq)]
pub struct Delegation {
    pub election_id: String,
    pub id: String,
    pub fields: DelegationFields,
    pub member_count: i32,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: Uuid,
    pub delete_time: Option<DateTime<Utc>>,
}

impl Delegation {
    pub fn name(&self) -> String {
        delegation_name(&self.election_id, &self.id)
    }
}

pub fn delegation_name(election_id: &str, id: &str) -> String {
    format!("elections/{election_id}/delegations/{id}")
}

/// When a delegation is in the country: UTC calendar dates, inclusive; an unknown bound
/// does not limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    pub arrival: Option<NaiveDate>,
    pub departure: Option<NaiveDate>,
}

impl Stay {
    /// Whether a meeting from `start` to `end` falls within the stay.
    pub fn covers(self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.arrival
            .is_none_or(|arrival| start.date_naive() >= arrival)
            && self
                .departure
                .is_none_or(|departure| end.date_naive() <= departure)
    }
}

impl fmt::Display for Stay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = |d: Option<NaiveDate>| d.map_or("?".to_owned(), |d| d.to_string());
        write!(f, "{} to {}", day(self.arrival), day(self.departure))
    }
}

/// A stay is in order when departure is not before arrival (either may be unknown).
pub fn stay_in_order(arrival: Option<NaiveDate>, departure: Option<NaiveDate>) -> bool {
    match (arrival, departure) {
        (Some(arrival), Some(departure)) => departure >= arrival,
        _ => true,
    }
}

/// The request field a delegation's head is named in.
const HEAD_FIELD: &str = "delegation.head";

/// A new delegation has no members yet, so it cannot name a head.
pub fn check_head_of_new(fields: &DelegationFields) -> Result<(), Refusal> {
    match fields.head_observer_id {
        None => Ok(()),
        Some(_) => Err(Refusal::new(
            Rule::HeadNotMember,
            "a new delegation has no members yet: register its observers, then name the head",
        )
        .field(HEAD_FIELD, "must be a member of the delegation")),
    }
}

/// The head of `delegation` must be one of its live members; `head` is the observer the
/// head names, as found (`None` when there is none).
pub fn check_head(
    delegation: &Delegation,
    head_id: &str,
    head: Option<&Observer>,
) -> Result<(), Refusal> {
    let is_member = head.is_some_and(|observer| {
        observer.delete_time.is_none()
            && observer.fields.delegation_id.as_deref() == Some(delegation.id.as_str())
    });
    if is_member {
        return Ok(());
    }
    Err(Refusal::new(
        Rule::HeadNotMember,
        format!(
            "{} is not a member of {}",
            observer_name(&delegation.election_id, head_id),
            delegation.name()
        ),
    )
    .field(HEAD_FIELD, "must be a member of the delegation"))
}

/// A delegation is sent by an organization that exists.
pub fn check_organization_exists(organization_id: &str, exists: bool) -> Result<(), Refusal> {
    if exists {
        return Ok(());
    }
    let field = "delegation.organization";
    let why = format!("organizations/{organization_id} does not exist");
    Err(Refusal::new(Rule::InvalidArgument, format!("{field}: {why}")).field(field, why))
}

/// Members are sent by the delegation's organization, so it changes only while there are
/// none (deleted members count: they can be undeleted).
pub fn check_organization_change(has_members: bool) -> Result<(), Refusal> {
    if !has_members {
        return Ok(());
    }
    Err(Refusal::new(
        Rule::DelegationOrganizationMismatch,
        "the delegation has members sent by its organization: move them first",
    )
    .field(
        "delegation.organization",
        "cannot change while the delegation has members",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::country::CountryCode;
    use crate::domain::observer::{Accreditation, ObserverFields};

    fn day(text: &str) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn delegation(id: &str) -> Delegation {
        Delegation {
            election_id: "kz".into(),
            id: id.into(),
            fields: DelegationFields {
                display_name: "SCO".into(),
                organization_id: "sco".into(),
                head_observer_id: None,
                arrival_date: None,
                departure_date: None,
                notes: String::new(),
            },
            member_count: 0,
            create_time: at("2023-01-01T00:00:00Z"),
            update_time: at("2023-01-01T00:00:00Z"),
            etag: Uuid::nil(),
            delete_time: None,
        }
    }

    fn observer(delegation_id: Option<&str>, deleted: bool) -> Observer {
        use crate::domain::observer::identity::{PersonName, TravelDocumentNumber};
        Observer {
            election_id: "kz".into(),
            id: "anna".into(),
            fields: ObserverFields {
                given_name: PersonName::parse("Anna").unwrap(),
                family_name: PersonName::parse("Ivanova").unwrap(),
                citizenship: CountryCode::parse("RU").unwrap(),
                organization_id: "sco".into(),
                delegation_id: delegation_id.map(str::to_owned),
                role: None,
                travel_document_number: Some(TravelDocumentNumber::parse("N1234567").unwrap()),
                date_of_birth: None,
                email: None,
                phone: None,
                deployment_region: String::new(),
            },
            accreditation: Accreditation::pending(),
            create_time: at("2023-01-01T00:00:00Z"),
            update_time: at("2023-01-01T00:00:00Z"),
            etag: Uuid::nil(),
            delete_time: deleted.then(|| at("2023-01-02T00:00:00Z")),
            personal_data_erase_time: None,
        }
    }

    #[test]
    fn departure_may_not_precede_arrival() {
        assert!(stay_in_order(day("2023-03-15"), day("2023-03-15")));
        assert!(stay_in_order(day("2023-03-15"), day("2023-03-21")));
        assert!(!stay_in_order(day("2023-03-21"), day("2023-03-15")));
        assert!(stay_in_order(None, day("2023-03-15")));
        assert!(stay_in_order(day("2023-03-15"), None));
    }

    #[test]
    fn a_stay_bounds_both_ends_inclusively() {
        let stay = Stay {
            arrival: day("2023-03-15"),
            departure: day("2023-03-21"),
        };
        assert!(stay.covers(at("2023-03-15T00:00:00Z"), at("2023-03-21T23:00:00Z")));
        assert!(!stay.covers(at("2023-03-14T23:00:00Z"), at("2023-03-15T01:00:00Z")));
        assert!(!stay.covers(at("2023-03-21T23:00:00Z"), at("2023-03-22T01:00:00Z")));
        let unknown = Stay {
            arrival: None,
            departure: None,
        };
        assert!(unknown.covers(at("2020-01-01T00:00:00Z"), at("2020-01-01T01:00:00Z")));
        assert_eq!(stay.to_string(), "2023-03-15 to 2023-03-21");
        assert_eq!(unknown.to_string(), "? to ?");
    }

    #[test]
    fn a_new_delegation_names_no_head() {
        let mut fields = delegation("sco").fields;
        assert!(check_head_of_new(&fields).is_ok());
        fields.head_observer_id = Some("anna".into());
        let refusal = check_head_of_new(&fields).unwrap_err();
        assert_eq!(refusal.rule, Rule::HeadNotMember);
        assert_eq!(refusal.fields[0].0, "delegation.head");
    }

    #[test]
    fn the_head_is_a_live_member_of_the_delegation() {
        let sco = delegation("sco");
        assert!(check_head(&sco, "anna", Some(&observer(Some("sco"), false))).is_ok());
        for head in [
            None,
            Some(observer(None, false)),
            Some(observer(Some("cis"), false)),
            Some(observer(Some("sco"), true)),
        ] {
            let refusal = check_head(&sco, "anna", head.as_ref()).unwrap_err();
            assert_eq!(refusal.rule, Rule::HeadNotMember, "{head:?}");
            assert!(refusal.message.contains("elections/kz/observers/anna"));
            assert_eq!(refusal.fields[0].0, "delegation.head");
        }
    }

    #[test]
    fn the_organization_exists_and_changes_only_without_members() {
        assert!(check_organization_exists("sco", true).is_ok());
        let refusal = check_organization_exists("sco", false).unwrap_err();
        assert_eq!(refusal.rule, Rule::InvalidArgument);
        assert_eq!(
            refusal.fields,
            [(
                "delegation.organization".to_owned(),
                "organizations/sco does not exist".to_owned()
            )]
        );
        assert!(check_organization_change(false).is_ok());
        assert_eq!(
            check_organization_change(true).unwrap_err().rule,
            Rule::DelegationOrganizationMismatch
        );
    }
}
