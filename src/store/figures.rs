//! SQL for the headline figures and the public register.

use sqlx::{PgConnection, PgPool};

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{KeyValue, Keyed, ListQuery, ListSpec, SortField};
use crate::domain::names;
use crate::domain::organization::OrganizationKind;
use crate::domain::summary::{Summary, Tally};
use crate::error::{Error, Result};
use crate::store::listing::{Source, fetch_page};

/// The figures of an election, read from one snapshot so that they agree with each other
/// and with ListObservers at that moment.
pub async fn summary(pool: &PgPool, election_id: &str) -> Result<Summary> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
        "SELECT t.organization_id, g.display_name, g.kind, t.citizenship::text, \
                t.accreditation_state, t.observers \
         FROM observer_tallies t JOIN organizations g ON g.id = t.organization_id \
         WHERE t.election_id = $1 AND t.observers > 0",
    )
    .bind(election_id)
    .fetch_all(&mut *tx)
    .await?;
    let (delegations, meetings): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM delegations WHERE election_id = $1 AND delete_time IS NULL), \
                (SELECT count(*) FROM meetings WHERE election_id = $1 AND delete_time IS NULL \
                   AND state <> 'CANCELLED')",
    )
    .bind(election_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let tallies = rows
        .into_iter()
        .map(
            |(organization_id, organization_name, kind, citizenship, state, observers)| {
                let organization_kind = OrganizationKind::parse(&kind).ok_or_else(|| {
                    Error::internal(anyhow::anyhow!(
                        "stored organization {organization_id}: kind {kind}"
                    ))
                })?;
                Ok(Tally {
                    organization_id,
                    organization_name,
                    organization_kind,
                    citizenship,
                    accredited: state == "ACCREDITED",
                    pending: state == "PENDING",
                    observers,
                })
            },
        )
        .collect::<Result<Vec<_>>>()?;
    Ok(Summary::from_tallies(&tallies, delegations, meetings))
}

fn organization_key(name: &str) -> Option<String> {
    names::parse_top_level(name, "organizations")
        .ok()
        .map(str::to_owned)
}

/// The public register: what ListPublicRegister filters on, and its fixed order.
pub static PUBLIC_REGISTER_SPEC: ListSpec = ListSpec {
    collection: "public_register",
    filter_fields: &[
        FilterField {
            path: "citizenship",
            column: "o.citizenship",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "organization",
            column: "o.organization_id",
            field_type: FieldType::Reference(organization_key),
            nullable: false,
        },
    ],
    personal_filter_fields: &[],
    sort_fields: &[
        SortField {
            path: "family_name",
            column: "o.family_name",
        },
        SortField {
            path: "given_name",
            column: "o.given_name",
        },
    ],
    tiebreak: SortField {
        path: "name",
        column: "o.id",
    },
    default_order_by: "family_name, given_name",
};

/// One line of the public register: never personal data.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RegisterEntry {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub citizenship: String,
    pub organization_id: String,
    pub organization_display_name: String,
    pub accreditation_number: Option<String>,
}

impl Keyed for RegisterEntry {
    fn key_value(&self, path: &str) -> KeyValue {
        match path {
            "family_name" => KeyValue::Text(self.family_name.clone()),
            "given_name" => KeyValue::Text(self.given_name.clone()),
            _ => KeyValue::Text(self.id.clone()),
        }
    }
}

/// Accredited observers not deleted, by family name then given name.
pub async fn public_register(
    conn: &mut PgConnection,
    election_id: &str,
    query: &ListQuery,
) -> Result<(Vec<RegisterEntry>, i64)> {
    let source = Source {
        columns: "o.id, o.given_name, o.family_name, o.citizenship::text AS citizenship, \
                  o.organization_id, g.display_name AS organization_display_name, \
                  o.accreditation_number",
        from: "observers o JOIN organizations g ON g.id = o.organization_id",
    };
    let election_id = election_id.to_owned();
    let scope = move |qb: &mut sqlx::QueryBuilder<sqlx::Postgres>| {
        qb.push(" AND o.election_id = ")
            .push_bind(election_id.clone());
        qb.push(" AND o.accreditation_state = 'ACCREDITED' AND o.delete_time IS NULL");
    };
    fetch_page::<RegisterEntry>(conn, &source, &scope, query).await
}
