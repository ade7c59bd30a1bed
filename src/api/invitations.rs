//! InvitationService: the host state's invitations and the replies to them. Each call parses
//! the request, loads the facts its rules need, lets `domain::invitation` decide, then
//! stores, audits and encodes.

pub mod convert;

use sqlx::PgConnection;
use tonic::{Request, Response, Status};

use crate::aip::field_mask;
use crate::aip::paging::{ListRequest, Page};
use crate::aip::{etag, request_id};
use crate::api::audit::AuditEntry;
use crate::api::skeleton::{self, Creation, entry_changed, entry_removed};
use crate::api::{AppState, parse_parent, require_election_of_page, total_size};
use crate::auth::Caller;
use crate::domain::election::Election;
use crate::domain::invitation::{
    self, Answer, Invitation, InvitationFields, Sender, invitation_name,
};
use crate::domain::names;
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::invitation_service_server::InvitationService;
use crate::store;
use convert::{InvitationField, OUTPUT_ONLY, parse_fields, parse_name, to_proto};

const CREATE_METHOD: &str = "/observer_registry.v1.InvitationService/CreateInvitation";

/// The InvitationService implementation.
#[derive(Debug, Clone)]
pub struct InvitationApi {
    state: AppState,
}

impl InvitationApi {
    pub fn new(state: AppState) -> Self {
        InvitationApi { state }
    }

    async fn create(
        &self,
        caller: &Caller,
        request: pb::CreateInvitationRequest,
    ) -> Result<pb::Invitation> {
        let key = request_id::key(caller, &request.request_id, CREATE_METHOD, &request)?;
        let (election_id, id, fields) = parse_create(&request)?;
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
                    skeleton::create_once_in_election(tx, caller, creation, |tx, _| {
                        Box::pin(async move {
                            check_organization(tx, election_id, id, &fields.organization_id)
                                .await?;
                            let invitation =
                                store::invitations::insert(tx, election_id, id, fields).await?;
                            let invitation_ = invitation.name();
                            tx.after_commit(move || tracing::info!(invitation = %invitation_, "invitation recorded"));
                            Ok(to_proto(&invitation))
                        })
                    })
                    .await
                })
            })
            .await
    }

    async fn get(&self, request: pb::GetInvitationRequest) -> Result<pb::Invitation> {
        let (election_id, id) = parse_name(&request.name, "name")?;
        let mut conn = self.state.db.read().await?;
        let invitation = store::invitations::get(&mut conn, election_id, id, false)
            .await?
            .ok_or_else(|| Error::not_found(&request.name))?;
        Ok(to_proto(&invitation))
    }

    async fn list(
        &self,
        request: pb::ListInvitationsRequest,
    ) -> Result<pb::ListInvitationsResponse> {
        let election_id = parse_parent(&request.parent)?;
        let query = self.state.page_tokens.prepare(
            &store::invitations::LIST_SPEC,
            &ListRequest {
                parent: &request.parent,
                page_size: request.page_size,
                page_token: &request.page_token,
                filter: &request.filter,
                order_by: &request.order_by,
                show_deleted: false,
                personal_data: false,
            },
        )?;
        let mut conn = self.state.db.read().await?;
        let (rows, total) = store::invitations::list(&mut conn, election_id, &query).await?;
        require_election_of_page(&mut conn, election_id, rows.is_empty()).await?;
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListInvitationsResponse {
            invitations: page.items.iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
            total_size: total_size(page.total_size),
        })
    }

    async fn update(
        &self,
        caller: &Caller,
        request: pb::UpdateInvitationRequest,
    ) -> Result<pb::Invitation> {
        let changes = request
            .invitation
            .ok_or_else(|| Error::invalid("invitation", "is required"))?;
        let (election_id, id) = parse_name(&changes.name, "invitation.name")?;
        let masked: Vec<InvitationField> =
            field_mask::resolve_fields(request.update_mask.as_ref(), OUTPUT_ONLY)?;
        let (changes, masked) = (&changes, masked.as_slice());
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = existing(tx, election_id, id, &changes.name).await?;
                    etag::check(&changes.etag, current.etag, &changes.name)?;
                    invitation::check_changeable(&current, "updated")?;
                    let fields = convert::merge(&current, changes, masked)?;
                    if fields.organization_id != current.fields.organization_id {
                        check_organization(tx, election_id, id, &fields.organization_id).await?;
                    }
                    let updated = store::invitations::update(tx, election_id, id, &fields).await?;
                    let invitation = to_proto(&updated);
                    entry_changed(Some(election_id), &to_proto(&current), &invitation)
                        .record(tx, caller)
                        .await?;
                    let (invitation_, fields_) = (invitation.name.to_string(), format!("{:?}", masked));
                    tx.after_commit(move || tracing::info!(invitation = %invitation_, fields = %fields_, "invitation updated"));
                    Ok(invitation)
                })
            })
            .await
    }

    /// A reply (accept, decline) or a withdrawal, through the state machine.
    async fn answer(
        &self,
        caller: &Caller,
        name: &str,
        etag_given: &str,
        answer: Answer,
    ) -> Result<pb::Invitation> {
        let (election_id, id) = parse_name(name, "name")?;
        let answer = &answer;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = existing(tx, election_id, id, name).await?;
                    etag::check(etag_given, current.etag, name)?;
                    let outcome = invitation::answer(&current, answer.clone())?;
                    let answered = to_proto(
                        &store::invitations::set_outcome(tx, election_id, id, &outcome).await?,
                    );
                    let entry = AuditEntry {
                        reason: &outcome.reason,
                        ..entry_changed(Some(election_id), &to_proto(&current), &answered)
                    };
                    entry.record(tx, caller).await?;
                    let (invitation_, state_) = (name.to_string(), outcome.state.as_str());
                    tx.after_commit(move || tracing::info!(invitation = %invitation_, state = state_, "invitation answered"));
                    Ok(answered)
                })
            })
            .await
    }

    async fn delete(
        &self,
        caller: &Caller,
        request: pb::DeleteInvitationRequest,
    ) -> Result<pb::Invitation> {
        let (election_id, id) = parse_name(&request.name, "name")?;
        let request = &request;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = existing(tx, election_id, id, &request.name).await?;
                    etag::check(&request.etag, current.etag, &request.name)?;
                    invitation::check_changeable(&current, "deleted")?;
                    store::invitations::delete(tx, election_id, id).await?;
                    let removed = to_proto(&current);
                    entry_removed(Some(election_id), &removed)
                        .record(tx, caller)
                        .await?;
                    let invitation_ = request.name.to_string();
                    tx.after_commit(
                        move || tracing::info!(invitation = %invitation_, "invitation deleted"),
                    );
                    Ok(removed)
                })
            })
            .await
    }
}

