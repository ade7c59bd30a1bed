//! SQL for meetings.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{KeyValue, Keyed, ListQuery, ListSpec, SortField};
use crate::domain::meeting::{Conclusion, Meeting, MeetingFields, MeetingState, meeting_name};
use crate::domain::names;
use crate::error::{Error, Result};
use crate::store::listing::{Source, fetch_page};

fn delegation_key(name: &str) -> Option<String> {
    names::parse_child(name, "elections", "delegations")
        .ok()
        .map(|(_, id)| id.to_owned())
}

/// What ListMeetings filters and orders by.
pub static LIST_SPEC: ListSpec = ListSpec {
    collection: "meetings",
    filter_fields: &[
        FilterField {
            path: "delegation",
            column: "delegation_ids",
            field_type: FieldType::Member(delegation_key),
            nullable: false,
        },
        FilterField {
            path: "host",
            column: "host",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "title",
            column: "title",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "state",
            column: "state",
            field_type: FieldType::Enum(MeetingState::NAMES),
            nullable: false,
        },
        FilterField {
            path: "start_time",
            column: "start_time",
            field_type: FieldType::Timestamp,
            nullable: false,
        },
        FilterField {
            path: "end_time",
            column: "end_time",
            field_type: FieldType::Timestamp,
            nullable: false,
        },
        FilterField {
            path: "location",
            column: "location",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "create_time",
            column: "create_time",
            field_type: FieldType::Timestamp,
            nullable: false,
        },
        FilterField {
            path: "update_time",
            column: "update_time",
            field_type: FieldType::Timestamp,
            nullable: false,
        },
    ],
    personal_filter_fields: &[],
    sort_fields: &[
        SortField {
            path: "start_time",
            column: "start_time",
        },
        SortField {
            path: "end_time",
            column: "end_time",
        },
        SortField {
            path: "host",
            column: "host",
        },
        SortField {
            path: "state",
            column: "state",
        },
        SortField {
            path: "title",
            column: "title",
        },
        SortField {
            path: "create_time",
            column: "create_time",
        },
        SortField {
            path: "update_time",
            column: "update_time",
        },
    ],
    tiebreak: SortField {
        path: "name",
        column: "id",
    },
    default_order_by: "create_time",
};

#[derive(sqlx::FromRow)]
struct MeetingRow {
    election_id: String,
    id: String,
    title: String,
    host: String,
    delegation_ids: Vec<String>,
    start_time: DateTime<Utc>,
    end_time: DateTime<Utc>,
    location: String,
    topics: Vec<String>,
    state: String,
    outcome: String,
    cancel_reason: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    etag: Uuid,
    delete_time: Option<DateTime<Utc>>,
}

impl TryFrom<MeetingRow> for Meeting {
    type Error = Error;

    fn try_from(row: MeetingRow) -> Result<Meeting> {
        let state = MeetingState::parse(&row.state).ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "stored meeting {}: state {}",
                row.id,
                row.state
            ))
        })?;
        Ok(Meeting {
            fields: MeetingFields {
                title: row.title,
                host: row.host,
                delegation_ids: row.delegation_ids,
                start_time: row.start_time,
                end_time: row.end_time,
                location: row.location,
                topics: row.topics,
            },
            state,
            outcome: row.outcome,
            cancel_reason: row.cancel_reason,
            election_id: row.election_id,
            id: row.id,
            create_time: row.create_time,
            update_time: row.update_time,
            etag: row.etag,
            delete_time: row.delete_time,
        })
    }
}

impl Keyed for Meeting {
    fn key_value(&self, path: &str) -> KeyValue {
        match path {
            "start_time" => KeyValue::time(self.fields.start_time),
            "end_time" => KeyValue::time(self.fields.end_time),
            "host" => KeyValue::Text(self.fields.host.clone()),
            "state" => KeyValue::Text(self.state.as_str().to_owned()),
            "title" => KeyValue::Text(self.fields.title.clone()),
            "create_time" => KeyValue::time(self.create_time),
            "update_time" => KeyValue::time(self.update_time),
            _ => KeyValue::Text(self.id.clone()),
        }
    }
}

const COLUMNS: &str = "election_id, id, title, host, delegation_ids, start_time, end_time, \
                       location, topics, state, outcome, cancel_reason, create_time, \
                       update_time, etag, delete_time";

/// The meetings' change feed.
pub const FEED: crate::store::changes::Feed = crate::store::changes::Feed {
    resource_type: "meeting",
    table: "meetings",
    columns: COLUMNS,
};

/// The meeting of a change-feed row (`changes::after`).
pub fn from_change_row(row: &sqlx::postgres::PgRow) -> Result<Meeting> {
    Meeting::try_from(<MeetingRow as sqlx::FromRow<sqlx::postgres::PgRow>>::from_row(row)?)
}

fn into_meetings(rows: Vec<MeetingRow>) -> Result<Vec<Meeting>> {
    rows.into_iter().map(Meeting::try_from).collect()
}

pub async fn insert(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    fields: &MeetingFields,
) -> Result<Meeting> {
    let row: MeetingRow = sqlx::query_as(trusted_sql!(
        "INSERT INTO meetings (election_id, id, title, host, delegation_ids, start_time, \
         end_time, location, topics) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(&fields.title)
    .bind(&fields.host)
    .bind(&fields.delegation_ids)
    .bind(fields.start_time)
    .bind(fields.end_time)
    .bind(&fields.location)
    .bind(&fields.topics)
    .fetch_one(conn)
    .await
    .map_err(Error::on_insert(|| meeting_name(election_id, id)))?;
    row.try_into()
}

/// The meeting, locked for the rest of the transaction when `for_update`.
pub async fn get(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    for_update: bool,
) -> Result<Option<Meeting>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<MeetingRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM meetings WHERE election_id = $1 AND id = $2{lock}"
    ))
    .bind(election_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Meeting::try_from).transpose()
}

