//! ObserverService: registration (one or a batch), reads, updates, soft deletion and the
//! accreditation state machine.

use std::collections::HashSet;

use tonic::{Request, Response, Status};

use crate::aip::field_mask::{self, MaskSpec};
use crate::aip::paging::{ListRequest, Page};
use crate::aip::{etag, request_id};
use crate::api::audit;
use crate::api::registration::{self, Registration};
use crate::api::{
    AppState, check_soft_delete, check_text, optional_date, parse_parent, require_election,
    require_election_of_page, to_timestamp, total_size,
};
use crate::auth::Caller;
use crate::domain::country::CountryCode;
use crate::domain::date::format_date;
use crate::domain::names;
use crate::domain::observer::{
    Accreditation, AccreditationState, Observer, ObserverFields, ObserverRole,
    accreditation_number, normalize_document_number,
};
use crate::error::{Error, Reason, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::observer_service_server::ObserverService;
use crate::store::{self, request_ids};

const CREATE_METHOD: &str = "/observer_registry.v1.ObserverService/CreateObserver";
const BATCH_CREATE_METHOD: &str = "/observer_registry.v1.ObserverService/BatchCreateObservers";
/// AIP-233: a batch is bounded so that one request cannot hold the database for long.
const MAX_BATCH: usize = 1000;

const MASK: MaskSpec = MaskSpec {
    updatable: &[
        "given_name",
        "family_name",
        "citizenship",
        "organization",
        "delegation",
        "role",
        "travel_document_number",
        "date_of_birth",
        "email",
        "phone",
        "deployment_region",
    ],
    output_only: &[
        "name",
        "accreditation",
        "accreditation.state",
        "accreditation.number",
        "accreditation.decide_time",
        "accreditation.reason",
        "create_time",
        "update_time",
        "etag",
        "delete_time",
    ],
};

/// The ObserverService implementation.
#[derive(Debug, Clone)]
pub struct ObserverApi {
    state: AppState,
}

impl ObserverApi {
    pub fn new(state: AppState) -> Self {
        ObserverApi { state }
    }

    async fn create(
        &self,
        caller: &Caller,
        request: pb::CreateObserverRequest,
    ) -> Result<pb::Observer> {
        let key = request_id::key(&request.request_id, CREATE_METHOD, &request)?;
        let mut violations = Violations::new();
        let election_id = violations.check(
            "parent",
            names::parse_top_level(&request.parent, "elections"),
        );
        let entry = validate_entry(&request, "", &mut violations);
        violations.finish()?;
        let (Some(election_id), Some(entry)) = (election_id, entry) else {
            return Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            )));
        };

        let (key, entry, request) = (&key, &entry, &request);
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    if let Some(first) =
                        request_ids::claim::<pb::Observer>(tx, key.as_ref()).await?
                    {
                        return Ok(first);
                    }
                    let election = require_election(tx, election_id).await?;
                    let created = register(tx, &election, std::slice::from_ref(entry)).await?;
                    let observer = created.first().map(to_proto).ok_or_else(|| {
                        Error::internal(anyhow::anyhow!("insert returned no observer"))
                    })?;
                    request_ids::record(tx, key.as_ref(), &observer).await?;
                    let after = audit_json(&observer);
                    audit::record(
                        tx,
                        caller,
                        Some(election_id),
                        &observer.name,
                        &request.request_id,
                        None,
                        Some(after),
                    )
                    .await?;
                    tracing::info!(observer = %observer.name, "observer registered");
                    Ok(observer)
                })
            })
            .await
    }

    async fn batch_create(
        &self,
        caller: &Caller,
        request: pb::BatchCreateObserversRequest,
    ) -> Result<pb::BatchCreateObserversResponse> {
        // A dry run is not remembered: it must not answer a later real batch.
        let key = if request.validate_only {
            None
        } else {
            request_id::key(&request.request_id, BATCH_CREATE_METHOD, &request)?
        };
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
            if let Some(entry) = validate_entry(entry, &prefix, &mut violations) {
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
        let Some(election_id) = election_id else {
            return Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            )));
        };

        if request.validate_only {
            let mut tx = self.state.db.begin().await?;
            let election = require_election(&mut tx, election_id).await?;
            register(&mut tx, &election, &entries).await?;
            // Dropping the transaction rolls the checked inserts back.
            return Ok(pb::BatchCreateObserversResponse::default());
        }
        crate::transaction!(self.state.db, |tx| {
            if let Some(first) =
                request_ids::claim::<pb::BatchCreateObserversResponse>(&mut tx, key.as_ref())
                    .await?
            {
                return Ok(first);
            }
            let election = require_election(&mut tx, election_id).await?;
            let created = register(&mut tx, &election, &entries).await?;
            let response = pb::BatchCreateObserversResponse {
                observers: created.iter().map(to_proto).collect(),
            };
            request_ids::record(&mut tx, key.as_ref(), &response).await?;
            // One event for the batch, about the election, listing the observers it registered.
            let after = serde_json::json!({ "observers": response.observers.iter().map(audit_json).collect::<Vec<_>>() });
            audit::record(
                &mut tx,
                caller,
                Some(election_id),
                &request.parent,
                &request.request_id,
                None,
                Some(after),
            )
            .await?;
            tracing::info!(election = %request.parent, count = response.observers.len(), "observers registered in a batch");
            Ok(response)
        })
    }

    async fn get(&self, caller: &Caller, request: pb::GetObserverRequest) -> Result<pb::Observer> {
        let (election_id, id) = parse_name(&request.name, "name")?;
        let observer = self
            .state
            .observer_reads
            .get(election_id, id)
            .await?
            .ok_or_else(|| Error::not_found(&request.name))?;
        Ok(for_caller(caller, into_proto(observer)))
    }

    async fn list(
        &self,
        caller: &Caller,
        request: pb::ListObserversRequest,
    ) -> Result<pb::ListObserversResponse> {
        let election_id = parse_parent(&request.parent)?;
        let query = self.state.page_tokens.prepare(
            &store::observers::LIST_SPEC,
            &ListRequest {
                parent: &request.parent,
                page_size: request.page_size,
                page_token: &request.page_token,
                filter: &request.filter,
                order_by: &request.order_by,
                show_deleted: request.show_deleted,
                personal_data: caller.reads_personal_data(),
            },
        )?;
        let mut conn = self.state.db.read().await?;
        let (rows, total) =
            store::observers::list(&mut conn, election_id, &query, &self.state.list_counts).await?;
        require_election_of_page(&mut conn, election_id, rows.is_empty()).await?;
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListObserversResponse {
            observers: page
                .items
                .into_iter()
                .map(|o| for_caller(caller, into_proto(o)))
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total_size(page.total_size),
        })
    }

    async fn update(
        &self,
        caller: &Caller,
        request: pb::UpdateObserverRequest,
    ) -> Result<pb::Observer> {
        let changes = request
            .observer
            .ok_or_else(|| Error::invalid("observer", "is required"))?;
        let (election_id, id) = parse_name(&changes.name, "observer.name")?;
        let mask = field_mask::resolve(request.update_mask.as_ref(), &MASK)?;

        crate::transaction!(self.state.db, |tx| {
            let current = live_observer(&mut tx, election_id, id, &changes.name).await?;
            etag::check(&changes.etag, current.etag, &changes.name)?;
            let mut merged = to_proto(&current);
            for field in mask.fields() {
                match *field {
                    "given_name" => merged.given_name = changes.given_name.clone(),
                    "family_name" => merged.family_name = changes.family_name.clone(),
                    "citizenship" => merged.citizenship = changes.citizenship.clone(),
                    "organization" => merged.organization = changes.organization.clone(),
                    "delegation" => merged.delegation = changes.delegation.clone(),
                    "role" => merged.role = changes.role,
                    "travel_document_number" => {
                        merged.travel_document_number = changes.travel_document_number.clone()
                    }
                    "date_of_birth" => merged.date_of_birth = changes.date_of_birth.clone(),
                    "email" => merged.email = changes.email.clone(),
                    "phone" => merged.phone = changes.phone.clone(),
                    "deployment_region" => {
                        merged.deployment_region = changes.deployment_region.clone()
                    }
                    _ => {}
                }
            }
            let mut violations = Violations::new();
            let entry = validate_observer(&merged, "observer", id.to_owned(), &mut violations);
            violations.finish()?;
            let Some(entry) = entry else {
                return Err(Error::internal(anyhow::anyhow!(
                    "validation passed without values"
                )));
            };
            let election = require_election(&mut tx, election_id).await?;
            // A membership that does not change is not re-examined: a typo can be fixed even
            // after the delegation was deleted.
            let mut checked = entry.clone();
            if checked.fields.delegation_id == current.fields.delegation_id
                && checked.fields.organization_id == current.fields.organization_id
            {
                checked.fields.delegation_id = None;
            }
            registration::check(&mut tx, &election, &[checked], Some(id)).await?;
            let observer =
                store::observers::update(&mut tx, election_id, id, &entry.fields).await?;
            let (before, after) = (
                audit_json(&to_proto(&current)),
                audit_json(&to_proto(&observer)),
            );
            audit::record(
                &mut tx,
                caller,
                Some(election_id),
                &changes.name,
                "",
                Some(before),
                Some(after),
            )
            .await?;
            tracing::info!(observer = %changes.name, fields = ?mask.fields(), "observer updated");
            Ok(to_proto(&observer))
        })
    }

    async fn set_deleted(
        &self,
        caller: &Caller,
        name: &str,
        etag_given: &str,
        deleted: bool,
    ) -> Result<pb::Observer> {
        let (election_id, id) = parse_name(name, "name")?;
        crate::transaction!(self.state.db, |tx| {
            let current = store::observers::get(&mut tx, election_id, id, true)
                .await?
                .ok_or_else(|| Error::not_found(name))?;
            check_soft_delete(
                name,
                deleted,
                current.delete_time.is_some(),
                current.etag,
                etag_given,
            )?;
            if !deleted {
                // Coming back must not make the same person registered twice.
                let election = require_election(&mut tx, election_id).await?;
                let entry = Registration {
                    prefix: "observer".to_owned(),
                    id: id.to_owned(),
                    delegation_election: None,
                    fields: ObserverFields {
                        delegation_id: None,
                        ..current.fields.clone()
                    },
                };
                registration::check(&mut tx, &election, &[entry], Some(id)).await?;
            }
            let observer = store::observers::set_deleted(&mut tx, election_id, id, deleted).await?;
            let (before, after) = (
                audit_json(&to_proto(&current)),
                audit_json(&to_proto(&observer)),
            );
            audit::record(
                &mut tx,
                caller,
                Some(election_id),
                name,
                "",
                Some(before),
                Some(after),
            )
            .await?;
            tracing::info!(observer = %name, deleted, "observer deletion changed");
            Ok(to_proto(&observer))
        })
    }

    /// Moves the observer through the accreditation state machine.
    async fn decide(
        &self,
        caller: &Caller,
        name: &str,
        etag_given: &str,
        next: AccreditationState,
        reason: &str,
    ) -> Result<pb::Observer> {
        let (election_id, id) = parse_name(name, "name")?;
        let reason = reason.trim();
        if next != AccreditationState::Accredited {
            let mut violations = Violations::new();
            check_text(&mut violations, "reason", reason, true, 2000);
            violations.finish()?;
        }
        crate::transaction!(self.state.db, |tx| {
            let current = live_observer(&mut tx, election_id, id, name).await?;
            etag::check(etag_given, current.etag, name)?;
            let from = current.accreditation.state;
            if !from.can_become(next) {
                return Err(Error::precondition(
                    Reason::InvalidStateTransition,
                    format!(
                        "{name} is {}; it cannot become {}",
                        from.as_str(),
                        next.as_str()
                    ),
                )
                .with_metadata("state", from.as_str()));
            }
            let accreditation = match next {
                AccreditationState::Accredited => {
                    let election = require_election(&mut tx, election_id).await?;
                    // Taken under the counter's lock, so decision times follow number order; a
                    // refusal rolls the counter back, so no number is lost.
                    let sequence =
                        store::observers::next_accreditation_sequence(&mut tx, election_id).await?;
                    let now = self.state.clock.now();
                    let closes_at = election.fields.accreditation_closes_at();
                    if now > closes_at {
                        return Err(Error::precondition(
                            Reason::AccreditationClosed,
                            format!(
                                "accreditation for {} closed at {}",
                                election.name(),
                                closes_at.to_rfc3339()
                            ),
                        )
                        .with_metadata("deadline", closes_at.to_rfc3339()));
                    }
                    Accreditation {
                        state: next,
                        number: Some(accreditation_number(
                            election.fields.host_country,
                            chrono::Datelike::year(&election.fields.voting_day),
                            sequence,
                        )),
                        decide_time: Some(now),
                        reason: String::new(),
                    }
                }
                _ => Accreditation {
                    state: next,
                    number: current.accreditation.number.clone(),
                    decide_time: Some(self.state.clock.now()),
                    reason: reason.to_owned(),
                },
            };
            let observer =
                store::observers::set_accreditation(&mut tx, election_id, id, &accreditation)
                    .await?;
            let (before, after) = (
                audit_json(&to_proto(&current)),
                audit_json(&to_proto(&observer)),
            );
            audit::record(
                &mut tx,
                caller,
                Some(election_id),
                name,
                "",
                Some(before),
                Some(after),
            )
            .await?;
            tracing::info!(observer = %name, from = from.as_str(), to = next.as_str(), "accreditation decided");
            Ok(for_caller(caller, to_proto(&observer)))
        })
    }
}

