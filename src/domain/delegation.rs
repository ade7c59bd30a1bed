//! Delegations: the group a sending organization sends to one election.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

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

/// A stay is in order when departure is not before arrival (either may be unknown).
pub fn stay_in_order(arrival: Option<NaiveDate>, departure: Option<NaiveDate>) -> bool {
    match (arrival, departure) {
        (Some(arrival), Some(departure)) => departure >= arrival,
        _ => true,
    }
}
