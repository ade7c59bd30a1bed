//! Elections: the scope of everything about observation.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use super::country::CountryCode;
use super::refusal::{Refusal, Rule};

/// The fields of an election a caller sets, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ElectionFields {
    pub display_name: String,
    pub host_country: CountryCode,
    pub voting_day: NaiveDate,
    /// When `None`, accreditation closes at the start of voting day, UTC.
    pub accreditation_deadline: Option<DateTime<Utc>>,
    pub description: String,
    /// Whether every accreditation decision must name the commission's act behind it.
    pub decision_required: bool,
    /// Days after voting day until badges expire ([`BadgeValidity`]).
    pub badge_validity_days: BadgeValidity,
    /// Whether only organizations with an accepted invitation may send observers.
    pub invitation_required: bool,
    /// How long personal data is kept after the election ([`Retention`]).
    pub personal_data_retention: Retention,
}

/// How many days after voting day an observer's badge stays valid: 1 to 3650 (ten years
/// covers any runoff or repeat vote; more is a typo), 30 when the caller leaves it unset.
/// PostgreSQL holds the same range (`elections_badge_validity_days_range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadgeValidity(i32);

impl BadgeValidity {
    pub const DEFAULT_DAYS: i32 = 30;
    pub const MAX_DAYS: i32 = 3650;

    /// The contract's value: 0 is unset (proto3), which means the default.
    pub fn parse(days: i32) -> Result<Self, String> {
        match days {
            0 => Ok(BadgeValidity(Self::DEFAULT_DAYS)),
            1..=Self::MAX_DAYS => Ok(BadgeValidity(days)),
            _ => Err(format!(
                "must be 1 to {} days (0 or unset for {}), not {days}",
                Self::MAX_DAYS,
                Self::DEFAULT_DAYS
            )),
        }
    }

    /// A stored value, which PostgreSQL's CHECK keeps in range.
    pub fn from_stored(days: i32) -> Self {
        BadgeValidity(days)
    }

    pub fn days(self) -> i32 {
        self.0
    }
}

/// How many days after the election its personal data is kept: 0 keeps it, 90 when the
/// caller leaves it unset, at most 3650. PostgreSQL holds the same range
/// (`elections_personal_data_retention_days_range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(i32);

impl Retention {
    pub const DEFAULT_DAYS: i32 = 90;
    pub const MAX_DAYS: i32 = 3650;

    /// The contract's value: unset means the default; 0 keeps personal data.
    pub fn parse(days: Option<i32>) -> Result<Self, String> {
        match days {
            None => Ok(Retention(Self::DEFAULT_DAYS)),
            Some(days @ 0..=Self::MAX_DAYS) => Ok(Retention(days)),
            Some(days) => Err(format!(
                "must be 0 (keep personal data) to {} days, not {days}",
                Self::MAX_DAYS
            )),
        }
    }

    /// A stored value, which PostgreSQL's CHECK keeps in range.
    pub fn from_stored(days: i32) -> Self {
        Retention(days)
    }

    pub fn days(self) -> i32 {
        self.0
    }
}

impl ElectionFields {
    /// The instant after which accreditation is refused (BRIEF: accreditation deadline).
    pub fn accreditation_closes_at(&self) -> DateTime<Utc> {
        self.accreditation_deadline
            .unwrap_or_else(|| self.voting_day.and_time(NaiveTime::MIN).and_utc())
    }

    /// When the election's personal data is due for erasure: the retention period after the
    /// start (UTC) of voting day, or after the accreditation deadline if that is later. `None`
    /// when the election keeps personal data (retention 0).
    pub fn personal_data_due(&self) -> Option<DateTime<Utc>> {
        let days = self.personal_data_retention.days();
        if days == 0 {
            return None;
        }
        let voting_day = self.voting_day.and_time(NaiveTime::MIN).and_utc();
        let from = self.accreditation_closes_at().max(voting_day);
        Some(from + chrono::Duration::days(i64::from(days)))
    }
}

/// A stored election.
#[derive(Debug, Clone, PartialEq)]
pub struct Election {
    pub id: String,
    pub fields: ElectionFields,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: Uuid,
    /// When the election's personal data was erased; `None` while it is kept.
    pub personal_data_erase_time: Option<DateTime<Utc>>,
}

