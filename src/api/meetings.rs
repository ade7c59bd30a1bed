//! MeetingService: scheduling officials' meetings with delegations, conflicts impossible.
//! Each call parses the request, loads the facts its rules need, lets `domain::meeting`
//! decide, then stores, audits and encodes.

pub mod convert;

use sqlx::PgConnection;
use tonic::{Request, Response, Status};

use crate::aip::field_mask;
use crate::aip::paging::{ListRequest, Page};
use crate::aip::{etag, request_id};
use crate::api::skeleton::{self, Creation, SoftDeletion, entry_changed};
use crate::api::{AppState, parse_parent, require_election_of_page, total_size};
use crate::auth::Caller;
use crate::domain::meeting::{self, Change, Meeting, MeetingFields, MeetingState, ScheduleFacts};
use crate::domain::names;
use crate::error::{Error, Reason, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::meeting_service_server::MeetingService;
use crate::store;
use convert::{MeetingField, OUTPUT_ONLY, parse_conclude, parse_fields, parse_name, to_proto};

const CREATE_METHOD: &str = "/observer_registry.v1.MeetingService/CreateMeeting";

/// The MeetingService implementation.
#[derive(Debug, Clone)]
pub struct MeetingApi {
    state: AppState,
}

impl MeetingApi {
    pub fn new(state: AppState) -> Self {
        MeetingApi { state }
    }

    async fn create(
        &self,
        caller: &Caller,
        request: pb::CreateMeetingRequest,
    ) -> Result<pb::Meeting> {
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
                            check_schedule(tx, election_id, id, fields, Change::Create).await?;
                            let inserted =
                                store::meetings::insert(tx, election_id, id, fields).await;
                            let meeting = self
                                .name_conflict(inserted, election_id, id, fields)
                                .await?;
                            let meeting_ = meeting.name().to_string();
                            tx.after_commit(
                                move || tracing::info!(meeting = %meeting_, "meeting scheduled"),
                            );
                            Ok(to_proto(&meeting))
                        })
                    })
                    .await
                })
            })
            .await
    }

    /// A write refused by the exclusion constraints lost a race; name the meeting that won.
    async fn name_conflict(
        &self,
        result: Result<Meeting>,
        election_id: &str,
        id: &str,
        fields: &MeetingFields,
    ) -> Result<Meeting> {
        match result {
            Err(error) if error.reason == Reason::MeetingConflict => {
                // The transaction is aborted by the violation: look in a fresh one.
                let mut conn = self.state.db.read().await?;
                let neighbours =
                    store::meetings::neighbours(&mut conn, election_id, id, fields).await?;
                match meeting::find_conflict(id, fields, &neighbours) {
                    Some(conflict) => Err(conflict.refusal(election_id).into()),
                    None => Err(error),
                }
            }
            other => other,
        }
    }

    async fn get(&self, request: pb::GetMeetingRequest) -> Result<pb::Meeting> {
        let (election_id, id) = parse_name(&request.name, "name")?;
        let mut conn = self.state.db.read().await?;
        let meeting = store::meetings::get(&mut conn, election_id, id, false)
            .await?
            .ok_or_else(|| Error::not_found(&request.name))?;
        Ok(to_proto(&meeting))
    }

    async fn list(&self, request: pb::ListMeetingsRequest) -> Result<pb::ListMeetingsResponse> {
        let election_id = parse_parent(&request.parent)?;
        let query = self.state.page_tokens.prepare(
            &store::meetings::LIST_SPEC,
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
        let (rows, total) = store::meetings::list(&mut conn, election_id, &query).await?;
        require_election_of_page(&mut conn, election_id, rows.is_empty()).await?;
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListMeetingsResponse {
            meetings: page.items.iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
            total_size: total_size(page.total_size),
        })
    }

    async fn update(
        &self,
        caller: &Caller,
        request: pb::UpdateMeetingRequest,
    ) -> Result<pb::Meeting> {
        let changes = request
            .meeting
            .ok_or_else(|| Error::invalid("meeting", "is required"))?;
        let (election_id, id) = parse_name(&changes.name, "meeting.name")?;
        let masked: Vec<MeetingField> =
            field_mask::resolve_fields(request.update_mask.as_ref(), OUTPUT_ONLY)?;
        let (changes, masked) = (&changes, masked.as_slice());
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = live_meeting(tx, election_id, id, &changes.name).await?;
                    etag::check(&changes.etag, current.etag, &changes.name)?;
                    let fields = convert::merge(&current, changes, masked, election_id)?;
                    check_schedule(tx, election_id, id, &fields, Change::Update(&current)).await?;
                    let updated = store::meetings::update(tx, election_id, id, &fields).await;
                    let meeting = to_proto(
                        &self
                            .name_conflict(updated, election_id, id, &fields)
                            .await?,
                    );
                    entry_changed(Some(election_id), &to_proto(&current), &meeting)
                        .record(tx, caller)
                        .await?;
                    let (meeting_, fields_) = (meeting.name.to_string(), format!("{:?}", masked));
                    tx.after_commit(move || tracing::info!(meeting = %meeting_, fields = %fields_, "meeting updated"));
                    Ok(meeting)
                })
            })
            .await
    }

    async fn set_deleted(
        &self,
        caller: &Caller,
        deletion: SoftDeletion<'_>,
    ) -> Result<pb::Meeting> {
        let (election_id, id) = parse_name(deletion.name, "name")?;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let found = store::meetings::get(tx, election_id, id, true).await?;
                    let current = deletion.check(found)?;
                    if !deletion.delete {
                        // Its slot may have been booked, its delegations deleted or their
                        // stays changed while it was deleted.
                        let change = Change::Undelete(&current);
                        check_schedule(tx, election_id, id, &current.fields, change).await?;
                    }
                    let changed =
                        store::meetings::set_deleted(tx, election_id, id, deletion.delete).await;
                    let meeting = to_proto(
                        &self
                            .name_conflict(changed, election_id, id, &current.fields)
                            .await?,
                    );
                    entry_changed(Some(election_id), &to_proto(&current), &meeting)
                        .record(tx, caller)
                        .await?;
                    let (meeting_, deleted_) = (meeting.name.to_string(), deletion.delete);
                    tx.after_commit(move || tracing::info!(meeting = %meeting_, deleted = deleted_, "meeting deletion changed"));
                    Ok(meeting)
                })
            })
            .await
    }

    /// SCHEDULED → HELD (with the outcome) or CANCELLED (with the reason).
    async fn conclude(
        &self,
        caller: &Caller,
        name: &str,
        etag_given: &str,
        next: MeetingState,
        text: &str,
    ) -> Result<pb::Meeting> {
        let (election_id, id) = parse_name(name, "name")?;
        let command = &parse_conclude(next, text)?;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = live_meeting(tx, election_id, id, name).await?;
                    etag::check(etag_given, current.etag, name)?;
                    let now = self.state.clock.now();
                    let conclusion = meeting::conclude(&current, command.clone(), now)?;
                    let concluded =
                        to_proto(&store::meetings::conclude(tx, election_id, id, &conclusion).await?);
                    entry_changed(Some(election_id), &to_proto(&current), &concluded)
                        .record(tx, caller)
                        .await?;
                    let (meeting_, state_) = (name.to_string(), conclusion.state.as_str());
                    tx.after_commit(move || tracing::info!(meeting = %meeting_, state = state_, "meeting concluded"));
                    Ok(concluded)
                })
            })
            .await
    }
}

