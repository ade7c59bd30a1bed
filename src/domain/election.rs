//! Elections: the scope of everything about observation.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use super::country::CountryCode;

/// The fields of an election a caller sets, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ElectionFields {
    pub display_name: String,
    pub host_country: CountryCode,
    pub voting_day: NaiveDate,
    /// When `None`, accreditation closes at the start of voting day, UTC.
    pub accreditation_deadline: Option<DateTime<Utc>>,
    pub description: String,
}

impl ElectionFields {
    /// The instant after which accreditation is refused (BRIEF: accreditation deadline).
    pub fn accreditation_closes_at(&self) -> DateTime<Utc> {
        self.accreditation_deadline
            .unwrap_or_else(|| self.voting_day.and_time(NaiveTime::MIN).and_utc())
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
}

impl Election {
    pub fn name(&self) -> String {
        format!("elections/{}", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accreditation_closes_at_the_start_of_voting_day_by_default() {
        let fields = ElectionFields {
            display_name: "Early parliamentary election".into(),
            host_country: CountryCode::parse("KZ").unwrap(),
            voting_day: NaiveDate::from_ymd_opt(2023, 3, 19).unwrap(),
            accreditation_deadline: None,
            description: String::new(),
        };
        assert_eq!(
            fields.accreditation_closes_at().to_rfc3339(),
            "2023-03-19T00:00:00+00:00"
        );
    }
}
