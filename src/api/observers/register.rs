//! Registration: CreateObserver and BatchCreateObservers. Parse every entry → load the facts
//! the registration rules need for all of them → decide (domain) → insert, remember the
//! request id and audit.

use std::collections::HashSet;

use chrono::NaiveDate;
use prost::Message;
use sqlx::PgConnection;
use tokio::time::Instant;
use uuid::Uuid;

mod together;

pub use together::{Outcome, Registrations};

use super::ObserverApi;
use super::convert::{ParsedObserver, parse_observer, to_proto};
use crate::aip::request_id;
use crate::aip::request_id::IdempotencyKey;
use crate::api::audit::AuditEntry;
use crate::api::invitations::check_invited;
use crate::api::skeleton::{self, Resource};
use crate::auth::Caller;
use crate::database::Database;
use crate::domain::election::Election;
use crate::domain::invitation::Sender;
use crate::domain::names;
use crate::domain::observer::Observer;
use crate::domain::observer::registration::{self, Candidate, Disclosure, ElectionScope};
use crate::domain::retention;
use crate::error::{Error, Result, Violations};
use crate::layers::deadline::current_deadline;
use crate::pb::v1 as pb;
use crate::store;
use crate::store::audit::{CreateRecord, Recording};
use crate::store::registration::{Found, Loaded, Registering};

const CREATE_METHOD: &str = "/observer_registry.v1.ObserverService/CreateObserver";
const BATCH_CREATE_METHOD: &str = "/observer_registry.v1.ObserverService/BatchCreateObservers";
/// AIP-233: a batch is bounded so that one request cannot hold the database for long.
pub(super) const MAX_BATCH: usize = 1000;

/// One observer of a create request, parsed.
pub struct Entry {
    /// Where it sits in the request: `observer` or `requests[3].observer`.
    pub at: String,
    pub id: String,
    pub observer: ParsedObserver,
}

impl Entry {
    pub fn candidate(&self) -> Candidate<'_> {
        Candidate {
            at: &self.at,
            fields: &self.observer.fields,
            delegation_election: self.observer.delegation_election.as_deref(),
        }
    }
}

impl ObserverApi {
    pub(super) async fn create(
        &self,
        caller: &Caller,
        request: pb::CreateObserverRequest,
    ) -> Result<pb::Observer> {
        let key = request_id::key(caller, &request.request_id, CREATE_METHOD, &request)?;
        let mut violations = Violations::new();
        let election_id = violations.check(
            "parent",
            names::parse_top_level(&request.parent, "elections"),
        );
        let entry = parse_entry(&request, "", self.today(), &mut violations);
        violations.finish()?;
        let (Some(election_id), Some(entry)) = (election_id, entry) else {
            return Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            )));
        };
        let registration = Registration {
            caller: caller.clone(),
            key,
            election_id: election_id.to_owned(),
            request_id: request.request_id,
            entry,
            deadline: current_deadline(),
        };
        match self.state.registrations.register(registration).await {
            Outcome::Done(result) => *result,
            Outcome::Alone(registration) => register_alone(&self.state.db, &registration).await,
        }
    }

    pub(super) async fn batch_create(
        &self,
        caller: &Caller,
        request: pb::BatchCreateObserversRequest,
    ) -> Result<pb::BatchCreateObserversResponse> {
        // A dry run is not remembered: it must not answer a later real batch.
        let key = if request.validate_only {
            None
        } else {
            request_id::key(caller, &request.request_id, BATCH_CREATE_METHOD, &request)?
        };
        let (election_id, entries) = parse_batch(&request, self.today())?;
        // Never more than MAX_BATCH: the request was refused above otherwise.
        let observers = u32::try_from(entries.len().min(MAX_BATCH)).unwrap_or(1);
        let _registering = self
            .state
            .batch_registrations
            .acquire_many(observers)
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("the registrations gate closed")))?;
        if request.validate_only {
            let mut tx = self.state.db.begin().await?;
            let registration = match start::<()>(&mut tx, None, election_id, &entries).await? {
                Start::First(registration) => registration,
                Start::Replay(()) => {
                    return Err(Error::internal(anyhow::anyhow!("a replay without a key")));
                }
            };
            register(&mut tx, caller, registration, &entries, |_| Ok(((), None))).await?;
            // Dropping the transaction rolls the checked inserts back.
            return Ok(pb::BatchCreateObserversResponse::default());
        }
        let (key, entries, request) = (&key, &entries, &request);
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let registration = match start(tx, key.as_ref(), election_id, entries).await? {
                        Start::First(registration) => registration,
                        Start::Replay(first) => return Ok(first),
                    };
                    let response = register(tx, caller, registration, entries, |created| {
                        let response = pb::BatchCreateObserversResponse {
                            observers: created.iter().map(to_proto).collect(),
                        };
                        // One event for the batch, about the election, listing its observers.
                        let observers: Vec<_> =
                            response.observers.iter().map(Resource::audit_json).collect();
                        let event = AuditEntry {
                            election_id: Some(election_id),
                            resource: &request.parent,
                            request_id: &request.request_id,
                            after: Some(serde_json::json!({ "observers": observers })),
                            ..Default::default()
                        }
                        .into_event(caller);
                        let record = CreateRecord {
                            event,
                            remembered: key.as_ref().map(|key| (key, response.encode_to_vec())),
                        };
                        Ok((response, Some(record)))
                    })
                    .await?;
                    let (election_, count_) = (request.parent.to_string(), response.observers.len());
                    tx.after_commit(move || tracing::info!(election = %election_, count = count_, "observers registered in a batch"));
                    Ok(response)
                })
            })
            .await
    }
}