impl ObserverApi {
    /// Accredited observers for the public portal: name, citizenship and sending body only.
    async fn public_register(
        &self,
        request: pb::ListPublicRegisterRequest,
    ) -> Result<pb::ListPublicRegisterResponse> {
        let election_id = parse_parent(&request.parent)?;
        let query = self.state.page_tokens.prepare(
            &store::figures::PUBLIC_REGISTER_SPEC,
            &ListRequest {
                parent: &request.parent,
                page_size: request.page_size,
                page_token: &request.page_token,
                filter: &request.filter,
                ..Default::default()
            },
        )?;
        let mut conn = self.state.db.read().await?;
        require_election(&mut conn, election_id).await?;
        let (rows, total) = store::figures::public_register(&mut conn, election_id, &query).await?;
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListPublicRegisterResponse {
            entries: page
                .items
                .into_iter()
                .map(|entry| pb::PublicRegisterEntry {
                    given_name: entry.given_name,
                    family_name: entry.family_name,
                    citizenship: entry.citizenship,
                    organization: format!("organizations/{}", entry.organization_id),
                    organization_display_name: entry.organization_display_name,
                    accreditation_number: entry.accreditation_number.unwrap_or_default(),
                })
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total_size(page.total_size),
        })
    }
}

fn parse_name<'a>(name: &'a str, field: &str) -> Result<(&'a str, &'a str)> {
    names::parse_child(name, "elections", "observers").map_err(|e| Error::invalid(field, e))
}