impl Election {
    pub fn name(&self) -> String {
        format!("elections/{}", self.id)
    }
}

/// A field of an election that a caller sets: the update mask's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionField {
    DisplayName,
    HostCountry,
    VotingDay,
    AccreditationDeadline,
    Description,
    DecisionRequired,
    BadgeValidityDays,
    InvitationRequired,
    PersonalDataRetentionDays,
}

impl ElectionField {
    pub const ALL: [ElectionField; 9] = [
        ElectionField::DisplayName,
        ElectionField::HostCountry,
        ElectionField::VotingDay,
        ElectionField::AccreditationDeadline,
        ElectionField::Description,
        ElectionField::DecisionRequired,
        ElectionField::BadgeValidityDays,
        ElectionField::InvitationRequired,
        ElectionField::PersonalDataRetentionDays,
    ];

    pub fn path(self) -> &'static str {
        match self {
            ElectionField::DisplayName => "display_name",
            ElectionField::HostCountry => "host_country",
            ElectionField::VotingDay => "voting_day",
            ElectionField::AccreditationDeadline => "accreditation_deadline",
            ElectionField::Description => "description",
            ElectionField::DecisionRequired => "decision_required",
            ElectionField::BadgeValidityDays => "badge_validity_days",
            ElectionField::InvitationRequired => "invitation_required",
            ElectionField::PersonalDataRetentionDays => "personal_data_retention_days",
        }
    }
}

/// What the rules need to know of an election's observers before it changes or goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObserverFacts {
    /// Observers ever decided (accredited, rejected or revoked), deleted ones included.
    pub decided: i64,
    /// Whether a live observer is a citizen of the host country the update would set.
    pub citizen_of_new_host: bool,
}

/// UpdateElection: observers are never citizens of the host country (HOST_COUNTRY_CITIZEN);
/// and once an observer was decided, the host country and the year of voting day are fixed,
/// because issued accreditation numbers carry them (HAS_DECIDED_OBSERVERS).
pub fn check_update(
    election: &str,
    before: &ElectionFields,
    after: &ElectionFields,
    observers: ObserverFacts,
) -> Result<(), Refusal> {
    if before.host_country != after.host_country && observers.citizen_of_new_host {
        return Err(Refusal::new(
            Rule::HostCountryCitizen,
            format!(
                "observers of {election} are citizens of {}",
                after.host_country
            ),
        )
        .field(
            "election.host_country",
            "observers are citizens of this country",
        ));
    }
    if moves_numbering(before, after) && observers.decided > 0 {
        let mut refusal = Refusal::new(
            Rule::HasDecidedObservers,
            format!(
                "{election} has decided observers whose accreditation numbers carry its host \
                 country and voting year; these cannot change"
            ),
        );
        if before.host_country != after.host_country {
            refusal = refusal.field("election.host_country", "fixed once observers were decided");
        }
        if chrono::Datelike::year(&before.voting_day) != chrono::Datelike::year(&after.voting_day) {
            refusal = refusal.field(
                "election.voting_day",
                "its year is fixed once observers were decided",
            );
        }
        return Err(refusal);
    }
    Ok(())
}

/// Whether an update changes what issued accreditation numbers carry: the host country or the
/// year of voting day.
pub fn moves_numbering(before: &ElectionFields, after: &ElectionFields) -> bool {
    use chrono::Datelike;
    before.host_country != after.host_country || before.voting_day.year() != after.voting_day.year()
}

