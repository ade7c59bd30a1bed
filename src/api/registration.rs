//! The rules a registration (create, batch create, update or undelete of an observer) must
//! satisfy against what is stored, checked for every entry at once with a few queries — not
//! one per entry — so that a batch of 1000 costs a handful of round trips. The database
//! guarantees the same rules under races (see `migrations/`).

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;

use crate::domain::delegation::delegation_name;
use crate::domain::election::Election;
use crate::domain::observer::{ObserverFields, observer_name};
use crate::error::{Error, Reason, Result};
use crate::store;

/// One observer as a request describes it.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Where the observer sits in the request, e.g. `observer` or `requests[3].observer`.
    pub prefix: String,
    pub id: String,
    pub fields: ObserverFields,
    /// The election named in the `delegation` field, when one was given.
    pub delegation_election: Option<String>,
}

impl Registration {
    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }
}

/// Checks host-country citizenship, organizations, delegations and one-person-per-election
/// for `entries`; `except` is the observer being updated or undeleted itself.
pub async fn check(
    conn: &mut PgConnection,
    election: &Election,
    entries: &[Registration],
    except: Option<&str>,
) -> Result<()> {
    for entry in entries {
        if entry.fields.citizenship == election.fields.host_country {
            return Err(Error::precondition(
                Reason::HostCountryCitizen,
                format!(
                    "{} is the host country of {}: only international observers are registered",
                    election.fields.host_country,
                    election.name()
                ),
            )
            .with_violation(
                &entry.field("citizenship"),
                "is the election's host country",
            ));
        }
    }

    let organization_ids = unique(entries.iter().map(|e| e.fields.organization_id.clone()));
    let existing: HashSet<String> = store::organizations::existing_ids(conn, &organization_ids)
        .await?
        .into_iter()
        .collect();
    if let Some(entry) = entries
        .iter()
        .find(|e| !existing.contains(&e.fields.organization_id))
    {
        return Err(Error::invalid(
            &entry.field("organization"),
            format!(
                "organizations/{} does not exist",
                entry.fields.organization_id
            ),
        ));
    }

    check_delegations(conn, election, entries).await?;
    check_one_person_each(conn, election, entries, except).await
}

async fn check_delegations(
    conn: &mut PgConnection,
    election: &Election,
    entries: &[Registration],
) -> Result<()> {
    let mismatch = |entry: &Registration, why: String| {
        Error::precondition(Reason::DelegationOrganizationMismatch, why).with_violation(
            &entry.field("delegation"),
            "must be a delegation of the same election and organization",
        )
    };
    let delegation_ids = unique(
        entries
            .iter()
            .filter_map(|e| e.fields.delegation_id.clone()),
    );
    if delegation_ids.is_empty() {
        return Ok(());
    }
    let delegations: HashMap<String, _> =
        store::delegations::get_many_for_share(conn, &election.id, &delegation_ids)
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
    for entry in entries {
        let Some(delegation_id) = &entry.fields.delegation_id else {
            continue;
        };
        if entry.delegation_election.as_deref() != Some(election.id.as_str()) {
            return Err(mismatch(
                entry,
                format!("the delegation is not one of {}", election.name()),
            ));
        }
        let name = delegation_name(&election.id, delegation_id);
        let Some(delegation) = delegations.get(delegation_id) else {
            return Err(mismatch(entry, format!("{name} does not exist")));
        };
        if delegation.delete_time.is_some() {
            return Err(mismatch(entry, format!("{name} is deleted")));
        }
        if delegation.fields.organization_id != entry.fields.organization_id {
            return Err(mismatch(
                entry,
                format!(
                    "{name} is sent by organizations/{}, the observer by organizations/{}",
                    delegation.fields.organization_id, entry.fields.organization_id
                ),
            ));
        }
    }
    Ok(())
}

async fn check_one_person_each(
    conn: &mut PgConnection,
    election: &Election,
    entries: &[Registration],
    except: Option<&str>,
) -> Result<()> {
    let duplicate = |entry: &Registration, message: String| {
        Error::precondition(Reason::DuplicateObserver, message).with_violation(
            &entry.field("travel_document_number"),
            "this person is already registered in the election",
        )
    };
    let mut seen: HashMap<(&str, &str), &str> = HashMap::new();
    for entry in entries {
        let person = (
            entry.fields.citizenship.as_str(),
            entry.fields.travel_document_number.as_str(),
        );
        if let Some(first) = seen.insert(person, &entry.prefix) {
            return Err(duplicate(
                entry,
                format!("{} is the same person as {first}", entry.prefix),
            ));
        }
    }
    let people: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e.fields.citizenship.to_string(),
                e.fields.travel_document_number.clone(),
            )
        })
        .collect();
    let found = store::observers::find_same_people(conn, &election.id, &people, except).await?;
    if let Some((citizenship, document, existing)) = found.first() {
        let entry = entries
            .iter()
            .find(|e| {
                e.fields.citizenship.as_str() == citizenship
                    && e.fields.travel_document_number == *document
            })
            .unwrap_or(&entries[0]);
        let existing = observer_name(&election.id, existing);
        return Err(duplicate(
            entry,
            format!("the same person (citizenship and travel document) is already registered as {existing}"),
        )
        .with_metadata("observer", existing));
    }
    Ok(())
}

/// The distinct values, in first-seen order.
fn unique(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(v.clone())).collect()
}
