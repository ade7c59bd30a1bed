//! SQL for elections.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{FromRow, PgConnection, Row};
use uuid::Uuid;

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{KeyValue, Keyed, ListQuery, ListSpec, SortField};
use crate::aip::request_id::IdempotencyKey;
use crate::domain::country::CountryCode;
use crate::domain::delegation::Delegation;
use crate::domain::election::{BadgeValidity, Election, ElectionFields, ObserverFacts, Retention};
use crate::domain::meeting::Meeting;
use crate::domain::observer::Observer;
use crate::error::{Error, Result};
use crate::store::listing::{Source, fetch_page};
use crate::store::request_ids;

/// What ListElections filters and orders by.
pub static LIST_SPEC: ListSpec = ListSpec {
    collection: "elections",
    filter_fields: &[
        FilterField {
            path: "display_name",
            column: "display_name",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "host_country",
            column: "host_country",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "voting_day",
            column: "voting_day",
            field_type: FieldType::Date,
            nullable: false,
        },
        FilterField {
            path: "accreditation_deadline",
            column: "accreditation_deadline",
            field_type: FieldType::Timestamp,
            nullable: true,
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
            path: "create_time",
            column: "create_time",
        },
        SortField {
            path: "update_time",
            column: "update_time",
        },
        SortField {
            path: "display_name",
            column: "display_name",
        },
        SortField {
            path: "voting_day",
            column: "voting_day",
        },
        SortField {
            path: "host_country",
            column: "host_country",
        },
    ],
    tiebreak: SortField {
        path: "name",
        column: "id",
    },
    default_order_by: "create_time",
};

#[derive(sqlx::FromRow)]
struct ElectionRow {
    id: String,
    display_name: String,
    host_country: String,
    voting_day: NaiveDate,
    accreditation_deadline: Option<DateTime<Utc>>,
    description: String,
    decision_required: bool,
    badge_validity_days: i32,
    invitation_required: bool,
    personal_data_retention_days: i32,
    personal_data_erase_time: Option<DateTime<Utc>>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    etag: Uuid,
}

impl TryFrom<ElectionRow> for Election {
    type Error = Error;

    fn try_from(row: ElectionRow) -> Result<Election> {
        Ok(Election {
            fields: ElectionFields {
                display_name: row.display_name,
                host_country: CountryCode::parse(&row.host_country).map_err(|e| {
                    Error::internal(anyhow::anyhow!("stored election {}: {e}", row.id))
                })?,
                voting_day: row.voting_day,
                accreditation_deadline: row.accreditation_deadline,
                description: row.description,
                decision_required: row.decision_required,
                badge_validity_days: BadgeValidity::from_stored(row.badge_validity_days),
                invitation_required: row.invitation_required,
                personal_data_retention: Retention::from_stored(row.personal_data_retention_days),
            },
            personal_data_erase_time: row.personal_data_erase_time,
            id: row.id,
            create_time: row.create_time,
            update_time: row.update_time,
            etag: row.etag,
        })
    }
}

impl Keyed for Election {
    fn key_value(&self, path: &str) -> KeyValue {
        match path {
            "create_time" => KeyValue::time(self.create_time),
            "update_time" => KeyValue::time(self.update_time),
            "display_name" => KeyValue::Text(self.fields.display_name.clone()),
            "voting_day" => KeyValue::Date(self.fields.voting_day),
            "host_country" => KeyValue::Text(self.fields.host_country.to_string()),
            _ => KeyValue::Text(self.id.clone()),
        }
    }
}

/// Every column of an election, by the names [`from_joined_row`] reads.
pub(crate) const COLUMNS: &str = "id, display_name, host_country, voting_day, accreditation_deadline, \
                       description, decision_required, badge_validity_days, \
                       invitation_required, personal_data_retention_days, \
                       personal_data_erase_time, create_time, update_time, etag";

