//! SQL for the headline figures and the public register.

use sqlx::PgConnection;

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{KeyValue, Keyed, ListQuery, ListSpec, SortField};
use crate::domain::invitation::InvitationState;
use crate::domain::names;
use crate::domain::organization::OrganizationKind;
use crate::domain::summary::{InvitationFigures, InvitationTally, OrganizationCount, Summary};
use crate::error::{Error, Result};
use crate::store::listing::{Source, fetch_page};

/// One row of the summary query: a tally grouped by (state, organization) or by (state,
/// citizenship), with the election-wide counts repeated (the invitations' as arrays by state).
type SummaryRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    Vec<String>,
    Vec<i64>,
    Vec<i64>,
);

/// The figures of an election, `None` when it does not exist. One statement, so one snapshot:
/// the figures agree with each other and with ListObservers at that moment. It reads the
/// tallies (a few hundred rows however many observers there are) grouped in one pass, and
/// costs one round trip.
pub async fn summary(conn: &mut PgConnection, election_id: &str) -> Result<Option<Summary>> {
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "SELECT g.organization_id, o.display_name, o.kind, g.citizenship, g.accreditation_state, \
                g.n, d.delegations, d.meetings, i.states, i.invitations, i.expected \
         FROM (SELECT (SELECT count(*) FROM delegations \
                        WHERE election_id = $1 AND delete_time IS NULL) AS delegations, \
                      (SELECT count(*) FROM meetings WHERE election_id = $1 \
                          AND delete_time IS NULL AND state <> 'CANCELLED') AS meetings \
                 FROM elections WHERE id = $1) d \
         CROSS JOIN (SELECT coalesce(array_agg(state), '{}') AS states, \
                            coalesce(array_agg(n), '{}') AS invitations, \
                            coalesce(array_agg(expected), '{}') AS expected \
                       FROM (SELECT state, count(*) AS n, sum(expected_observers)::bigint AS expected \
                               FROM invitations WHERE election_id = $1 GROUP BY state) t) i \
         LEFT JOIN LATERAL ( \
               SELECT organization_id, citizenship::text AS citizenship, accreditation_state, \
                      sum(observers)::bigint AS n \
                 FROM observer_tallies \
                WHERE election_id = $1 AND observers > 0 \
                  AND accreditation_state IN ('ACCREDITED', 'PENDING') \
                GROUP BY GROUPING SETS ((accreditation_state, organization_id), \
                                        (accreditation_state, citizenship))) g ON true \
         LEFT JOIN organizations o ON o.id = g.organization_id",
    )
    .bind(election_id)
    .fetch_all(conn)
    .await?;
    let Some((.., delegations, meetings, states, invitations, expected)) = rows.first() else {
        return Ok(None);
    };
    let (delegations, meetings) = (*delegations, *meetings);
    let tallies = states
        .iter()
        .zip(invitations)
        .zip(expected)
        .map(|((state, &invitations), &expected_observers)| {
            let state = InvitationState::parse(state).ok_or_else(|| {
                Error::internal(anyhow::anyhow!("stored invitation state {state}"))
            })?;
            Ok(InvitationTally {
                state,
                invitations,
                expected_observers,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let invitations = InvitationFigures::new(&tallies);
    let (mut by_organization, mut by_country, mut pending) = (Vec::new(), Vec::new(), 0);
    for (organization, name, kind, citizenship, state, observers, ..) in rows {
        let (Some(state), Some(observers)) = (state, observers) else {
            continue;
        };
        match (organization, citizenship) {
            (Some(_), None) if state == "PENDING" => pending += observers,
            (Some(organization_id), None) => {
                let kind = kind
                    .as_deref()
                    .and_then(OrganizationKind::parse)
                    .ok_or_else(|| {
                        Error::internal(anyhow::anyhow!(
                            "stored organization {organization_id}: kind {kind:?}"
                        ))
                    })?;
                by_organization.push(OrganizationCount {
                    organization_id,
                    display_name: name.unwrap_or_default(),
                    kind,
                    observers,
                });
            }
            (None, Some(country)) if state == "ACCREDITED" => by_country.push((country, observers)),
            _ => {}
        }
    }
    Ok(Some(Summary {
        invitations,
        ..Summary::new(by_organization, by_country, pending, delegations, meetings)
    }))
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
