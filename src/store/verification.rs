//! SQL for verification: an accreditation found by its number, with what a check shows.

use chrono::NaiveDate;
use sqlx::PgConnection;

use crate::domain::election::BadgeValidity;
use crate::domain::observer::AccreditationState;
use crate::error::{Error, Result};

/// The accreditation that holds a number, with the names a check returns (the record's
/// current ones) and what its badges' expiry is computed from. No personal data.
#[derive(Debug, Clone, PartialEq)]
pub struct Accreditation {
    pub state: AccreditationState,
    pub deleted: bool,
    pub accreditation_number: String,
    pub given_name: String,
    pub family_name: String,
    pub citizenship: String,
    pub organization_display_name: String,
    pub election_id: String,
    pub election_display_name: String,
    pub voting_day: NaiveDate,
    pub badge_validity: BadgeValidity,
}

#[derive(sqlx::FromRow)]
struct Row {
    accreditation_state: String,
    deleted: bool,
    accreditation_number: String,
    given_name: String,
    family_name: String,
    citizenship: String,
    organization_display_name: String,
    election_id: String,
    election_display_name: String,
    voting_day: NaiveDate,
    badge_validity_days: i32,
}

/// The accreditations holding `numbers`, in one statement by the registry-wide unique index
/// `observers_accreditation_number` (a batch of coalesced verifications, `api::point_reads`).
pub async fn by_numbers(conn: &mut PgConnection, numbers: &[&str]) -> Result<Vec<Accreditation>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT o.accreditation_state, o.delete_time IS NOT NULL AS deleted, \
                o.accreditation_number, o.given_name, o.family_name, o.citizenship::text, \
                g.display_name AS organization_display_name, o.election_id, \
                e.display_name AS election_display_name, e.voting_day, e.badge_validity_days \
           FROM observers o \
           JOIN elections e ON e.id = o.election_id \
           JOIN organizations g ON g.id = o.organization_id \
          WHERE o.accreditation_number = ANY($1)",
    )
    .bind(numbers)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(accreditation).collect()
}

fn accreditation(row: Row) -> Result<Accreditation> {
    Ok(Accreditation {
        state: AccreditationState::parse(&row.accreditation_state).ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "unknown accreditation state {:?}",
                row.accreditation_state
            ))
        })?,
        deleted: row.deleted,
        accreditation_number: row.accreditation_number,
        given_name: row.given_name,
        family_name: row.family_name,
        citizenship: row.citizenship,
        organization_display_name: row.organization_display_name,
        election_id: row.election_id,
        election_display_name: row.election_display_name,
        voting_day: row.voting_day,
        badge_validity: BadgeValidity::from_stored(row.badge_validity_days),
    })
}