pub async fn insert(
    conn: &mut PgConnection,
    id: &str,
    fields: &ElectionFields,
) -> Result<Election> {
    let row: ElectionRow = sqlx::query_as(trusted_sql!(
        "INSERT INTO elections (id, display_name, host_country, voting_day, \
         accreditation_deadline, description, decision_required, badge_validity_days, \
         invitation_required, personal_data_retention_days) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&fields.display_name)
    .bind(fields.host_country.as_str())
    .bind(fields.voting_day)
    .bind(fields.accreditation_deadline)
    .bind(&fields.description)
    .bind(fields.decision_required)
    .bind(fields.badge_validity_days.days())
    .bind(fields.invitation_required)
    .bind(fields.personal_data_retention.days())
    .fetch_one(conn)
    .await
    .map_err(Error::on_insert(|| format!("elections/{id}")))?;
    row.try_into()
}

/// The election, locked for the rest of the transaction when `for_update`.
pub async fn get(conn: &mut PgConnection, id: &str, for_update: bool) -> Result<Option<Election>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<ElectionRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM elections WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Election::try_from).transpose()
}

/// Whether this call claimed `key` (`false`: an earlier call did, whose response
/// [`request_ids::first_response`] reads), and the election: both in one statement, a round
/// trip less for every create in an election. The claim blocks on a concurrent call with the
/// same key as [`request_ids::claim`] does.
pub async fn get_claiming(
    conn: &mut PgConnection,
    id: &str,
    key: &IdempotencyKey,
) -> Result<(bool, Option<Election>)> {
    let row = sqlx::query(trusted_sql!(
        "WITH claim AS ({claim} RETURNING 1) \
         SELECT EXISTS (SELECT FROM claim) AS claimed, {COLUMNS} \
         FROM (SELECT) AS one LEFT JOIN elections ON id = $5",
        claim = request_ids::claim_statement(1)
    ))
    .bind(&key.agency)
    .bind(key.request_id)
    .bind(key.method)
    .bind(&key.fingerprint)
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok((row.try_get("claimed")?, from_joined_row(&row)?))
}

/// The election of a row that selected [`COLUMNS`] from a left join with `elections`:
/// `None` when the join found none (its NULLs).
pub(crate) fn from_joined_row(row: &sqlx::postgres::PgRow) -> Result<Option<Election>> {
    if row.try_get::<Option<String>, _>("id")?.is_none() {
        return Ok(None);
    }
    Ok(Some(ElectionRow::from_row(row)?.try_into()?))
}

/// The election, locked for the rest of the transaction, unless another transaction holds
/// its lock (`SKIP LOCKED`): the background erasure of every replica tries each due election,
/// and the one that gets the lock erases it while the others go on to the next.
pub async fn lock_unless_busy(conn: &mut PgConnection, id: &str) -> Result<Option<Election>> {
    let row: Option<ElectionRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM elections WHERE id = $1 FOR UPDATE SKIP LOCKED"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Election::try_from).transpose()
}

/// The elections that still keep personal data and do not keep it for good (retention 0):
/// those the background erasure examines (`domain::retention::is_due` decides).
pub async fn keeping_personal_data(conn: &mut PgConnection) -> Result<Vec<Election>> {
    let rows: Vec<ElectionRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM elections \
         WHERE personal_data_erase_time IS NULL AND personal_data_retention_days > 0 ORDER BY id"
    ))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Election::try_from).collect()
}