/// Replaces the caller-set fields and gives the meeting a new etag.
pub async fn update(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    fields: &MeetingFields,
) -> Result<Meeting> {
    let row: MeetingRow = sqlx::query_as(trusted_sql!(
        "UPDATE meetings SET title = $3, host = $4, delegation_ids = $5, start_time = $6, \
         end_time = $7, location = $8, topics = $9, update_time = now(), \
         etag = gen_random_uuid() WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(&fields.title)
    .bind(&fields.host)
    .bind(&fields.delegation_ids)
    .bind(fields.start_time)
    .bind(fields.end_time)
    .bind(&fields.location)
    .bind(&fields.topics)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Moves the meeting to the concluded state, recording its outcome or cancellation reason.
pub async fn conclude(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    conclusion: &Conclusion,
) -> Result<Meeting> {
    let row: MeetingRow = sqlx::query_as(trusted_sql!(
        "UPDATE meetings SET state = $3, outcome = $4, cancel_reason = $5, update_time = now(), \
         etag = gen_random_uuid() WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(conclusion.state.as_str())
    .bind(&conclusion.outcome)
    .bind(&conclusion.cancel_reason)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Soft-deletes (`deleted`) or restores the meeting.
pub async fn set_deleted(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    deleted: bool,
) -> Result<Meeting> {
    let row: MeetingRow = sqlx::query_as(trusted_sql!(
        "UPDATE meetings SET delete_time = CASE WHEN $3 THEN now() END, update_time = now(), \
         etag = gen_random_uuid() WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(deleted)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Locks, until the transaction ends, the slots `fields` would hold — its host's and each
/// delegation's — in one order for every writer. Writers of one host or delegation then
/// take turns, and each reads the meetings committed before it: the domain names the
/// conflict. Without it two concurrent inserts each wait in the exclusion constraints for
/// the other's row, PostgreSQL breaks the deadlock after `deadlock_timeout`, and with many
/// replicas booking one slot at once the retries deadlock again until every call's deadline
/// passes and none is booked (tests/replicas).
pub async fn lock_slots(
    conn: &mut PgConnection,
    election_id: &str,
    fields: &MeetingFields,
) -> Result<()> {
    // Sorted in a subquery (never flattened, for its ORDER BY), locked in that order.
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock(hashtextextended(slot, 0))) FROM ( \
           SELECT DISTINCT slot FROM unnest( \
             array_append(array(SELECT 'meeting-slot/' || $1 || '/delegation/' || d \
                                  FROM unnest($3::text[]) AS d), \
                          'meeting-slot/' || $1 || '/host/' || lower(btrim($2)))) AS slot \
           ORDER BY slot) AS slots",
    )
    .bind(election_id)
    .bind(&fields.host)
    .bind(&fields.delegation_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// The meetings other than `except` that may clash with `fields`: holding their slot (not
/// cancelled, not deleted), at an overlapping time, with the same host key or one of the
/// delegations. The domain decides which one conflicts (`meeting::find_conflict`); this
/// narrows the search with the indexes of the exclusion constraints.
pub async fn neighbours(
    conn: &mut PgConnection,
    election_id: &str,
    except: &str,
    fields: &MeetingFields,
) -> Result<Vec<Meeting>> {
    let rows: Vec<MeetingRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM meetings \
          WHERE election_id = $1 AND id <> $2 AND state <> 'CANCELLED' AND delete_time IS NULL \
            AND during && tstzrange($4, $5, '[)') \
            AND (host_key = lower(btrim($3)) \
                 OR id IN (SELECT meeting_id FROM meeting_delegations \
                            WHERE election_id = $1 AND holds_slot AND delegation_id = ANY($6) \
                              AND during && tstzrange($4, $5, '[)'))) \
          ORDER BY start_time, id"
    ))
    .bind(election_id)
    .bind(except)
    .bind(&fields.host)
    .bind(fields.start_time)
    .bind(fields.end_time)
    .bind(&fields.delegation_ids)
    .fetch_all(conn)
    .await?;
    into_meetings(rows)
}

/// Scheduled meetings (not deleted) a delegation attends.
pub async fn scheduled_with_delegation(
    conn: &mut PgConnection,
    election_id: &str,
    delegation_id: &str,
) -> Result<Vec<Meeting>> {
    let rows: Vec<MeetingRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM meetings WHERE election_id = $1 AND delegation_ids @> ARRAY[$2]::text[] \
         AND state = 'SCHEDULED' AND delete_time IS NULL ORDER BY start_time, id"
    ))
    .bind(election_id)
    .bind(delegation_id)
    .fetch_all(conn)
    .await?;
    into_meetings(rows)
}

pub async fn list(
    conn: &mut PgConnection,
    election_id: &str,
    query: &ListQuery,
) -> Result<(Vec<Meeting>, i64)> {
    let source = Source {
        columns: COLUMNS,
        from: "meetings",
    };
    let election_id = election_id.to_owned();
    let show_deleted = query.show_deleted;
    let scope = move |qb: &mut sqlx::QueryBuilder<sqlx::Postgres>| {
        qb.push(" AND election_id = ")
            .push_bind(election_id.clone());
        if !show_deleted {
            qb.push(" AND delete_time IS NULL");
        }
    };
    let (rows, total) = fetch_page::<MeetingRow>(conn, &source, &scope, query).await?;
    Ok((into_meetings(rows)?, total))
}
