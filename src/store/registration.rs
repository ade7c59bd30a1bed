//! The facts the registration rules (`domain::observer::registration`) are checked against,
//! loaded for all entries of a request at once — one statement (two when they name
//! delegations), not one per entry, so that a batch of 1000 costs a round trip or two.
//! Organizations and delegations are read FOR SHARE, so they cannot change or go before the
//! registering transaction commits.

use std::collections::HashMap;

use sqlx::PgConnection;

use crate::domain::country::CountryCode;
use crate::domain::observer::identity::TravelDocumentNumber;
use crate::domain::observer::registration::{Candidate, DelegationFacts, RegistrationFacts};
use crate::error::Result;
use crate::store;

/// What [`load`] found.
pub struct Found {
    /// The ids among the new ones asked about that the election has already (deleted or not).
    pub taken_ids: Vec<String>,
    pub facts: RegistrationFacts,
}

/// The facts about what `candidates` name, in `election_id`, and which of `new_ids` are
/// taken; `except` is the observer being changed itself, which is not a second registration
/// of its own person. One statement, and one more only when candidates name delegations.
pub async fn load(
    conn: &mut PgConnection,
    election_id: &str,
    candidates: &[Candidate<'_>],
    except: Option<&str>,
    new_ids: &[String],
) -> Result<Found> {
    let organization_ids = distinct(candidates.iter().map(|c| c.fields.organization_id.as_str()));
    let citizenships: Vec<&str> = candidates
        .iter()
        .map(|c| c.fields.citizenship.as_str())
        .collect();
    // NULL for an erased candidate: it matches nobody.
    let documents: Vec<Option<&str>> = candidates
        .iter()
        .map(|c| c.fields.travel_document_number.as_ref().map(|d| d.as_str()))
        .collect();
    // Registrations of the same person: live observers of the election with a candidate's
    // citizenship and travel document.
    let row: FactsRow = sqlx::query_as(
        "SELECT ARRAY(SELECT id FROM organizations WHERE id = ANY($5) ORDER BY id FOR SHARE) \
                  AS organizations, \
                ARRAY(SELECT id FROM observers WHERE election_id = $1 AND id = ANY($6)) \
                  AS taken_ids, \
                r.citizenships, r.documents, r.ids \
         FROM (SELECT array_agg(o.citizenship) AS citizenships, \
                      array_agg(o.travel_document_number) AS documents, array_agg(o.id) AS ids \
               FROM unnest($2::text[], $3::text[]) AS p(citizenship, document) \
               JOIN observers o ON o.election_id = $1 AND o.citizenship = p.citizenship \
                AND o.travel_document_number = p.document AND o.delete_time IS NULL \
               WHERE o.id IS DISTINCT FROM $4) AS r",
    )
    .bind(election_id)
    .bind(&citizenships)
    .bind(&documents)
    .bind(except)
    .bind(&organization_ids)
    .bind(new_ids)
    .fetch_one(&mut *conn)
    .await?;
    let delegation_ids = distinct(
        candidates
            .iter()
            .filter_map(|c| c.delegation_election.and(c.fields.delegation_id.as_deref())),
    );
    let delegations = if delegation_ids.is_empty() {
        HashMap::new()
    } else {
        store::delegations::get_many_for_share(conn, election_id, &delegation_ids)
            .await?
            .into_iter()
            .map(|d| {
                let facts = DelegationFacts {
                    organization_id: d.fields.organization_id,
                    deleted: d.delete_time.is_some(),
                };
                (d.id, facts)
            })
            .collect()
    };
    let registered = row
        .citizenships
        .unwrap_or_default()
        .into_iter()
        .zip(row.documents.unwrap_or_default())
        .zip(row.ids.unwrap_or_default())
        .filter_map(|((citizenship, document), id)| {
            let citizenship = CountryCode::parse(&citizenship).ok()?;
            Some((
                (citizenship, TravelDocumentNumber::from_stored(document)),
                id,
            ))
        })
        .collect();
    Ok(Found {
        taken_ids: row.taken_ids,
        facts: RegistrationFacts {
            organizations: row.organizations.into_iter().collect(),
            delegations,
            registered,
        },
    })
}

/// [`load`]'s statement: the registrations found as three columns of arrays (NULL when
/// there are none).
#[derive(sqlx::FromRow)]
struct FactsRow {
    organizations: Vec<String>,
    taken_ids: Vec<String>,
    citizenships: Option<Vec<String>>,
    documents: Option<Vec<String>>,
    ids: Option<Vec<String>>,
}

/// The distinct values, in first-seen order.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    values
        .filter(|v| seen.insert(*v))
        .map(str::to_owned)
        .collect()
}
