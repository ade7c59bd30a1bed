//! The rules a registration (create, batch create, update or undelete of an observer) must
//! satisfy against what is stored, checked for every entry at once with a few queries — not
//! one per entry — so that a batch of 1000 costs a handful of round trips. The database
//! guarantees the same rules under races (see `migrations/`).

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;

use crate::domain::delegation::delegation_name;
use crate::domain::election::Election;
use crate::domain::observer::{ObserverFields, observer_name};
use crate::error::{Error, Reason, Result, Violations};
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
    // Each rule names every entry that breaks it, so an import learns all of them at once.
    let citizens: Vec<&Registration> = entries
        .iter()
        .filter(|e| e.fields.citizenship == election.fields.host_country)
        .collect();
    if !citizens.is_empty() {
        let error = Error::precondition(
            Reason::HostCountryCitizen,
            format!(
                "{} is the host country of {}: only international observers are registered",
                election.fields.host_country,
                election.name()
            ),
        );
        return Err(citizens.iter().fold(error, |error, entry| {
            error.with_violation(
                &entry.field("citizenship"),
                "is the election's host country",
            )
        }));
    }

    let organization_ids = unique(entries.iter().map(|e| e.fields.organization_id.clone()));
    let existing: HashSet<String> = store::organizations::existing_ids(conn, &organization_ids)
        .await?
        .into_iter()
        .collect();
    let mut unknown = Violations::new();
    for entry in entries
        .iter()
        .filter(|e| !existing.contains(&e.fields.organization_id))
    {
        unknown.add(
            entry.field("organization"),
            format!(
                "organizations/{} does not exist",
                entry.fields.organization_id
            ),
        );
    }
    unknown.finish()?;

    check_delegations(conn, election, entries).await?;
    check_one_person_each(conn, election, entries, except).await
}

async fn check_delegations(
    conn: &mut PgConnection,
    election: &Election,
    entries: &[Registration],
) -> Result<()> {
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
    let mut mismatches: Vec<(&Registration, String)> = Vec::new();
    for entry in entries {
        let Some(delegation_id) = &entry.fields.delegation_id else {
            continue;
        };
        let name = delegation_name(&election.id, delegation_id);
        let why = if entry.delegation_election.as_deref() != Some(election.id.as_str()) {
            format!("the delegation is not one of {}", election.name())
        } else {
            match delegations.get(delegation_id) {
                None => format!("{name} does not exist"),
                Some(d) if d.delete_time.is_some() => format!("{name} is deleted"),
                Some(d) if d.fields.organization_id != entry.fields.organization_id => format!(
                    "{name} is sent by organizations/{}, the observer by organizations/{}",
                    d.fields.organization_id, entry.fields.organization_id
                ),
                Some(_) => continue,
            }
        };
        mismatches.push((entry, why));
    }
    let Some((_, first)) = mismatches.first() else {
        return Ok(());
    };
    let error = Error::precondition(Reason::DelegationOrganizationMismatch, first.clone());
    Err(mismatches.iter().fold(error, |error, (entry, why)| {
        error.with_violation(&entry.field("delegation"), why.clone())
    }))
}

async fn check_one_person_each(
    conn: &mut PgConnection,
    election: &Election,
    entries: &[Registration],
    except: Option<&str>,
) -> Result<()> {
    let person = |e: &Registration| {
        (
            e.fields.citizenship.to_string(),
            e.fields.travel_document_number.clone(),
        )
    };
    let mut seen: HashMap<(String, String), &str> = HashMap::new();
    let mut repeated: Vec<(&Registration, String)> = Vec::new();
    for entry in entries {
        if let Some(first) = seen.insert(person(entry), &entry.prefix) {
            repeated.push((
                entry,
                format!("{} is the same person as {first}", entry.prefix),
            ));
        }
    }
    let mut error = None;
    if repeated.is_empty() {
        let people: Vec<(String, String)> = entries.iter().map(person).collect();
        let found = store::observers::find_same_people(conn, &election.id, &people, except).await?;
        for (citizenship, document, existing) in found {
            let existing = observer_name(&election.id, &existing);
            for entry in entries
                .iter()
                .filter(|e| person(e) == (citizenship.clone(), document.clone()))
            {
                let why = format!(
                    "the same person (citizenship and travel document) is already registered as {existing}"
                );
                error.get_or_insert_with(|| {
                    Error::precondition(Reason::DuplicateObserver, why.clone())
                        .with_metadata("observer", existing.clone())
                });
                repeated.push((entry, why));
            }
        }
    }
    let Some((_, first)) = repeated.first() else {
        return Ok(());
    };
    let error =
        error.unwrap_or_else(|| Error::precondition(Reason::DuplicateObserver, first.clone()));
    Err(repeated.iter().fold(error, |error, (entry, _)| {
        error.with_violation(
            &entry.field("travel_document_number"),
            "this person is already registered in the election",
        )
    }))
}

/// The distinct values, in first-seen order.
fn unique(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(v.clone())).collect()
}