/// The observer, locked, unless it does not exist or is deleted (then NOT_FOUND).
async fn live_observer(
    conn: &mut sqlx::PgConnection,
    election_id: &str,
    id: &str,
    name: &str,
) -> Result<Observer> {
    store::observers::get(conn, election_id, id, true)
        .await?
        .filter(|o| o.delete_time.is_none())
        .ok_or_else(|| Error::not_found(name))
}

/// Registers validated entries: every rule checked for all of them, then one insert.
async fn register(
    conn: &mut sqlx::PgConnection,
    election: &crate::domain::election::Election,
    entries: &[Registration],
) -> Result<Vec<Observer>> {
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    if let Some(taken) = store::observers::existing_ids(conn, &election.id, &ids)
        .await?
        .first()
    {
        return Err(Error::already_exists(&store::observers::name(
            &election.id,
            taken,
        )));
    }
    registration::check(conn, election, entries, None).await?;
    let rows: Vec<(String, ObserverFields)> = entries
        .iter()
        .map(|e| (e.id.clone(), e.fields.clone()))
        .collect();
    store::observers::insert_many(conn, &election.id, &rows).await
}

/// Validates one create request (alone or inside a batch at `prefix`).
fn validate_entry(
    request: &pb::CreateObserverRequest,
    prefix: &str,
    violations: &mut Violations,
) -> Option<Registration> {
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
    match &request.observer {
        Some(observer) => validate_observer(observer, &at("observer"), id?, violations),
        None => {
            violations.add(at("observer"), "is required");
            None
        }
    }
}

