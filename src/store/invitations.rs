//! SQL for invitations.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{KeyValue, Keyed, ListQuery, ListSpec, SortField};
use crate::domain::invitation::{
    Invitation, InvitationFields, InvitationState, Outcome, invitation_name,
};
use crate::domain::names;
use crate::error::{Error, Result};
use crate::store::listing::{Source, fetch_page};

fn organization_key(name: &str) -> Option<String> {
    names::parse_top_level(name, "organizations")
        .ok()
        .map(str::to_owned)
}

/// What ListInvitations filters and orders by.
pub static LIST_SPEC: ListSpec = ListSpec {
    collection: "invitations",
    filter_fields: &[
        FilterField {
            path: "organization",
            column: "organization_id",
            field_type: FieldType::Reference(organization_key),
            nullable: false,
        },
        FilterField {
            path: "state",
            column: "state",
            field_type: FieldType::Enum(InvitationState::NAMES),
            nullable: false,
        },
        FilterField {
            path: "send_date",
            column: "send_date",
            field_type: FieldType::Date,
            nullable: false,
        },
        FilterField {
            path: "reply_date",
            column: "reply_date",
            field_type: FieldType::Date,
            nullable: true,
        },
        FilterField {
            path: "reference",
            column: "reference",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "expected_observers",
            column: "expected_observers",
            field_type: FieldType::Integer,
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
            path: "send_date",
            column: "send_date",
        },
        SortField {
            path: "state",
            column: "state",
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
struct InvitationRow {
    election_id: String,
    id: String,
    organization_id: String,
    send_date: NaiveDate,
    reference: String,
    state: String,
    reply_date: Option<NaiveDate>,
    expected_observers: i32,
    notes: String,
    reason: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    etag: Uuid,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = Error;

    fn try_from(row: InvitationRow) -> Result<Invitation> {
        let state = InvitationState::parse(&row.state).ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "stored invitation {}: state {}",
                row.id,
                row.state
            ))
        })?;
        Ok(Invitation {
            election_id: row.election_id,
            id: row.id,
            fields: InvitationFields {
                organization_id: row.organization_id,
                send_date: row.send_date,
                reference: row.reference,
                notes: row.notes,
            },
            state,
            reply_date: row.reply_date,
            expected_observers: row.expected_observers,
            reason: row.reason,
            create_time: row.create_time,
            update_time: row.update_time,
            etag: row.etag,
        })
    }
}

impl Keyed for Invitation {
    fn key_value(&self, path: &str) -> KeyValue {
        match path {
            "send_date" => KeyValue::Date(self.fields.send_date),
            "state" => KeyValue::Text(self.state.as_str().to_owned()),
            "create_time" => KeyValue::time(self.create_time),
            "update_time" => KeyValue::time(self.update_time),
            _ => KeyValue::Text(self.id.clone()),
        }
    }
}

const COLUMNS: &str = "election_id, id, organization_id, send_date, reference, state, \
                       reply_date, expected_observers, notes, reason, create_time, \
                       update_time, etag";

/// The invitations' change feed.
pub const FEED: crate::store::changes::Feed = crate::store::changes::Feed {
    resource_type: "invitation",
    table: "invitations",
    columns: COLUMNS,
};

/// The invitation of a change-feed row (`changes::after`).
pub fn from_change_row(row: &sqlx::postgres::PgRow) -> Result<Invitation> {
    Invitation::try_from(<InvitationRow as sqlx::FromRow<sqlx::postgres::PgRow>>::from_row(row)?)
}

pub async fn insert(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    fields: &InvitationFields,
) -> Result<Invitation> {
    let row: InvitationRow = sqlx::query_as(trusted_sql!(
        "INSERT INTO invitations (election_id, id, organization_id, send_date, reference, notes) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(&fields.organization_id)
    .bind(fields.send_date)
    .bind(&fields.reference)
    .bind(&fields.notes)
    .fetch_one(conn)
    .await
    .map_err(Error::on_insert(|| invitation_name(election_id, id)))?;
    row.try_into()
}

/// The invitation, locked for the rest of the transaction when `for_update`.
pub async fn get(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    for_update: bool,
) -> Result<Option<Invitation>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<InvitationRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM invitations WHERE election_id = $1 AND id = $2{lock}"
    ))
    .bind(election_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Invitation::try_from).transpose()
}

