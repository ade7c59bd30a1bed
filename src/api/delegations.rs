//! DelegationService. Each call parses the request, loads the facts its rules need, lets
//! `domain::delegation` (and `domain::meeting`, for what scheduled meetings ask of their
//! delegations) decide, then stores, audits and encodes.

pub mod convert;

use sqlx::PgConnection;
use tonic::{Request, Response, Status};

use crate::aip::field_mask;
use crate::aip::paging::{ListRequest, Page};
use crate::aip::{etag, request_id};
use crate::api::skeleton::{self, Creation, SoftDeletion, entry_changed};
use crate::api::{AppState, parse_parent, require_election, require_election_of_page, total_size};
use crate::auth::Caller;
use crate::domain::delegation::{self, Delegation, DelegationFields};
use crate::domain::election::Election;
use crate::domain::invitation::Sender;
use crate::domain::{meeting, names};
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::delegation_service_server::DelegationService;
use crate::store;
use convert::{DelegationField, OUTPUT_ONLY, parse_fields, parse_name, to_proto};

const CREATE_METHOD: &str = "/observer_registry.v1.DelegationService/CreateDelegation";

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
        let key = request_id::key(caller, &request.request_id, CREATE_METHOD, &request)?;
        let (election_id, id, fields) = parse_create(&request)?;
        delegation::check_head_of_new(&fields)?;
        let creation = Creation {
            key: key.as_ref(),
            election_id: Some(election_id),
            request_id: &request.request_id,
        };
        let (id, fields) = (id.as_str(), &fields);
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    skeleton::create_once_in_election(tx, caller, creation, |tx, election| {
                        Box::pin(async move {
                            check_organization(tx, &fields.organization_id).await?;
                            check_invited(tx, &election, &fields.organization_id).await?;
                            let delegation =
                                store::delegations::insert(tx, election_id, id, fields).await?;
                            let delegation_ = delegation.name().to_string();
                            tx.after_commit(move || tracing::info!(delegation = %delegation_, "delegation created"));
                            Ok(to_proto(&delegation))
                        })
                    })
                    .await
                })
            })
            .await
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
        let masked: Vec<DelegationField> =
            field_mask::resolve_fields(request.update_mask.as_ref(), OUTPUT_ONLY)?;
        let (changes, masked) = (&changes, masked.as_slice());
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = store::delegations::get(tx, election_id, id, true)
                        .await?
                        .filter(|d| d.delete_time.is_none())
                        .ok_or_else(|| Error::not_found(&changes.name))?;
                    etag::check(&changes.etag, current.etag, &changes.name)?;
                    let fields = convert::merge(&current, changes, masked, election_id)?;
                    check_update(tx, &current, &fields).await?;
                    let updated = store::delegations::update(tx, election_id, id, &fields).await?;
                    let delegation = to_proto(&updated);
                    entry_changed(Some(election_id), &to_proto(&current), &delegation)
                        .record(tx, caller)
                        .await?;
                    let (delegation_, fields_) = (delegation.name.to_string(), format!("{:?}", masked));
                    tx.after_commit(move || tracing::info!(delegation = %delegation_, fields = %fields_, "delegation updated"));
                    Ok(delegation)
                })
            })
            .await
    }

    async fn set_deleted(
        &self,
        caller: &Caller,
        deletion: SoftDeletion<'_>,
    ) -> Result<pb::Delegation> {
        let (election_id, id) = parse_name(deletion.name, "name")?;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let found = store::delegations::get(tx, election_id, id, true).await?;
                    let current = deletion.check(found)?;
                    if deletion.delete {
                        let scheduled =
                            store::meetings::scheduled_with_delegation(tx, election_id, id)
                                .await?;
                        meeting::check_delegation_deletable(deletion.name, &scheduled)?;
                    }
                    let changed =
                        store::delegations::set_deleted(tx, election_id, id, deletion.delete)
                            .await?;
                    let delegation = to_proto(&changed);
                    entry_changed(Some(election_id), &to_proto(&current), &delegation)
                        .record(tx, caller)
                        .await?;
                    let (delegation_, deleted_) = (delegation.name.to_string(), deletion.delete);
                    tx.after_commit(move || tracing::info!(delegation = %delegation_, deleted = deleted_, "delegation deletion changed"));
                    Ok(delegation)
                })
            })
            .await
    }
}