/// Validates the caller-set fields of an observer, recording every bad one under `prefix`.
fn validate_observer(
    observer: &pb::Observer,
    prefix: &str,
    id: String,
    violations: &mut Violations,
) -> Option<Registration> {
    let at = |field: &str| format!("{prefix}.{field}");
    check_text(
        violations,
        &at("given_name"),
        &observer.given_name,
        true,
        200,
    );
    check_text(
        violations,
        &at("family_name"),
        &observer.family_name,
        true,
        200,
    );
    check_text(
        violations,
        &at("deployment_region"),
        &observer.deployment_region,
        false,
        200,
    );
    let citizenship = if observer.citizenship.is_empty() {
        violations.add(at("citizenship"), "is required");
        None
    } else {
        violations.check(
            &at("citizenship"),
            CountryCode::parse(&observer.citizenship),
        )
    };
    let organization_id = if observer.organization.is_empty() {
        violations.add(at("organization"), "is required");
        None
    } else {
        violations.check(
            &at("organization"),
            names::parse_top_level(&observer.organization, "organizations"),
        )
    };
    let delegation = if observer.delegation.is_empty() {
        Some(None)
    } else {
        violations
            .check(
                &at("delegation"),
                names::parse_child(&observer.delegation, "elections", "delegations"),
            )
            .map(Some)
    };
    let role = match pb::ObserverRole::try_from(observer.role) {
        Ok(pb::ObserverRole::Unspecified) => Some(None),
        Ok(role) => Some(ObserverRole::parse(role.as_str_name())),
        Err(_) => {
            violations.add(
                at("role"),
                format!("{} is not an ObserverRole", observer.role),
            );
            None
        }
    };
    let document = normalize_document_number(&observer.travel_document_number);
    check_text(
        violations,
        &at("travel_document_number"),
        &document,
        true,
        64,
    );
    let date_of_birth = optional_date(violations, &at("date_of_birth"), &observer.date_of_birth);
    if date_of_birth.is_some_and(|birth| birth >= chrono::Utc::now().date_naive()) {
        violations.add(at("date_of_birth"), "must be in the past");
    }
    let email = observer.email.trim();
    if !email.is_empty() && !looks_like_email(email) {
        violations.add(at("email"), "is not an e-mail address");
    }
    let phone = observer.phone.trim();
    if !phone.is_empty() && !looks_like_phone(phone) {
        violations.add(
            at("phone"),
            "is not a phone number (digits, spaces, + - ( ), at most 32)",
        );
    }
    let delegation = delegation?;
    Some(Registration {
        prefix: prefix.to_owned(),
        id,
        delegation_election: delegation.map(|(election, _)| election.to_owned()),
        fields: ObserverFields {
            given_name: observer.given_name.trim().to_owned(),
            family_name: observer.family_name.trim().to_owned(),
            citizenship: citizenship?,
            organization_id: organization_id?.to_owned(),
            delegation_id: delegation.map(|(_, id)| id.to_owned()),
            role: role?,
            travel_document_number: document,
            date_of_birth,
            email: email.to_owned(),
            phone: phone.to_owned(),
            deployment_region: observer.deployment_region.trim().to_owned(),
        },
    })
}

