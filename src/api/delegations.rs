//! DelegationService.

use tonic::{Request, Response, Status};

use crate::aip::field_mask::{self, MaskSpec};
use crate::aip::paging::{ListRequest, Page};
use crate::aip::{etag, request_id};
use crate::api::audit;
use crate::api::{
    AppState, check_soft_delete, check_text, optional_date, parse_parent, require_election,
    require_election_of_page, to_timestamp, total_size,
};
use crate::auth::Caller;
use crate::domain::date::format_date;
use crate::domain::delegation::{Delegation, DelegationFields, stay_in_order};
use crate::domain::meeting::within_stay;
use crate::domain::names;
use crate::domain::observer::observer_name;
use crate::error::{Error, Reason, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::delegation_service_server::DelegationService;
use crate::store::{self, request_ids};

const CREATE_METHOD: &str = "/observer_registry.v1.DelegationService/CreateDelegation";

const MASK: MaskSpec = MaskSpec {
    updatable: &[
        "display_name",
        "organization",
        "head",
        "arrival_date",
        "departure_date",
        "notes",
    ],
    output_only: &[
        "name",
        "member_count",
        "create_time",
        "update_time",
        "etag",
        "delete_time",
    ],
};

/// The DelegationService implementation.
#[derive(Debug, Clone)]
pub struct DelegationApi {
    state: AppState,
}

impl DelegationApi {
    pub fn new(state: AppState) -> Self {
        DelegationApi { state }
    }

    async fn create(
        &self,
        caller: &Caller,
        request: pb::CreateDelegationRequest,
    ) -> Result<pb::Delegation> {
        let key = request_id::key(&request.request_id, CREATE_METHOD, &request)?;
        let mut violations = Violations::new();
        let election_id = violations.check(
            "parent",
            names::parse_top_level(&request.parent, "elections"),
        );
        let id = violations.check(
            "delegation_id",
            names::resource_id_or_generated(&request.delegation_id),
        );
        let fields = match (&request.delegation, election_id) {
            (Some(delegation), Some(election_id)) => {
                validate(delegation, election_id, &mut violations)
            }
            (Some(_), None) => None,
            (None, _) => {
                violations.add("delegation", "is required");
                None
            }
        };
        violations.finish()?;
        let (Some(election_id), Some(id), Some(fields)) = (election_id, id, fields) else {
            return Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            )));
        };
        if fields.head_observer_id.is_some() {
            return Err(Error::precondition(
                Reason::HeadNotMember,
                "a new delegation has no members yet: register its observers, then name the head",
            )
            .with_violation("delegation.head", "must be a member of the delegation"));
        }

        crate::transaction!(self.state.db, |tx| {
            if let Some(first) = request_ids::claim::<pb::Delegation>(&mut tx, key.as_ref()).await?
            {
                return Ok(first);
            }
            require_election(&mut tx, election_id).await?;
            require_organization(&mut tx, &fields.organization_id).await?;
            let delegation =
                to_proto(&store::delegations::insert(&mut tx, election_id, &id, &fields).await?);
            request_ids::record(&mut tx, key.as_ref(), &delegation).await?;
            let after = audit::json("Delegation", &delegation);
            audit::record(
                &mut tx,
                caller,
                Some(election_id),
                &delegation.name,
                &request.request_id,
                None,
                Some(after),
            )
            .await?;
            tracing::info!(delegation = %delegation.name, "delegation created");
            Ok(delegation)
        })
    }

    async fn get(&self, request: pb::GetDelegationRequest) -> Result<pb::Delegation> {
        let (election_id, id) = parse_name(&request.name, "name")?;
        let mut conn = self.state.db.read().await?;
        let delegation = store::delegations::get(&mut conn, election_id, id, false)
            .await?
            .ok_or_else(|| Error::not_found(&request.name))?;
        Ok(to_proto(&delegation))
    }

    async fn list(
        &self,
        request: pb::ListDelegationsRequest,
    ) -> Result<pb::ListDelegationsResponse> {
        let election_id = parse_parent(&request.parent)?;
        let query = self.state.page_tokens.prepare(
            &store::delegations::LIST_SPEC,
            &ListRequest {
                parent: &request.parent,
                page_size: request.page_size,
                page_token: &request.page_token,
                filter: &request.filter,
                order_by: &request.order_by,
                show_deleted: request.show_deleted,
                personal_data: false,
            },
        )?;
        let mut conn = self.state.db.read().await?;
        let (rows, total) = store::delegations::list(&mut conn, election_id, &query).await?;
        require_election_of_page(&mut conn, election_id, rows.is_empty()).await?;
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListDelegationsResponse {
            delegations: page.items.iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
            total_size: total_size(page.total_size),
        })
    }

    async fn update(
        &self,
        caller: &Caller,
        request: pb::UpdateDelegationRequest,
    ) -> Result<pb::Delegation> {
        let changes = request
            .delegation
            .ok_or_else(|| Error::invalid("delegation", "is required"))?;
        let (election_id, id) = parse_name(&changes.name, "delegation.name")?;
        let mask = field_mask::resolve(request.update_mask.as_ref(), &MASK)?;

        crate::transaction!(self.state.db, |tx| {
            let current = store::delegations::get(&mut tx, election_id, id, true)
                .await?
                .filter(|d| d.delete_time.is_none())
                .ok_or_else(|| Error::not_found(&changes.name))?;
            etag::check(&changes.etag, current.etag, &changes.name)?;
            let mut merged = to_proto(&current);
            for field in mask.fields() {
                match *field {
                    "display_name" => merged.display_name = changes.display_name.clone(),
                    "organization" => merged.organization = changes.organization.clone(),
                    "head" => merged.head = changes.head.clone(),
                    "arrival_date" => merged.arrival_date = changes.arrival_date.clone(),
                    "departure_date" => merged.departure_date = changes.departure_date.clone(),
                    "notes" => merged.notes = changes.notes.clone(),
                    _ => {}
                }
            }
            let mut violations = Violations::new();
            let fields = validate(&merged, election_id, &mut violations);
            violations.finish()?;
            let Some(fields) = fields else {
                return Err(Error::internal(anyhow::anyhow!(
                    "validation passed without values"
                )));
            };

            if fields.organization_id != current.fields.organization_id {
                require_organization(&mut tx, &fields.organization_id).await?;
                if store::delegations::has_any_observer(&mut tx, election_id, id).await? {
                    return Err(Error::precondition(
                        Reason::DelegationOrganizationMismatch,
                        "the delegation has members sent by its organization: move them first",
                    )
                    .with_violation(
                        "delegation.organization",
                        "cannot change while the delegation has members",
                    ));
                }
            }
            if let Some(head) = &fields.head_observer_id {
                let member = store::observers::get(&mut tx, election_id, head, true).await?;
                let is_member = member.is_some_and(|o| {
                    o.delete_time.is_none() && o.fields.delegation_id.as_deref() == Some(id)
                });
                if !is_member {
                    return Err(Error::precondition(
                        Reason::HeadNotMember,
                        format!(
                            "{} is not a member of {}",
                            observer_name(election_id, head),
                            changes.name
                        ),
                    )
                    .with_violation("delegation.head", "must be a member of the delegation"));
                }
            }
            if (fields.arrival_date, fields.departure_date)
                != (current.fields.arrival_date, current.fields.departure_date)
            {
                let meetings =
                    store::meetings::scheduled_with_delegation(&mut tx, election_id, id).await?;
                if let Some(meeting) = meetings.iter().find(|m| {
                    !within_stay(
                        m.fields.start_time,
                        m.fields.end_time,
                        fields.arrival_date,
                        fields.departure_date,
                    )
                }) {
                    return Err(Error::precondition(
                        Reason::OutsideDelegationStay,
                        format!(
                            "{} is scheduled outside the new stay; move or cancel it first",
                            meeting.name()
                        ),
                    )
                    .with_metadata("meeting", meeting.name()));
                }
            }
            let delegation = store::delegations::update(&mut tx, election_id, id, &fields).await?;
            let before = audit::json("Delegation", &to_proto(&current));
            let after = audit::json("Delegation", &to_proto(&delegation));
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
            tracing::info!(delegation = %changes.name, fields = ?mask.fields(), "delegation updated");
            Ok(to_proto(&delegation))
        })
    }

    async fn set_deleted(
        &self,
        caller: &Caller,
        name: &str,
        etag_given: &str,
        deleted: bool,
    ) -> Result<pb::Delegation> {
        let (election_id, id) = parse_name(name, "name")?;
        crate::transaction!(self.state.db, |tx| {
            let current = store::delegations::get(&mut tx, election_id, id, true)
                .await?
                .ok_or_else(|| Error::not_found(name))?;
            check_soft_delete(
                name,
                deleted,
                current.delete_time.is_some(),
                current.etag,
                etag_given,
            )?;
            if deleted {
                // Decision (README): a delegation expected at a scheduled meeting is not deleted
                // behind the protocol office's back; cancel or change the meeting first.
                let meetings =
                    store::meetings::scheduled_with_delegation(&mut tx, election_id, id).await?;
                if let Some(meeting) = meetings.first() {
                    return Err(Error::precondition(
                        Reason::HasChildren,
                        format!(
                            "{name} is expected at the scheduled {}; cancel or change it first",
                            meeting.name()
                        ),
                    )
                    .with_metadata("meeting", meeting.name()));
                }
            }
            let delegation =
                store::delegations::set_deleted(&mut tx, election_id, id, deleted).await?;
            let before = audit::json("Delegation", &to_proto(&current));
            let after = audit::json("Delegation", &to_proto(&delegation));
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
            tracing::info!(delegation = %name, deleted, "delegation deletion changed");
            Ok(to_proto(&delegation))
        })
    }
}