/// One CreateObserver, parsed, on its way to PostgreSQL.
pub struct Registration {
    pub caller: Caller,
    pub key: Option<IdempotencyKey>,
    pub election_id: String,
    /// As the caller sent it, for the audit event.
    pub request_id: String,
    pub entry: Entry,
    /// The call's; its statements are bounded by it wherever they run.
    pub deadline: Option<Instant>,
}

/// Registers one observer in a transaction of its own.
pub(super) async fn register_alone(
    db: &Database,
    registration: &Registration,
) -> Result<pb::Observer> {
    let Registration {
        caller,
        key,
        election_id,
        request_id,
        entry,
        ..
    } = registration;
    db.transaction(|tx| {
        Box::pin(async move {
            let entries = std::slice::from_ref(entry);
            let registration = match start(tx, key.as_ref(), election_id, entries).await? {
                Start::First(registration) => registration,
                Start::Replay(first) => return Ok(first),
            };
            let record = created(caller, key.as_ref(), election_id, request_id);
            let observer = register(tx, caller, registration, entries, record).await?;
            let observer_ = observer.name.to_string();
            tx.after_commit(move || tracing::info!(observer = %observer_, "observer registered"));
            Ok(observer)
        })
    })
    .await
}

/// What a CreateObserver answers with the observer it registers, and the records of it: its
/// audit event and the response remembered under the key claimed.
fn created<'k>(
    caller: &Caller,
    key: Option<&'k IdempotencyKey>,
    election_id: &str,
    request_id: &str,
) -> impl FnOnce(&[Observer]) -> Result<(pb::Observer, Option<CreateRecord<'k>>)> {
    move |created| {
        let observer = created
            .first()
            .map(to_proto)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("a create registered no observer")))?;
        let event =
            skeleton::entry_created(Some(election_id), request_id, &observer).into_event(caller);
        let record = CreateRecord {
            event,
            remembered: key.map(|key| (key, observer.encode_to_vec())),
        };
        Ok((observer, Some(record)))
    }
}

/// The batch's election and entries, or INVALID_ARGUMENT naming every bad field.
fn parse_batch(
    request: &pb::BatchCreateObserversRequest,
    today: NaiveDate,
) -> Result<(&str, Vec<Entry>)> {
    let mut violations = Violations::new();
    let election_id = violations.check(
        "parent",
        names::parse_top_level(&request.parent, "elections"),
    );
    if request.requests.is_empty() || request.requests.len() > MAX_BATCH {
        violations.add(
            "requests",
            format!(
                "must hold 1 to {MAX_BATCH} entries, not {}",
                request.requests.len()
            ),
        );
    }
    let mut entries = Vec::with_capacity(request.requests.len());
    let mut ids = HashSet::new();
    for (i, entry) in request.requests.iter().enumerate() {
        let prefix = format!("requests[{i}]");
        if !entry.parent.is_empty() && entry.parent != request.parent {
            violations.add(
                format!("{prefix}.parent"),
                "must be empty or the batch's parent",
            );
        }
        if let Some(entry) = parse_entry(entry, &prefix, today, &mut violations) {
            if !ids.insert(entry.id.clone()) {
                violations.add(
                    format!("{prefix}.observer_id"),
                    "appears twice in the batch",
                );
            }
            entries.push(entry);
        }
    }
    violations.finish()?;
    let election_id = election_id
        .ok_or_else(|| Error::internal(anyhow::anyhow!("validation passed without values")))?;
    Ok((election_id, entries))
}