/// The id of the election's invitation of `organization_id` other than `except`, if any.
pub async fn of_organization(
    conn: &mut PgConnection,
    election_id: &str,
    organization_id: &str,
    except: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM invitations WHERE election_id = $1 AND organization_id = $2 AND id <> $3",
    )
    .bind(election_id)
    .bind(organization_id)
    .bind(except)
    .fetch_optional(conn)
    .await?)
}

/// Which of `organization_ids` have an ACCEPTED invitation to the election. The invitations
/// are share-locked until the caller commits, so that none is withdrawn meanwhile (a
/// withdrawal committed first leaves nothing to find).
pub async fn accepted_organizations(
    conn: &mut PgConnection,
    election_id: &str,
    organization_ids: &[&str],
) -> Result<HashSet<String>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT organization_id FROM invitations \
          WHERE election_id = $1 AND organization_id = ANY($2) AND state = 'ACCEPTED' \
          ORDER BY organization_id FOR SHARE",
    )
    .bind(election_id)
    .bind(organization_ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Replaces the caller-set fields and gives the invitation a new etag.
pub async fn update(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    fields: &InvitationFields,
) -> Result<Invitation> {
    let row: InvitationRow = sqlx::query_as(trusted_sql!(
        "UPDATE invitations SET organization_id = $3, send_date = $4, reference = $5, \
         notes = $6, update_time = now(), etag = gen_random_uuid() \
         WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(&fields.organization_id)
    .bind(fields.send_date)
    .bind(&fields.reference)
    .bind(&fields.notes)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Records a reply or a withdrawal.
pub async fn set_outcome(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    outcome: &Outcome,
) -> Result<Invitation> {
    let row: InvitationRow = sqlx::query_as(trusted_sql!(
        "UPDATE invitations SET state = $3, reply_date = $4, expected_observers = $5, \
         reason = $6, update_time = now(), etag = gen_random_uuid() \
         WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(outcome.state.as_str())
    .bind(outcome.reply_date)
    .bind(outcome.expected_observers)
    .bind(&outcome.reason)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Removes the invitation for good.
pub async fn delete(conn: &mut PgConnection, election_id: &str, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM invitations WHERE election_id = $1 AND id = $2")
        .bind(election_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every invitation of the election, as DeleteElection with `force` removes them.
pub async fn of_election(conn: &mut PgConnection, election_id: &str) -> Result<Vec<Invitation>> {
    let rows: Vec<InvitationRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM invitations WHERE election_id = $1 ORDER BY id"
    ))
    .bind(election_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Invitation::try_from).collect()
}

/// Removes every invitation of the election, answered ones too: the election goes. The
/// deletion trigger lets answered invitations go only for the election this transaction
/// says it removes.
pub async fn delete_of_election(conn: &mut PgConnection, election_id: &str) -> Result<()> {
    sqlx::query("SELECT set_config('observer_registry.removing_election', $1, true)")
        .bind(election_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM invitations WHERE election_id = $1")
        .bind(election_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn list(
    conn: &mut PgConnection,
    election_id: &str,
    query: &ListQuery,
) -> Result<(Vec<Invitation>, i64)> {
    let source = Source {
        columns: COLUMNS,
        from: "invitations",
    };
    let election_id = election_id.to_owned();
    let scope = move |qb: &mut sqlx::QueryBuilder<sqlx::Postgres>| {
        qb.push(" AND election_id = ")
            .push_bind(election_id.clone());
    };
    let (rows, total) = fetch_page::<InvitationRow>(conn, &source, &scope, query).await?;
    Ok((
        rows.into_iter()
            .map(Invitation::try_from)
            .collect::<Result<_>>()?,
        total,
    ))
}