/// AcceptInvitation, DeclineInvitation and WithdrawInvitation: one invitation, its etag, and
/// what the call records.
trait AnswerRequest {
    fn name(&self) -> &str;
    fn etag(&self) -> &str;
    fn parse(&self) -> Result<Answer>;
}

impl AnswerRequest for pb::AcceptInvitationRequest {
    fn name(&self) -> &str {
        &self.name
    }
    fn etag(&self) -> &str {
        &self.etag
    }
    fn parse(&self) -> Result<Answer> {
        convert::parse_accept(self)
    }
}

impl AnswerRequest for pb::DeclineInvitationRequest {
    fn name(&self) -> &str {
        &self.name
    }
    fn etag(&self) -> &str {
        &self.etag
    }
    fn parse(&self) -> Result<Answer> {
        convert::parse_decline(self)
    }
}

impl AnswerRequest for pb::WithdrawInvitationRequest {
    fn name(&self) -> &str {
        &self.name
    }
    fn etag(&self) -> &str {
        &self.etag
    }
    fn parse(&self) -> Result<Answer> {
        convert::parse_withdraw(self)
    }
}

impl InvitationApi {
    async fn answer_request<R: AnswerRequest>(
        &self,
        request: Request<R>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        // The name before the rest: a reply to no invitation has nothing to check against.
        parse_name(request.name(), "name")?;
        let answer = request.parse()?;
        Ok(Response::new(
            self.answer(&caller, request.name(), request.etag(), answer)
                .await?,
        ))
    }
}