fn parse_name<'a>(name: &'a str, field: &str) -> Result<(&'a str, &'a str)> {
    names::parse_child(name, "elections", "delegations").map_err(|e| Error::invalid(field, e))
}

/// INVALID_ARGUMENT naming `delegation.organization` when the organization does not exist.
async fn require_organization(conn: &mut sqlx::PgConnection, organization_id: &str) -> Result<()> {
    if store::organizations::get(conn, organization_id, false)
        .await?
        .is_none()
    {
        return Err(Error::invalid(
            "delegation.organization",
            format!("organizations/{organization_id} does not exist"),
        ));
    }
    Ok(())
}

/// Validates the caller-set fields of a delegation in `election_id`, recording every bad one.
fn validate(
    delegation: &pb::Delegation,
    election_id: &str,
    violations: &mut Violations,
) -> Option<DelegationFields> {
    check_text(
        violations,
        "delegation.display_name",
        &delegation.display_name,
        true,
        200,
    );
    check_text(
        violations,
        "delegation.notes",
        &delegation.notes,
        false,
        4000,
    );
    let organization_id = if delegation.organization.is_empty() {
        violations.add("delegation.organization", "is required");
        None
    } else {
        violations.check(
            "delegation.organization",
            names::parse_top_level(&delegation.organization, "organizations"),
        )
    };
    let head_observer_id = if delegation.head.is_empty() {
        Some(None)
    } else {
        match names::parse_child(&delegation.head, "elections", "observers") {
            Ok((head_election, head)) if head_election == election_id => {
                Some(Some(head.to_owned()))
            }
            Ok(_) => {
                violations.add(
                    "delegation.head",
                    "must be an observer of the same election",
                );
                None
            }
            Err(e) => {
                violations.add("delegation.head", e);
                None
            }
        }
    };
    let arrival_date = optional_date(
        violations,
        "delegation.arrival_date",
        &delegation.arrival_date,
    );
    let departure_date = optional_date(
        violations,
        "delegation.departure_date",
        &delegation.departure_date,
    );
    if !stay_in_order(arrival_date, departure_date) {
        violations.add(
            "delegation.departure_date",
            "must not be before arrival_date",
        );
    }
    Some(DelegationFields {
        display_name: delegation.display_name.trim().to_owned(),
        organization_id: organization_id?.to_owned(),
        head_observer_id: head_observer_id?,
        arrival_date,
        departure_date,
        notes: delegation.notes.clone(),
    })
}

