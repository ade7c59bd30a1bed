//! Heads of delegation that an observer's change affects: PostgreSQL clears the head of a
//! delegation when that observer leaves it or is deleted (`observers_maintain_delegations`);
//! the api layer audits that change of the delegation, so it reads them here.

use sqlx::PgConnection;

use crate::error::Result;

/// The ids of the delegations of the election whose head is this observer.
pub async fn headed_by(
    conn: &mut PgConnection,
    election_id: &str,
    observer_id: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM delegations WHERE election_id = $1 AND head_observer_id = $2 ORDER BY id",
    )
    .bind(election_id)
    .bind(observer_id)
    .fetch_all(conn)
    .await?)
}