/// The election id, invitation id and fields of a create, every bad field named at once.
fn parse_create(request: &pb::CreateInvitationRequest) -> Result<(&str, String, InvitationFields)> {
    let mut violations = Violations::new();
    let election_id = violations.check(
        "parent",
        names::parse_top_level(&request.parent, "elections"),
    );
    let id = violations.check(
        "invitation_id",
        names::resource_id_or_generated(&request.invitation_id),
    );
    let fields = match &request.invitation {
        Some(invitation) => parse_fields(invitation, &mut violations),
        None => {
            violations.add("invitation", "is required");
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

/// The invited organization exists (INVALID_ARGUMENT naming it otherwise) and has no other
/// invitation to the election (ALREADY_EXISTS naming that one; the unique index
/// `invitations_one_per_organization` holds it under races).
async fn check_organization(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    organization_id: &str,
) -> Result<()> {
    if store::organizations::get(conn, organization_id, false)
        .await?
        .is_none()
    {
        return Err(Error::invalid(
            "invitation.organization",
            format!("organizations/{organization_id} does not exist"),
        ));
    }
    match store::invitations::of_organization(conn, election_id, organization_id, id).await? {
        None => Ok(()),
        Some(other) => Err(Error::already_exists(&invitation_name(election_id, &other))
            .with_metadata("organization", format!("organizations/{organization_id}"))),
    }
}

/// NOT_INVITED, for the services that register and accredit observers: when `election`
/// requires invitations, each sender's organization has an ACCEPTED invitation, which stays
/// share-locked until the caller commits (a withdrawal waits for it).
pub async fn check_invited(
    conn: &mut PgConnection,
    election: &Election,
    senders: &[Sender<'_>],
) -> Result<()> {
    let required = election.fields.invitation_required;
    if !required || senders.is_empty() {
        return Ok(());
    }
    let mut organization_ids: Vec<&str> = senders.iter().map(|s| s.organization_id).collect();
    organization_ids.sort_unstable();
    organization_ids.dedup();
    let accepted =
        store::invitations::accepted_organizations(conn, &election.id, &organization_ids).await?;
    Ok(invitation::check_invited(required, &accepted, senders)?)
}

/// The invitation, locked, or NOT_FOUND.
async fn existing(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    name: &str,
) -> Result<Invitation> {
    store::invitations::get(conn, election_id, id, true)
        .await?
        .ok_or_else(|| Error::not_found(name))
}

#[tonic::async_trait]
impl InvitationService for InvitationApi {
    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        Ok(Response::new(
            self.create(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn get_invitation(
        &self,
        request: Request<pb::GetInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        Ok(Response::new(self.get(request.into_inner()).await?))
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn update_invitation(
        &self,
        request: Request<pb::UpdateInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        Ok(Response::new(
            self.update(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        self.answer_request(request).await
    }

    async fn decline_invitation(
        &self,
        request: Request<pb::DeclineInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        self.answer_request(request).await
    }

    async fn withdraw_invitation(
        &self,
        request: Request<pb::WithdrawInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        self.answer_request(request).await
    }

    async fn delete_invitation(
        &self,
        request: Request<pb::DeleteInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        Ok(Response::new(
            self.delete(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    type WatchInvitationsStream = tonic::codegen::BoxStream<pb::InvitationEvent>;

    async fn watch_invitations(
        &self,
        request: Request<pb::WatchInvitationsRequest>,
    ) -> Result<Response<Self::WatchInvitationsStream>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let election_id = crate::api::parse_parent(&request.parent)?;
        let make_event: crate::api::watch::MakeEvent<pb::InvitationEvent> =
            Box::new(|_caller, meta, row, resume_token| {
                let invitation = store::invitations::from_change_row(row)?;
                Ok(pb::InvitationEvent {
                    r#type: crate::api::watch::change_type(meta)?.into(),
                    invitation: Some(to_proto(&invitation)),
                    event_time: Some(crate::api::to_timestamp(meta.change_time)),
                    resume_token,
                })
            });
        let stream = self
            .state
            .watch(
                caller,
                store::invitations::FEED,
                election_id,
                &request.resume_token,
                make_event,
            )
            .await?;
        Ok(Response::new(stream))
    }
}
