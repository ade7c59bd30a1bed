//! The facts the registration rules (`domain::observer::registration`) are checked against,
//! loaded for all entries of a request at once — a handful of statements, not one per entry,
//! so that a batch of 1000 costs a few round trips. Organizations and delegations are read
//! FOR SHARE, so they cannot change or go before the registering transaction commits.

use std::collections::HashMap;

use sqlx::PgConnection;

use crate::domain::country::CountryCode;
use crate::domain::observer::identity::TravelDocumentNumber;
use crate::domain::observer::registration::{Candidate, DelegationFacts, RegistrationFacts};
use crate::error::Result;
use crate::store;

/// The facts about what `candidates` name, in `election_id`; `except` is the observer being
/// changed itself, which is not a second registration of its own person.
pub async fn load(
    conn: &mut PgConnection,
    election_id: &str,
    candidates: &[Candidate<'_>],
    except: Option<&str>,
) -> Result<RegistrationFacts> {
    let organization_ids = distinct(candidates.iter().map(|c| c.fields.organization_id.as_str()));
    let organizations = store::organizations::existing_ids(conn, &organization_ids)
        .await?
        .into_iter()
        .collect();
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
    let registered = registered_people(conn, election_id, candidates, except).await?;
    Ok(RegistrationFacts {
        organizations,
        delegations,
        registered,
    })
}

/// Live observers of the election that are the same person (citizenship and travel
/// document) as a candidate, other than `except`.
async fn registered_people(
    conn: &mut PgConnection,
    election_id: &str,
    candidates: &[Candidate<'_>],
    except: Option<&str>,
) -> Result<HashMap<(CountryCode, TravelDocumentNumber), String>> {
    let citizenships: Vec<&str> = candidates
        .iter()
        .map(|c| c.fields.citizenship.as_str())
        .collect();
    // NULL for an erased candidate: it matches nobody.
    let documents: Vec<Option<&str>> = candidates
        .iter()
        .map(|c| c.fields.travel_document_number.as_ref().map(|d| d.as_str()))
        .collect();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT o.citizenship, o.travel_document_number, o.id \
         FROM unnest($2::text[], $3::text[]) AS p(citizenship, document) \
         JOIN observers o ON o.election_id = $1 AND o.citizenship = p.citizenship \
          AND o.travel_document_number = p.document AND o.delete_time IS NULL \
         WHERE o.id IS DISTINCT FROM $4",
    )
    .bind(election_id)
    .bind(&citizenships)
    .bind(&documents)
    .bind(except)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(citizenship, document, id)| {
            let citizenship = CountryCode::parse(&citizenship).ok()?;
            Some((
                (citizenship, TravelDocumentNumber::from_stored(document)),
                id,
            ))
        })
        .collect())
}

/// The distinct values, in first-seen order.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    values
        .filter(|v| seen.insert(*v))
        .map(str::to_owned)
        .collect()
}
