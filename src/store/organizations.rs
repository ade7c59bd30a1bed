//! SQL for organizations.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{KeyValue, Keyed, ListQuery, ListSpec, SortField};
use crate::domain::country::CountryCode;
use crate::domain::organization::{Organization, OrganizationFields, OrganizationKind};
use crate::error::{Error, Result};
use crate::store::listing::{Source, fetch_page};

/// What ListOrganizations filters and orders by.
pub static LIST_SPEC: ListSpec = ListSpec {
    collection: "organizations",
    filter_fields: &[
        FilterField {
            path: "display_name",
            column: "display_name",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "abbreviation",
            column: "abbreviation",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "kind",
            column: "kind",
            field_type: FieldType::Enum(OrganizationKind::NAMES),
            nullable: false,
        },
        FilterField {
            path: "country",
            column: "country",
            field_type: FieldType::Text,
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
            path: "abbreviation",
            column: "abbreviation",
        },
        SortField {
            path: "kind",
            column: "kind",
        },
    ],
    tiebreak: SortField {
        path: "name",
        column: "id",
    },
    default_order_by: "create_time",
};

#[derive(sqlx::FromRow)]
struct OrganizationRow {
    id: String,
    display_name: String,
    abbreviation: String,
    kind: String,
    country: Option<String>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    etag: Uuid,
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = Error;

    fn try_from(row: OrganizationRow) -> Result<Organization> {
        let corrupt = |what: String| {
            Error::internal(anyhow::anyhow!("stored organization {}: {what}", row.id))
        };
        let kind = OrganizationKind::parse(&row.kind)
            .ok_or_else(|| corrupt(format!("kind {}", row.kind)))?;
        let country = row
            .country
            .as_deref()
            .map(CountryCode::parse)
            .transpose()
            .map_err(corrupt)?;
        Ok(Organization {
            fields: OrganizationFields {
                display_name: row.display_name,
                abbreviation: row.abbreviation,
                kind,
                country,
            },
            id: row.id,
            create_time: row.create_time,
            update_time: row.update_time,
            etag: row.etag,
        })
    }
}

impl Keyed for Organization {
    fn key_value(&self, path: &str) -> KeyValue {
        match path {
            "create_time" => KeyValue::time(self.create_time),
            "update_time" => KeyValue::time(self.update_time),
            "display_name" => KeyValue::Text(self.fields.display_name.clone()),
            "abbreviation" => KeyValue::Text(self.fields.abbreviation.clone()),
            "kind" => KeyValue::Text(self.fields.kind.as_str().to_owned()),
            _ => KeyValue::Text(self.id.clone()),
        }
    }
}

const COLUMNS: &str =
    "id, display_name, abbreviation, kind, country, create_time, update_time, etag";

pub async fn insert(
    conn: &mut PgConnection,
    id: &str,
    fields: &OrganizationFields,
) -> Result<Organization> {
    let row: OrganizationRow = sqlx::query_as(trusted_sql!(
        "INSERT INTO organizations (id, display_name, abbreviation, kind, country) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&fields.display_name)
    .bind(&fields.abbreviation)
    .bind(fields.kind.as_str())
    .bind(fields.country.as_ref().map(CountryCode::as_str))
    .fetch_one(conn)
    .await
    .map_err(Error::on_insert(|| format!("organizations/{id}")))?;
    row.try_into()
}

/// The organization, locked for the rest of the transaction when `for_update`.
pub async fn get(
    conn: &mut PgConnection,
    id: &str,
    for_update: bool,
) -> Result<Option<Organization>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<OrganizationRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM organizations WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Organization::try_from).transpose()
}

/// Replaces the caller-set fields and gives the organization a new etag.
pub async fn update(
    conn: &mut PgConnection,
    id: &str,
    fields: &OrganizationFields,
) -> Result<Organization> {
    let row: OrganizationRow = sqlx::query_as(trusted_sql!(
        "UPDATE organizations SET display_name = $2, abbreviation = $3, kind = $4, country = $5, \
         update_time = now(), etag = gen_random_uuid() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&fields.display_name)
    .bind(&fields.abbreviation)
    .bind(fields.kind.as_str())
    .bind(fields.country.as_ref().map(CountryCode::as_str))
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Deletes the organization. References to it are protected by foreign keys (HAS_CHILDREN).
pub async fn delete(conn: &mut PgConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn list(conn: &mut PgConnection, query: &ListQuery) -> Result<(Vec<Organization>, i64)> {
    let source = Source {
        columns: COLUMNS,
        from: "organizations",
    };
    let (rows, total) = fetch_page::<OrganizationRow>(conn, &source, &|_| {}, query).await?;
    let organizations = rows
        .into_iter()
        .map(Organization::try_from)
        .collect::<Result<_>>()?;
    Ok((organizations, total))
}

/// Whether any delegation, observer or invitation, deleted or not, names the organization.
pub async fn is_referenced(conn: &mut PgConnection, id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM delegations WHERE organization_id = $1) \
             OR EXISTS (SELECT 1 FROM observers WHERE organization_id = $1) \
             OR EXISTS (SELECT 1 FROM invitations WHERE organization_id = $1)",
    )
    .bind(id)
    .fetch_one(conn)
    .await?)
}