/// DeleteElection with `force`: an election whose observers were ever decided is part of the
/// official record and is never wiped (HAS_DECIDED_OBSERVERS).
pub fn check_wipe(election: &str, observers: ObserverFacts) -> Result<(), Refusal> {
    if observers.decided > 0 {
        return Err(Refusal::new(
            Rule::HasDecidedObservers,
            format!(
                "{election} has {} decided observer(s): an election with accreditation decisions \
                 is never deleted",
                observers.decided
            ),
        )
        .metadata("resource", election));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Kazakhstan's early parliamentary election of 2023-03-19, default settings.
    pub(crate) fn kz_2023() -> ElectionFields {
        ElectionFields {
            display_name: "Early parliamentary election".into(),
            host_country: CountryCode::parse("KZ").unwrap(),
            voting_day: NaiveDate::from_ymd_opt(2023, 3, 19).unwrap(),
            accreditation_deadline: None,
            description: String::new(),
            decision_required: false,
            badge_validity_days: BadgeValidity::from_stored(30),
            invitation_required: false,
            personal_data_retention: Retention::from_stored(90),
        }
    }

    #[test]
    fn personal_data_is_kept_90_days_unless_set_and_0_keeps_it() {
        assert_eq!(Retention::parse(None).unwrap().days(), 90);
        assert_eq!(Retention::parse(Some(0)).unwrap().days(), 0);
        assert_eq!(Retention::parse(Some(3650)).unwrap().days(), 3650);
        for bad in [-1, 3651, i32::MIN, i32::MAX] {
            assert!(Retention::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn personal_data_is_due_after_voting_day_or_a_later_deadline() {
        let mut fields = kz_2023();
        assert_eq!(
            fields.personal_data_due(),
            Some("2023-06-17T00:00:00Z".parse().unwrap())
        );
        fields.accreditation_deadline = Some("2023-04-01T12:00:00Z".parse().unwrap());
        assert_eq!(
            fields.personal_data_due(),
            Some("2023-06-30T12:00:00Z".parse().unwrap())
        );
        // A deadline before voting day does not bring erasure forward.
        fields.accreditation_deadline = Some("2023-03-10T00:00:00Z".parse().unwrap());
        assert_eq!(
            fields.personal_data_due(),
            Some("2023-06-17T00:00:00Z".parse().unwrap())
        );
        fields.personal_data_retention = Retention::from_stored(0);
        assert_eq!(fields.personal_data_due(), None);
    }

    #[test]
    fn badges_are_valid_30_days_unless_set_within_ten_years() {
        assert_eq!(BadgeValidity::parse(0).unwrap().days(), 30);
        assert_eq!(BadgeValidity::parse(1).unwrap().days(), 1);
        assert_eq!(BadgeValidity::parse(3650).unwrap().days(), 3650);
        for bad in [-1, 3651, i32::MAX, i32::MIN] {
            assert!(BadgeValidity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_election_with_decisions_is_never_wiped() {
        let decided = ObserverFacts {
            decided: 1,
            ..Default::default()
        };
        assert_eq!(
            check_wipe("e", decided).unwrap_err().rule,
            Rule::HasDecidedObservers
        );
        assert!(check_wipe("e", ObserverFacts::default()).is_ok());
    }

    #[test]
    fn the_numbering_of_decided_observers_is_fixed() {
        let decided = ObserverFacts {
            decided: 3,
            ..Default::default()
        };
        let mut moved = kz_2023();
        moved.voting_day = NaiveDate::from_ymd_opt(2024, 1, 10).unwrap();
        assert_eq!(
            check_update("e", &kz_2023(), &moved, decided)
                .unwrap_err()
                .rule,
            Rule::HasDecidedObservers
        );
        let mut same_year = kz_2023();
        same_year.voting_day = NaiveDate::from_ymd_opt(2023, 4, 2).unwrap();
        same_year.display_name = "Runoff".into();
        assert!(check_update("e", &kz_2023(), &same_year, decided).is_ok());
        assert!(check_update("e", &kz_2023(), &moved, ObserverFacts::default()).is_ok());
    }

    #[test]
    fn the_host_country_never_becomes_an_observers_citizenship() {
        let mut moved = kz_2023();
        moved.host_country = CountryCode::parse("DE").unwrap();
        let facts = ObserverFacts {
            decided: 0,
            citizen_of_new_host: true,
        };
        assert_eq!(
            check_update("e", &kz_2023(), &moved, facts)
                .unwrap_err()
                .rule,
            Rule::HostCountryCitizen
        );
    }

    #[test]
    fn accreditation_closes_at_the_start_of_voting_day_by_default() {
        let fields = kz_2023();
        assert_eq!(
            fields.accreditation_closes_at().to_rfc3339(),
            "2023-03-19T00:00:00+00:00"
        );
    }
}
