//! Meetings of commission officials with delegations.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// Where a meeting stands: `SCHEDULED → HELD | CANCELLED`, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingState {
    Scheduled,
    Held,
    Cancelled,
}

impl MeetingState {
    pub const NAMES: &[&str] = &["SCHEDULED", "HELD", "CANCELLED"];
    const ALL: [MeetingState; 3] = [
        MeetingState::Scheduled,
        MeetingState::Held,
        MeetingState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// The fields of a meeting a caller sets, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingFields {
    pub title: String,
    pub host: String,
    /// Delegation ids, in the caller's order, without repeats.
    pub delegation_ids: Vec<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub location: String,
    pub topics: Vec<String>,
}

/// A stored meeting.
#[derive(Debug, Clone, PartialEq)]
pub struct Meeting {
    pub election_id: String,
    pub id: String,
    pub fields: MeetingFields,
    pub state: MeetingState,
    pub outcome: String,
    pub cancel_reason: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: Uuid,
    pub delete_time: Option<DateTime<Utc>>,
}

impl Meeting {
    pub fn name(&self) -> String {
        meeting_name(&self.election_id, &self.id)
    }
}

pub fn meeting_name(election_id: &str, id: &str) -> String {
    format!("elections/{election_id}/meetings/{id}")
}

/// Whether a meeting from `start` to `end` falls within a stay (UTC calendar dates,
/// inclusive; an unknown bound does not limit).
pub fn within_stay(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    arrival: Option<NaiveDate>,
    departure: Option<NaiveDate>,
) -> bool {
    arrival.is_none_or(|arrival| start.date_naive() >= arrival)
        && departure.is_none_or(|departure| end.date_naive() <= departure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_stay_bounds_both_ends_inclusively() {
        let arrival = NaiveDate::from_ymd_opt(2023, 3, 15);
        let departure = NaiveDate::from_ymd_opt(2023, 3, 21);
        assert!(within_stay(
            at("2023-03-15T00:00:00Z"),
            at("2023-03-21T23:00:00Z"),
            arrival,
            departure
        ));
        assert!(!within_stay(
            at("2023-03-14T23:00:00Z"),
            at("2023-03-15T01:00:00Z"),
            arrival,
            departure
        ));
        assert!(!within_stay(
            at("2023-03-21T23:00:00Z"),
            at("2023-03-22T01:00:00Z"),
            arrival,
            departure
        ));
        assert!(within_stay(
            at("2020-01-01T00:00:00Z"),
            at("2020-01-01T01:00:00Z"),
            None,
            None
        ));
    }
}