fn looks_like_email(email: &str) -> bool {
    email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
}

fn looks_like_phone(phone: &str) -> bool {
    phone.len() <= 32
        && phone.chars().filter(char::is_ascii_digit).count() >= 5
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c))
}

/// Clears the personal data of an observer (BRIEF): travel document, birth date, contacts.
pub fn redact(observer: &mut pb::Observer) {
    observer.travel_document_number.clear();
    observer.date_of_birth.clear();
    observer.email.clear();
    observer.phone.clear();
}

/// The observer as this caller may see it.
fn for_caller(caller: &Caller, mut observer: pb::Observer) -> pb::Observer {
    if !caller.reads_personal_data() {
        redact(&mut observer);
    }
    observer
}

/// The observer as the audit trail takes it; `audit::record` strips the personal data after
/// noting which fields changed.
fn audit_json(observer: &pb::Observer) -> serde_json::Value {
    audit::json("Observer", observer)
}

fn state_to_proto(state: AccreditationState) -> pb::AccreditationState {
    pb::AccreditationState::from_str_name(state.as_str())
        .unwrap_or(pb::AccreditationState::Unspecified)
}

fn to_proto(observer: &Observer) -> pb::Observer {
    into_proto(observer.clone())
}

/// Moves the observer's strings into the message: reads answer with what they decoded.
fn into_proto(observer: Observer) -> pb::Observer {
    let name = observer.name();
    let fields = observer.fields;
    pb::Observer {
        name,
        given_name: fields.given_name,
        family_name: fields.family_name,
        citizenship: fields.citizenship.to_string(),
        organization: format!("organizations/{}", fields.organization_id),
        delegation: fields
            .delegation_id
            .as_deref()
            .map(|d| crate::domain::delegation::delegation_name(&observer.election_id, d))
            .unwrap_or_default(),
        role: fields
            .role
            .and_then(|r| pb::ObserverRole::from_str_name(r.as_str()))
            .unwrap_or(pb::ObserverRole::Unspecified)
            .into(),
        travel_document_number: fields.travel_document_number,
        date_of_birth: fields.date_of_birth.map(format_date).unwrap_or_default(),
        email: fields.email,
        phone: fields.phone,
        deployment_region: fields.deployment_region,
        accreditation: Some(pb::Accreditation {
            state: state_to_proto(observer.accreditation.state).into(),
            number: observer.accreditation.number.unwrap_or_default(),
            decide_time: observer.accreditation.decide_time.map(to_timestamp),
            reason: observer.accreditation.reason,
        }),
        create_time: Some(to_timestamp(observer.create_time)),
        update_time: Some(to_timestamp(observer.update_time)),
        etag: etag::format(observer.etag),
        delete_time: observer.delete_time.map(to_timestamp),
    }
}