/// The election id, meeting id and fields of a create, every bad field named at once.
fn parse_create(request: &pb::CreateMeetingRequest) -> Result<(&str, String, MeetingFields)> {
    let mut violations = Violations::new();
    let election_id = violations.check(
        "parent",
        names::parse_top_level(&request.parent, "elections"),
    );
    let id = violations.check(
        "meeting_id",
        names::resource_id_or_generated(&request.meeting_id),
    );
    let fields = match (&request.meeting, election_id) {
        (Some(meeting), Some(election_id)) => parse_fields(meeting, election_id, &mut violations),
        (Some(_), None) => None,
        (None, _) => {
            violations.add("meeting", "is required");
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

/// Loads what the schedule rules look at — the named delegations (share-locked, so they
/// cannot be deleted or change before commit) and the meetings that may clash, once the
/// slots are locked (so a concurrent writer's meeting is seen, not raced) — and lets the
/// domain decide.
async fn check_schedule(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    fields: &MeetingFields,
    change: Change<'_>,
) -> Result<()> {
    store::meetings::lock_slots(conn, election_id, fields).await?;
    let delegations =
        store::delegations::get_many_for_share(conn, election_id, &fields.delegation_ids).await?;
    let neighbours = store::meetings::neighbours(conn, election_id, id, fields).await?;
    let facts = ScheduleFacts {
        election_id,
        meeting_id: id,
        delegations: &delegations,
        neighbours: &neighbours,
    };
    Ok(meeting::check_schedule(fields, change, &facts)?)
}

/// The meeting, locked, unless it does not exist or is deleted (then NOT_FOUND).
async fn live_meeting(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    name: &str,
) -> Result<Meeting> {
    store::meetings::get(conn, election_id, id, true)
        .await?
        .filter(|m| m.delete_time.is_none())
        .ok_or_else(|| Error::not_found(name))
}

#[tonic::async_trait]
impl MeetingService for MeetingApi {
    async fn create_meeting(
        &self,
        request: Request<pb::CreateMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        Ok(Response::new(
            self.create(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn get_meeting(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        Ok(Response::new(self.get(request.into_inner()).await?))
    }

    async fn list_meetings(
        &self,
        request: Request<pb::ListMeetingsRequest>,
    ) -> Result<Response<pb::ListMeetingsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn update_meeting(
        &self,
        request: Request<pb::UpdateMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        Ok(Response::new(
            self.update(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn delete_meeting(
        &self,
        request: Request<pb::DeleteMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let deletion = SoftDeletion {
            name: &request.name,
            etag: &request.etag,
            delete: true,
        };
        Ok(Response::new(self.set_deleted(&caller, deletion).await?))
    }

    async fn undelete_meeting(
        &self,
        request: Request<pb::UndeleteMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let deletion = SoftDeletion {
            name: &request.name,
            etag: &request.etag,
            delete: false,
        };
        Ok(Response::new(self.set_deleted(&caller, deletion).await?))
    }

    async fn complete_meeting(
        &self,
        request: Request<pb::CompleteMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let (name, etag, outcome) = (&request.name, &request.etag, &request.outcome);
        Ok(Response::new(
            self.conclude(&caller, name, etag, MeetingState::Held, outcome)
                .await?,
        ))
    }

    async fn cancel_meeting(
        &self,
        request: Request<pb::CancelMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let (name, etag, reason) = (&request.name, &request.etag, &request.reason);
        Ok(Response::new(
            self.conclude(&caller, name, etag, MeetingState::Cancelled, reason)
                .await?,
        ))
    }

    type WatchMeetingsStream = tonic::codegen::BoxStream<pb::MeetingEvent>;

    async fn watch_meetings(
        &self,
        request: Request<pb::WatchMeetingsRequest>,
    ) -> Result<Response<Self::WatchMeetingsStream>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let election_id = crate::api::parse_parent(&request.parent)?;
        let make_event: crate::api::watch::MakeEvent<pb::MeetingEvent> =
            Box::new(|_caller, meta, row, resume_token| {
                let meeting = store::meetings::from_change_row(row)?;
                Ok(pb::MeetingEvent {
                    r#type: crate::api::watch::change_type(meta)?.into(),
                    meeting: Some(to_proto(&meeting)),
                    event_time: Some(crate::api::to_timestamp(meta.change_time)),
                    resume_token,
                })
            });
        let stream = self
            .state
            .watch(
                caller,
                store::meetings::FEED,
                election_id,
                &request.resume_token,
                make_event,
            )
            .await?;
        Ok(Response::new(stream))
    }
}