pub(crate) fn to_proto(delegation: &Delegation) -> pb::Delegation {
    pb::Delegation {
        name: delegation.name(),
        display_name: delegation.fields.display_name.clone(),
        organization: format!("organizations/{}", delegation.fields.organization_id),
        head: delegation
            .fields
            .head_observer_id
            .as_deref()
            .map(|head| observer_name(&delegation.election_id, head))
            .unwrap_or_default(),
        arrival_date: delegation
            .fields
            .arrival_date
            .map(format_date)
            .unwrap_or_default(),
        departure_date: delegation
            .fields
            .departure_date
            .map(format_date)
            .unwrap_or_default(),
        notes: delegation.fields.notes.clone(),
        member_count: delegation.member_count,
        create_time: Some(to_timestamp(delegation.create_time)),
        update_time: Some(to_timestamp(delegation.update_time)),
        etag: etag::format(delegation.etag),
        delete_time: delegation.delete_time.map(to_timestamp),
    }
}

#[tonic::async_trait]
impl DelegationService for DelegationApi {
    async fn create_delegation(
        &self,
        request: Request<pb::CreateDelegationRequest>,
    ) -> Result<Response<pb::Delegation>, Status> {
        Ok(Response::new(
            self.create(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn get_delegation(
        &self,
        request: Request<pb::GetDelegationRequest>,
    ) -> Result<Response<pb::Delegation>, Status> {
        Ok(Response::new(self.get(request.into_inner()).await?))
    }

    async fn list_delegations(
        &self,
        request: Request<pb::ListDelegationsRequest>,
    ) -> Result<Response<pb::ListDelegationsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn update_delegation(
        &self,
        request: Request<pb::UpdateDelegationRequest>,
    ) -> Result<Response<pb::Delegation>, Status> {
        Ok(Response::new(
            self.update(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn delete_delegation(
        &self,
        request: Request<pb::DeleteDelegationRequest>,
    ) -> Result<Response<pb::Delegation>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.set_deleted(&caller, &request.name, &request.etag, true)
                .await?,
        ))
    }

    async fn undelete_delegation(
        &self,
        request: Request<pb::UndeleteDelegationRequest>,
    ) -> Result<Response<pb::Delegation>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.set_deleted(&caller, &request.name, &request.etag, false)
                .await?,
        ))
    }

    type WatchDelegationsStream = tonic::codegen::BoxStream<pb::DelegationEvent>;

    async fn watch_delegations(
        &self,
        request: Request<pb::WatchDelegationsRequest>,
    ) -> Result<Response<Self::WatchDelegationsStream>, Status> {
        let request = request.into_inner();
        let election_id = crate::api::parse_parent(&request.parent)?;
        let make_event: crate::api::watch::MakeEvent<pb::DelegationEvent> =
            Box::new(|meta, row, resume_token| {
                let delegation = store::delegations::from_change_row(row)?;
                Ok(pb::DelegationEvent {
                    r#type: crate::api::watch::change_type(meta)?.into(),
                    delegation: Some(to_proto(&delegation)),
                    event_time: Some(crate::api::to_timestamp(meta.change_time)),
                    resume_token,
                })
            });
        let stream = self
            .state
            .watch(
                store::delegations::FEED,
                election_id,
                &request.resume_token,
                make_event,
            )
            .await?;
        Ok(Response::new(Box::pin(stream)))
    }
}