#[tonic::async_trait]
impl ObserverService for ObserverApi {
    async fn create_observer(
        &self,
        request: Request<pb::CreateObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let observer = self.create(&caller, request.into_inner()).await?;
        Ok(Response::new(for_caller(&caller, observer)))
    }

    async fn batch_create_observers(
        &self,
        request: Request<pb::BatchCreateObserversRequest>,
    ) -> Result<Response<pb::BatchCreateObserversResponse>, Status> {
        let caller = Caller::of(&request);
        let mut response = self.batch_create(&caller, request.into_inner()).await?;
        response.observers = response
            .observers
            .into_iter()
            .map(|o| for_caller(&caller, o))
            .collect();
        Ok(Response::new(response))
    }

    async fn get_observer(
        &self,
        request: Request<pb::GetObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        Ok(Response::new(
            self.get(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn list_observers(
        &self,
        request: Request<pb::ListObserversRequest>,
    ) -> Result<Response<pb::ListObserversResponse>, Status> {
        Ok(Response::new(
            self.list(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn update_observer(
        &self,
        request: Request<pb::UpdateObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let observer = self.update(&caller, request.into_inner()).await?;
        Ok(Response::new(for_caller(&caller, observer)))
    }

    async fn delete_observer(
        &self,
        request: Request<pb::DeleteObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(for_caller(
            &caller,
            self.set_deleted(&caller, &request.name, &request.etag, true)
                .await?,
        )))
    }

    async fn undelete_observer(
        &self,
        request: Request<pb::UndeleteObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(for_caller(
            &caller,
            self.set_deleted(&caller, &request.name, &request.etag, false)
                .await?,
        )))
    }

    async fn accredit_observer(
        &self,
        request: Request<pb::AccreditObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.decide(
                &caller,
                &request.name,
                &request.etag,
                AccreditationState::Accredited,
                "",
            )
            .await?,
        ))
    }

    async fn reject_observer(
        &self,
        request: Request<pb::RejectObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.decide(
                &caller,
                &request.name,
                &request.etag,
                AccreditationState::Rejected,
                &request.reason,
            )
            .await?,
        ))
    }

    async fn revoke_accreditation(
        &self,
        request: Request<pb::RevokeAccreditationRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.decide(
                &caller,
                &request.name,
                &request.etag,
                AccreditationState::Revoked,
                &request.reason,
            )
            .await?,
        ))
    }

    async fn list_public_register(
        &self,
        request: Request<pb::ListPublicRegisterRequest>,
    ) -> Result<Response<pb::ListPublicRegisterResponse>, Status> {
        Ok(Response::new(
            self.public_register(request.into_inner()).await?,
        ))
    }

    type WatchObserversStream = tonic::codegen::BoxStream<pb::ObserverEvent>;

    async fn watch_observers(
        &self,
        request: Request<pb::WatchObserversRequest>,
    ) -> Result<Response<Self::WatchObserversStream>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let election_id = crate::api::parse_parent(&request.parent)?;
        let make_event: crate::api::watch::MakeEvent<pb::ObserverEvent> =
            Box::new(move |meta, row, resume_token| {
                let observer = store::observers::from_change_row(row)?;
                Ok(pb::ObserverEvent {
                    r#type: crate::api::watch::change_type(meta)?.into(),
                    observer: Some(for_caller(&caller, to_proto(&observer))),
                    event_time: Some(crate::api::to_timestamp(meta.change_time)),
                    resume_token,
                })
            });
        let stream = self
            .state
            .watch(
                store::observers::FEED,
                election_id,
                &request.resume_token,
                make_event,
            )
            .await?;
        Ok(Response::new(Box::pin(stream)))
    }
}
