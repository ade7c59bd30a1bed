//! SQL for delegations.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{KeyValue, Keyed, ListQuery, ListSpec, SortField};
use crate::domain::delegation::{Delegation, DelegationFields, delegation_name};
use crate::domain::names;
use crate::error::{Error, Result};
use crate::store::listing::{Source, fetch_page};

fn organization_key(name: &str) -> Option<String> {
    names::parse_top_level(name, "organizations")
        .ok()
        .map(str::to_owned)
}

fn observer_key(name: &str) -> Option<String> {
    names::parse_child(name, "elections", "observers")
        .ok()
        .map(|(_, id)| id.to_owned())
}

/// What ListDelegations filters and orders by.
pub static LIST_SPEC: ListSpec = ListSpec {
    collection: "delegations",
    filter_fields: &[
        FilterField {
            path: "organization",
            column: "organization_id",
            field_type: FieldType::Reference(organization_key),
            nullable: false,
        },
        FilterField {
            path: "display_name",
            column: "display_name",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "head",
            column: "head_observer_id",
            field_type: FieldType::Reference(observer_key),
            nullable: true,
        },
        FilterField {
            path: "arrival_date",
            column: "arrival_date",
            field_type: FieldType::Date,
            nullable: true,
        },
        FilterField {
            path: "departure_date",
            column: "departure_date",
            field_type: FieldType::Date,
            nullable: true,
        },
        FilterField {
            path: "member_count",
            column: "member_count",
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
    ],
    tiebreak: SortField {
        path: "name",
        column: "id",
    },
    default_order_by: "create_time",
};

#[derive(sqlx::FromRow)]
struct DelegationRow {
    election_id: String,
    id: String,
    display_name: String,
    organization_id: String,
    head_observer_id: Option<String>,
    arrival_date: Option<NaiveDate>,
    departure_date: Option<NaiveDate>,
    notes: String,
    member_count: i32,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    etag: Uuid,
    delete_time: Option<DateTime<Utc>>,
}

impl From<DelegationRow> for Delegation {
    fn from(row: DelegationRow) -> Delegation {
        Delegation {
            election_id: row.election_id,
            id: row.id,
            fields: DelegationFields {
                display_name: row.display_name,
                organization_id: row.organization_id,
                head_observer_id: row.head_observer_id,
                arrival_date: row.arrival_date,
                departure_date: row.departure_date,
                notes: row.notes,
            },
            member_count: row.member_count,
            create_time: row.create_time,
            update_time: row.update_time,
            etag: row.etag,
            delete_time: row.delete_time,
        }
    }
}

impl Keyed for Delegation {
    fn key_value(&self, path: &str) -> KeyValue {
        match path {
            "create_time" => KeyValue::time(self.create_time),
            "update_time" => KeyValue::time(self.update_time),
            "display_name" => KeyValue::Text(self.fields.display_name.clone()),
            _ => KeyValue::Text(self.id.clone()),
        }
    }
}

const COLUMNS: &str = "election_id, id, display_name, organization_id, head_observer_id, \
                       arrival_date, departure_date, notes, member_count, create_time, \
                       update_time, etag, delete_time";

/// The delegations' change feed.
pub const FEED: crate::store::changes::Feed = crate::store::changes::Feed {
    resource_type: "delegation",
    table: "delegations",
    columns: COLUMNS,
};

/// The delegation of a change-feed row (`changes::after`).
pub fn from_change_row(row: &sqlx::postgres::PgRow) -> Result<Delegation> {
    Ok(Delegation::from(<DelegationRow as sqlx::FromRow<
        sqlx::postgres::PgRow,
    >>::from_row(row)?))
}

pub async fn insert(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    fields: &DelegationFields,
) -> Result<Delegation> {
    let row: DelegationRow = sqlx::query_as(trusted_sql!(
        "INSERT INTO delegations (election_id, id, display_name, organization_id, \
         head_observer_id, arrival_date, departure_date, notes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(&fields.display_name)
    .bind(&fields.organization_id)
    .bind(&fields.head_observer_id)
    .bind(fields.arrival_date)
    .bind(fields.departure_date)
    .bind(&fields.notes)
    .fetch_one(conn)
    .await
    .map_err(Error::on_insert(|| delegation_name(election_id, id)))?;
    Ok(row.into())
}

/// The delegation, locked for the rest of the transaction when `for_update`.
pub async fn get(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    for_update: bool,
) -> Result<Option<Delegation>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<DelegationRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM delegations WHERE election_id = $1 AND id = $2{lock}"
    ))
    .bind(election_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Delegation::from))
}

/// The delegations among `ids`, share-locked so that they cannot be deleted or change
/// organization before the caller's transaction ends.
pub async fn get_many_for_share(
    conn: &mut PgConnection,
    election_id: &str,
    ids: &[String],
) -> Result<Vec<Delegation>> {
    let rows: Vec<DelegationRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM delegations WHERE election_id = $1 AND id = ANY($2) \
         ORDER BY id FOR SHARE"
    ))
    .bind(election_id)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Delegation::from).collect())
}

/// Replaces the caller-set fields and gives the delegation a new etag.
pub async fn update(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    fields: &DelegationFields,
) -> Result<Delegation> {
    let row: DelegationRow = sqlx::query_as(trusted_sql!(
        "UPDATE delegations SET display_name = $3, organization_id = $4, head_observer_id = $5, \
         arrival_date = $6, departure_date = $7, notes = $8, update_time = now(), \
         etag = gen_random_uuid() WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(&fields.display_name)
    .bind(&fields.organization_id)
    .bind(&fields.head_observer_id)
    .bind(fields.arrival_date)
    .bind(fields.departure_date)
    .bind(&fields.notes)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Soft-deletes (`deleted`) or restores the delegation.
pub async fn set_deleted(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    deleted: bool,
) -> Result<Delegation> {
    let row: DelegationRow = sqlx::query_as(trusted_sql!(
        "UPDATE delegations SET delete_time = CASE WHEN $3 THEN now() END, update_time = now(), \
         etag = gen_random_uuid() WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(deleted)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Whether any observer, deleted or not, names this delegation.
pub async fn has_any_observer(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM observers WHERE election_id = $1 AND delegation_id = $2)",
    )
    .bind(election_id)
    .bind(id)
    .fetch_one(conn)
    .await?)
}

pub async fn list(
    conn: &mut PgConnection,
    election_id: &str,
    query: &ListQuery,
) -> Result<(Vec<Delegation>, i64)> {
    let source = Source {
        columns: COLUMNS,
        from: "delegations",
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
    let (rows, total) = fetch_page::<DelegationRow>(conn, &source, &scope, query).await?;
    Ok((rows.into_iter().map(Delegation::from).collect(), total))
}