/// The election id, delegation id and fields of a create, every bad field named at once.
fn parse_create(request: &pb::CreateDelegationRequest) -> Result<(&str, String, DelegationFields)> {
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
            parse_fields(delegation, election_id, &mut violations)
        }
        (Some(_), None) => None,
        (None, _) => {
            violations.add("delegation", "is required");
            None
        }
    };
    violations.finish()?;
    match (election_id, id, fields) {
        (Some(election_id), Some(id), Some(fields)) => Ok((election_id, id, fields)),
        _ => Err(Error::internal(anyhow::anyhow!(
            "validation passed without values"
        ))),
    }
}

/// The delegation's organization exists (INVALID_ARGUMENT naming it otherwise).
async fn check_organization(conn: &mut PgConnection, organization_id: &str) -> Result<()> {
    let exists = store::organizations::get(conn, organization_id, false)
        .await?
        .is_some();
    Ok(delegation::check_organization_exists(
        organization_id,
        exists,
    )?)
}

/// NOT_INVITED for the delegation's organization, where the election requires invitations.
async fn check_invited(
    conn: &mut PgConnection,
    election: &Election,
    organization_id: &str,
) -> Result<()> {
    let sender = Sender {
        at: "delegation.organization",
        organization_id,
    };
    crate::api::invitations::check_invited(conn, election, &[sender]).await
}

/// Loads what the rules of an update look at, as far as the change touches them, and lets
/// the domain decide: a new organization, a head, a changed stay.
async fn check_update(
    conn: &mut PgConnection,
    current: &Delegation,
    fields: &DelegationFields,
) -> Result<()> {
    let (election_id, id) = (current.election_id.as_str(), current.id.as_str());
    if fields.organization_id != current.fields.organization_id {
        check_organization(conn, &fields.organization_id).await?;
        let election = require_election(conn, election_id).await?;
        check_invited(conn, &election, &fields.organization_id).await?;
        let has_members = store::delegations::has_any_observer(conn, election_id, id).await?;
        delegation::check_organization_change(has_members)?;
    }
    if let Some(head_id) = &fields.head_observer_id {
        let head = store::observers::get(conn, election_id, head_id, true).await?;
        delegation::check_head(current, head_id, head.as_ref())?;
    }
    if fields.stay() != current.fields.stay() {
        let scheduled = store::meetings::scheduled_with_delegation(conn, election_id, id).await?;
        meeting::check_stay_keeps_meetings(fields.stay(), &scheduled)?;
    }
    Ok(())
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
        let deletion = SoftDeletion {
            name: &request.name,
            etag: &request.etag,
            delete: true,
        };
        Ok(Response::new(self.set_deleted(&caller, deletion).await?))
    }

    async fn undelete_delegation(
        &self,
        request: Request<pb::UndeleteDelegationRequest>,
    ) -> Result<Response<pb::Delegation>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let deletion = SoftDeletion {
            name: &request.name,
            etag: &request.etag,
            delete: false,
        };
        Ok(Response::new(self.set_deleted(&caller, deletion).await?))
    }

    type WatchDelegationsStream = tonic::codegen::BoxStream<pb::DelegationEvent>;

    async fn watch_delegations(
        &self,
        request: Request<pb::WatchDelegationsRequest>,
    ) -> Result<Response<Self::WatchDelegationsStream>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let election_id = crate::api::parse_parent(&request.parent)?;
        let make_event: crate::api::watch::MakeEvent<pb::DelegationEvent> =
            Box::new(|_caller, meta, row, resume_token| {
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
                caller,
                store::delegations::FEED,
                election_id,
                &request.resume_token,
                make_event,
            )
            .await?;
        Ok(Response::new(stream))
    }
}