/// Marks the election's personal data erased at `now`, with a new etag.
pub async fn set_personal_data_erased(
    conn: &mut PgConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Election> {
    let row: ElectionRow = sqlx::query_as(trusted_sql!(
        "UPDATE elections SET personal_data_erase_time = $2, update_time = $2, \
         etag = gen_random_uuid() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Replaces the caller-set fields and gives the election a new etag.
pub async fn update(
    conn: &mut PgConnection,
    id: &str,
    fields: &ElectionFields,
) -> Result<Election> {
    let row: ElectionRow = sqlx::query_as(trusted_sql!(
        "UPDATE elections SET display_name = $2, host_country = $3, voting_day = $4, \
         accreditation_deadline = $5, description = $6, decision_required = $7, \
         badge_validity_days = $8, invitation_required = $9, \
         personal_data_retention_days = $10, update_time = now(), etag = gen_random_uuid() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&fields.display_name)
    .bind(fields.host_country.as_str())
    .bind(fields.voting_day)
    .bind(fields.accreditation_deadline)
    .bind(&fields.description)
    .bind(fields.decision_required)
    .bind(fields.badge_validity_days.days())
    .bind(fields.invitation_required)
    .bind(fields.personal_data_retention.days())
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Deletes the election. Children are protected by foreign keys (HAS_CHILDREN).
pub async fn delete(conn: &mut PgConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM elections WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn list(conn: &mut PgConnection, query: &ListQuery) -> Result<(Vec<Election>, i64)> {
    let source = Source {
        columns: COLUMNS,
        from: "elections",
    };
    let (rows, total) = fetch_page::<ElectionRow>(conn, &source, &|_| {}, query).await?;
    let elections = rows
        .into_iter()
        .map(Election::try_from)
        .collect::<Result<_>>()?;
    Ok((elections, total))
}

/// Whether any delegation, observer, meeting or invitation, deleted or not, belongs to the
/// election.
pub async fn has_children(conn: &mut PgConnection, id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM delegations WHERE election_id = $1) \
             OR EXISTS (SELECT 1 FROM observers WHERE election_id = $1) \
             OR EXISTS (SELECT 1 FROM meetings WHERE election_id = $1) \
             OR EXISTS (SELECT 1 FROM invitations WHERE election_id = $1)",
    )
    .bind(id)
    .fetch_one(conn)
    .await?)
}

/// Removes every child of the election for good (DeleteElection with `force`).
pub async fn delete_children(conn: &mut PgConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM meetings WHERE election_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    crate::store::invitations::delete_of_election(conn, id).await?;
    // Heads first, so the deferred head key has nothing to check when observers go.
    sqlx::query("UPDATE delegations SET head_observer_id = NULL WHERE election_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM observers WHERE election_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM delegations WHERE election_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM observer_tallies WHERE election_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What the election rules need to know of its observers: how many were ever decided, and
/// whether a live one is a citizen of `new_host`.
pub async fn observer_facts(
    conn: &mut PgConnection,
    id: &str,
    new_host: CountryCode,
) -> Result<ObserverFacts> {
    let (decided, citizen_of_new_host): (i64, bool) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE accreditation_state <> 'PENDING'), \
                coalesce(bool_or(citizenship = $2 AND delete_time IS NULL), false) \
         FROM observers WHERE election_id = $1",
    )
    .bind(id)
    .bind(new_host.as_str())
    .fetch_one(conn)
    .await?;
    Ok(ObserverFacts {
        decided,
        citizen_of_new_host,
    })
}

/// Every child of an election, deleted ones included, as DeleteElection with `force` removes
/// them (each is audited on its own).
pub struct Children {
    pub meetings: Vec<Meeting>,
    pub invitations: Vec<crate::domain::invitation::Invitation>,
    pub observers: Vec<Observer>,
    pub delegations: Vec<Delegation>,
}

pub async fn children(conn: &mut PgConnection, id: &str) -> Result<Children> {
    use crate::store::{delegations, meetings, observers};
    let select = |feed: &crate::store::changes::Feed| {
        trusted_sql!(
            "SELECT {} FROM {} WHERE election_id = $1 ORDER BY id",
            feed.columns,
            feed.table
        )
    };
    let rows = sqlx::query(select(&meetings::FEED))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let meetings = rows
        .iter()
        .map(meetings::from_change_row)
        .collect::<Result<_>>()?;
    let rows = sqlx::query(select(&observers::FEED))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let observers = rows
        .iter()
        .map(observers::from_change_row)
        .collect::<Result<_>>()?;
    let rows = sqlx::query(select(&delegations::FEED))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let delegations = rows
        .iter()
        .map(delegations::from_change_row)
        .collect::<Result<_>>()?;
    let invitations = crate::store::invitations::of_election(conn, id).await?;
    Ok(Children {
        meetings,
        invitations,
        observers,
        delegations,
    })
}