/// Parses one create request (alone, or inside a batch at `prefix`).
fn parse_entry(
    request: &pb::CreateObserverRequest,
    prefix: &str,
    today: NaiveDate,
    violations: &mut Violations,
) -> Option<Entry> {
    let at = |field: &str| {
        if prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{prefix}.{field}")
        }
    };
    let id = violations.check(
        &at("observer_id"),
        names::resource_id_or_generated(&request.observer_id),
    );
    let Some(observer) = &request.observer else {
        violations.add(at("observer"), "is required");
        return None;
    };
    let observer = parse_observer(observer, &at("observer"), today, false, violations)?;
    Some(Entry {
        at: at("observer"),
        id: id?,
        observer,
    })
}

/// Whether refusals may name an existing registration to this caller.
pub fn disclosure(caller: &Caller) -> Disclosure {
    if caller.reads_personal_data() {
        Disclosure::NameExisting
    } else {
        Disclosure::Withhold
    }
}

/// The election as the registration rules see it.
pub fn scope(election: &Election) -> ElectionScope<'_> {
    ElectionScope {
        id: &election.id,
        host_country: election.fields.host_country,
    }
}

/// How a registration starts.
enum Start<R> {
    /// The first call with its key (or one without a key): what its entries are checked
    /// against and made with.
    First(Box<Loaded>),
    /// The response of the first call with the same key.
    Replay(R),
}

/// Claims the request id, reads the election and loads the facts about `entries`, in one
/// statement; NOT_FOUND when a first call finds no election. The claim is undone with the
/// transaction.
async fn start<R: prost::Message + Default>(
    conn: &mut PgConnection,
    key: Option<&IdempotencyKey>,
    election_id: &str,
    entries: &[Entry],
) -> Result<Start<R>> {
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    let candidates: Vec<Candidate> = entries.iter().map(Entry::candidate).collect();
    match store::registration::claim_and_load(conn, key, election_id, &candidates, &ids).await? {
        Registering::First(loaded) => Ok(Start::First(loaded)),
        Registering::NoElection => Err(Error::not_found(&format!("elections/{election_id}"))),
        Registering::Replay => match key {
            Some(key) => store::request_ids::first_response(conn, key)
                .await
                .map(Start::Replay),
            None => Err(Error::internal(anyhow::anyhow!(
                "a request without a key found claimed"
            ))),
        },
    }
}

/// Every rule `entries` are registered under, checked against the facts `found` (which may
/// be about more entries than these): the first refusal, naming each entry it concerns. A
/// lone call, a batch, and each call made together with others are checked alike.
async fn check(
    conn: &mut PgConnection,
    caller: &Caller,
    election: &Election,
    found: &Found,
    entries: &[Entry],
) -> Result<()> {
    retention::check_registration(&election.name(), election.personal_data_erase_time)?;
    if let Some(taken) = found
        .taken_ids
        .iter()
        .find(|taken| entries.iter().any(|e| e.id == **taken))
    {
        return Err(Error::already_exists(&store::observers::name(
            &election.id,
            taken,
        )));
    }
    let candidates: Vec<Candidate> = entries.iter().map(Entry::candidate).collect();
    registration::check(
        scope(election),
        &candidates,
        &found.facts,
        disclosure(caller),
    )?;
    let fields: Vec<String> = entries
        .iter()
        .map(|e| format!("{}.organization", e.at))
        .collect();
    let senders: Vec<Sender> = entries
        .iter()
        .zip(&fields)
        .map(|(e, at)| Sender {
            at,
            organization_id: &e.observer.fields.organization_id,
        })
        .collect();
    check_invited(conn, election, &senders).await
}

/// Registers parsed entries: every rule checked for all of them against the facts, then one
/// statement that inserts the new observers and writes what `answer` makes of them: the
/// response, and the audit event and remembered response that record it.
async fn register<'k, R>(
    conn: &mut PgConnection,
    caller: &Caller,
    registration: Box<Loaded>,
    entries: &[Entry],
    answer: impl FnOnce(&[Observer]) -> Result<(R, Option<CreateRecord<'k>>)>,
) -> Result<R> {
    let Loaded {
        election,
        found,
        now,
    } = *registration;
    check(conn, caller, &election, &found, entries).await?;
    let observers: Vec<Observer> = entries
        .iter()
        .map(|e| {
            let fields = e.observer.fields.clone();
            Observer::registered(&election.id, e.id.clone(), fields, now, Uuid::new_v4())
        })
        .collect();
    let (response, record) = answer(&observers)?;
    store::observers::insert_many(
        conn,
        &observers,
        record.as_ref().map(|r| r as &(dyn Recording + Sync)),
    )
    .await?;
    Ok(response)
}
