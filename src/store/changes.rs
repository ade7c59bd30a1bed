//! SQL of the change feed: committed changes of one resource type of an election, in commit
//! order, with the resource rebuilt as a row of its own table (`jsonb_populate_record`), so
//! each store module decodes it with its usual row type.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::error::Result;

/// Where a change sits in the feed and what kind it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeMeta {
    pub position: i64,
    /// `CREATED`, `UPDATED`, `DELETED` or `UNDELETED`.
    pub change_type: String,
    pub change_time: DateTime<Utc>,
}

/// A resource type of the feed: its name in `changes` and its table.
#[derive(Debug, Clone, Copy)]
pub struct Feed {
    pub resource_type: &'static str,
    pub table: &'static str,
    /// The table's columns as its row type reads them.
    pub columns: &'static str,
}

/// Up to `limit` changes after `position`, oldest first, each with its row.
pub async fn after(
    conn: &mut PgConnection,
    feed: &Feed,
    election_id: &str,
    position: i64,
    limit: i64,
) -> Result<Vec<(ChangeMeta, PgRow)>> {
    let rows = sqlx::query(trusted_sql!(
        // The resource's columns first: a row type may read them by position.
        "SELECT {columns}, position, change_type, change_time FROM ( \
           SELECT c.position, c.change_type, c.change_time, r.* \
             FROM changes c \
             CROSS JOIN LATERAL jsonb_populate_record(NULL::{table}, c.resource) r \
            WHERE c.election_id = $1 AND c.resource_type = $2 AND c.position > $3 \
            ORDER BY c.position LIMIT $4) AS feed ORDER BY position",
        columns = feed.columns,
        table = feed.table,
    ))
    .bind(election_id)
    .bind(feed.resource_type)
    .bind(position)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let meta = ChangeMeta {
                position: row.try_get("position")?,
                change_type: row.try_get("change_type")?,
                change_time: row.try_get("change_time")?,
            };
            Ok((meta, row))
        })
        .collect()
}

/// The election's last position: a watch without a resume token starts after it.
pub async fn last_position(conn: &mut PgConnection, election_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce((SELECT last_position FROM change_positions WHERE election_id = $1), 0)",
    )
    .bind(election_id)
    .fetch_one(conn)
    .await?)
}

/// The last positions of these elections, for those that have one (coalesced checks that
/// kept pages are current, `api::point_reads`).
pub async fn last_positions(
    conn: &mut PgConnection,
    election_ids: &[&str],
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT election_id, last_position FROM change_positions WHERE election_id = ANY($1)",
    )
    .bind(election_ids)
    .fetch_all(conn)
    .await?)
}

/// Forgets changes older than `retention` (never younger than a day). Through a function
/// that runs as the schema's owner: the runtime role may not delete from the change feed.
pub async fn purge(conn: &mut PgConnection, retention: std::time::Duration) -> Result<u64> {
    let purged: i64 =
        sqlx::query_scalar("SELECT purge_changes(make_interval(secs => $1::double precision))")
            .bind(retention.as_secs_f64())
            .fetch_one(conn)
            .await?;
    Ok(u64::try_from(purged).unwrap_or(0))
}
