//! MeetingService: scheduling officials' meetings with delegations, conflicts impossible.

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use crate::aip::field_mask::{self, MaskSpec};
use crate::aip::paging::{ListRequest, Page};
use crate::aip::{etag, request_id};
use crate::api::audit;
use crate::api::{
    AppState, check_soft_delete, check_text, from_timestamp, parse_parent, require_election,
    require_election_of_page, to_timestamp, total_size,
};
use crate::auth::Caller;
use crate::domain::delegation::delegation_name;
use crate::domain::meeting::{Meeting, MeetingFields, MeetingState, meeting_name, within_stay};
use crate::domain::names;
use crate::error::{Error, Reason, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::meeting_service_server::MeetingService;
use crate::store::{self, request_ids};

const CREATE_METHOD: &str = "/observer_registry.v1.MeetingService/CreateMeeting";
const MAX_DELEGATIONS: usize = 100;
const MAX_TOPICS: usize = 50;

const MASK: MaskSpec = MaskSpec {
    updatable: &[
        "title",
        "host",
        "delegations",
        "start_time",
        "end_time",
        "location",
        "topics",
    ],
    output_only: &[
        "name",
        "state",
        "outcome",
        "cancel_reason",
        "create_time",
        "update_time",
        "etag",
        "delete_time",
    ],
};

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
        let key = request_id::key(&request.request_id, CREATE_METHOD, &request)?;
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
            (Some(meeting), Some(election_id)) => validate(meeting, election_id, &mut violations),
            (Some(_), None) => None,
            (None, _) => {
                violations.add("meeting", "is required");
                None
            }
        };
        violations.finish()?;
        let (Some(election_id), Some(id), Some(fields)) = (election_id, id, fields) else {
            return Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            )));
        };

        crate::transaction!(self.state.db, |tx| {
            if let Some(first) = request_ids::claim::<pb::Meeting>(&mut tx, key.as_ref()).await? {
                return Ok(first);
            }
            require_election(&mut tx, election_id).await?;
            self.check_schedule(&mut tx, election_id, &id, &fields, Change::Create)
                .await?;
            let inserted = store::meetings::insert(&mut tx, election_id, &id, &fields).await;
            let meeting = to_proto(
                &self
                    .name_conflict(inserted, election_id, &id, &fields)
                    .await?,
            );
            request_ids::record(&mut tx, key.as_ref(), &meeting).await?;
            let after = audit::json("Meeting", &meeting);
            audit::record(
                &mut tx,
                caller,
                Some(election_id),
                &meeting.name,
                &request.request_id,
                None,
                Some(after),
            )
            .await?;
            tracing::info!(meeting = %meeting.name, "meeting scheduled");
            Ok(meeting)
        })
    }

    /// The delegations exist and are live, they stay long enough, and nobody is
    /// double-booked — as far as `change` needs: a cancelled meeting holds no slot, a held
    /// one is history, and delegations a meeting already had are not re-examined on edits.
    async fn check_schedule(
        &self,
        conn: &mut sqlx::PgConnection,
        election_id: &str,
        id: &str,
        fields: &MeetingFields,
        change: Change<'_>,
    ) -> Result<()> {
        let delegations: HashMap<String, _> =
            store::delegations::get_many_for_share(conn, election_id, &fields.delegation_ids)
                .await?
                .into_iter()
                .map(|d| (d.id.clone(), d))
                .collect();
        let state = match change {
            Change::Create => MeetingState::Scheduled,
            Change::Update(current) | Change::Undelete(current) => current.state,
        };
        for (i, delegation_id) in fields.delegation_ids.iter().enumerate() {
            let name = delegation_name(election_id, delegation_id);
            let live = delegations
                .get(delegation_id)
                .filter(|d| d.delete_time.is_none());
            let Some(delegation) = live else {
                match change {
                    Change::Update(current)
                        if current.fields.delegation_ids.contains(delegation_id) =>
                    {
                        continue;
                    }
                    Change::Undelete(_) if state != MeetingState::Scheduled => continue,
                    Change::Undelete(_) => {
                        return Err(Error::precondition(
                            Reason::DelegationDeleted,
                            format!("{name} was deleted: undelete it or change the meeting's delegations"),
                        )
                        .with_metadata("delegation", name));
                    }
                    _ => {
                        return Err(Error::invalid(
                            &format!("meeting.delegations[{i}]"),
                            format!("{name} does not exist or is deleted"),
                        ));
                    }
                }
            };
            let stay = (
                delegation.fields.arrival_date,
                delegation.fields.departure_date,
            );
            if state == MeetingState::Scheduled
                && !within_stay(fields.start_time, fields.end_time, stay.0, stay.1)
            {
                return Err(Error::precondition(
                    Reason::OutsideDelegationStay,
                    format!(
                        "the meeting is outside the stay of {name} ({})",
                        describe_stay(stay)
                    ),
                )
                .with_metadata("delegation", name));
            }
        }
        if state != MeetingState::Cancelled
            && let Some((other, who)) =
                store::meetings::find_conflict(conn, election_id, id, fields).await?
        {
            return Err(conflict(election_id, &other, &who));
        }
        Ok(())
    }

    /// A write refused by the exclusion constraints lost a race; name the meeting that won.
    async fn name_conflict<T>(
        &self,
        result: Result<T>,
        election_id: &str,
        id: &str,
        fields: &MeetingFields,
    ) -> Result<T> {
        match result {
            Err(error) if error.reason == Reason::MeetingConflict => {
                let mut conn = self.state.db.read().await?;
                match store::meetings::find_conflict(&mut conn, election_id, id, fields).await? {
                    Some((other, who)) => Err(conflict(election_id, &other, &who)),
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
        let mask = field_mask::resolve(request.update_mask.as_ref(), &MASK)?;

        crate::transaction!(self.state.db, |tx| {
            let current = live_meeting(&mut tx, election_id, id, &changes.name).await?;
            etag::check(&changes.etag, current.etag, &changes.name)?;
            let mut merged = to_proto(&current);
            for field in mask.fields() {
                match *field {
                    "title" => merged.title = changes.title.clone(),
                    "host" => merged.host = changes.host.clone(),
                    "delegations" => merged.delegations = changes.delegations.clone(),
                    "start_time" => merged.start_time = changes.start_time,
                    "end_time" => merged.end_time = changes.end_time,
                    "location" => merged.location = changes.location.clone(),
                    "topics" => merged.topics = changes.topics.clone(),
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
            self.check_schedule(&mut tx, election_id, id, &fields, Change::Update(&current))
                .await?;
            let updated = store::meetings::update(&mut tx, election_id, id, &fields).await;
            let meeting = self
                .name_conflict(updated, election_id, id, &fields)
                .await?;
            let (before, after) = (
                audit::json("Meeting", &to_proto(&current)),
                audit::json("Meeting", &to_proto(&meeting)),
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
            tracing::info!(meeting = %changes.name, fields = ?mask.fields(), "meeting updated");
            Ok(to_proto(&meeting))
        })
    }

    async fn set_deleted(
        &self,
        caller: &Caller,
        name: &str,
        etag_given: &str,
        deleted: bool,
    ) -> Result<pb::Meeting> {
        let (election_id, id) = parse_name(name, "name")?;
        crate::transaction!(self.state.db, |tx| {
            let current = store::meetings::get(&mut tx, election_id, id, true)
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
                // Its slot may have been booked, its delegations deleted or their stays changed
                // while it was deleted.
                self.check_schedule(
                    &mut tx,
                    election_id,
                    id,
                    &current.fields,
                    Change::Undelete(&current),
                )
                .await?;
            }
            let changed = store::meetings::set_deleted(&mut tx, election_id, id, deleted).await;
            let meeting = self
                .name_conflict(changed, election_id, id, &current.fields)
                .await?;
            let (before, after) = (
                audit::json("Meeting", &to_proto(&current)),
                audit::json("Meeting", &to_proto(&meeting)),
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
            tracing::info!(meeting = %name, deleted, "meeting deletion changed");
            Ok(to_proto(&meeting))
        })
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
        let text = text.trim();
        let field = if next == MeetingState::Held {
            "outcome"
        } else {
            "reason"
        };
        let mut violations = Violations::new();
        check_text(&mut violations, field, text, true, 4000);
        violations.finish()?;

        crate::transaction!(self.state.db, |tx| {
            let current = live_meeting(&mut tx, election_id, id, name).await?;
            etag::check(etag_given, current.etag, name)?;
            if current.state != MeetingState::Scheduled {
                return Err(Error::precondition(
                    Reason::InvalidStateTransition,
                    format!(
                        "{name} is {}; only a SCHEDULED meeting can become {}",
                        current.state.as_str(),
                        next.as_str()
                    ),
                )
                .with_metadata("state", current.state.as_str()));
            }
            if next == MeetingState::Held && self.state.clock.now() < current.fields.start_time {
                return Err(Error::precondition(
                    Reason::InvalidStateTransition,
                    format!(
                        "{name} has not started yet: it starts at {}",
                        current.fields.start_time.to_rfc3339()
                    ),
                )
                .with_metadata("state", current.state.as_str()));
            }
            let (outcome, reason) = if next == MeetingState::Held {
                (text, "")
            } else {
                ("", text)
            };
            let meeting =
                store::meetings::set_state(&mut tx, election_id, id, next, outcome, reason).await?;
            let (before, after) = (
                audit::json("Meeting", &to_proto(&current)),
                audit::json("Meeting", &to_proto(&meeting)),
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
            tracing::info!(meeting = %name, state = next.as_str(), "meeting concluded");
            Ok(to_proto(&meeting))
        })
    }
}

/// Which change of a meeting is being checked.
#[derive(Clone, Copy)]
enum Change<'a> {
    Create,
    Update(&'a Meeting),
    Undelete(&'a Meeting),
}

fn conflict(election_id: &str, other: &str, who: &str) -> Error {
    let other = meeting_name(election_id, other);
    let who = if who == "host" {
        "the host".to_owned()
    } else {
        delegation_name(election_id, who)
    };
    Error::precondition(
        Reason::MeetingConflict,
        format!("{who} is already in {other} at that time"),
    )
    .with_metadata("conflicting_meeting", other)
    .with_metadata("conflict", who)
}

fn describe_stay(stay: (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>)) -> String {
    let day = |d: Option<chrono::NaiveDate>| d.map_or("?".to_owned(), |d| d.to_string());
    format!("{} to {}", day(stay.0), day(stay.1))
}

fn parse_name<'a>(name: &'a str, field: &str) -> Result<(&'a str, &'a str)> {
    names::parse_child(name, "elections", "meetings").map_err(|e| Error::invalid(field, e))
}

/// The meeting, locked, unless it does not exist or is deleted (then NOT_FOUND).
async fn live_meeting(
    conn: &mut sqlx::PgConnection,
    election_id: &str,
    id: &str,
    name: &str,
) -> Result<Meeting> {
    store::meetings::get(conn, election_id, id, true)
        .await?
        .filter(|m| m.delete_time.is_none())
        .ok_or_else(|| Error::not_found(name))
}

/// Validates the caller-set fields of a meeting in `election_id`, recording every bad one.
fn validate(
    meeting: &pb::Meeting,
    election_id: &str,
    violations: &mut Violations,
) -> Option<MeetingFields> {
    check_text(violations, "meeting.title", &meeting.title, true, 200);
    check_text(violations, "meeting.host", &meeting.host, true, 200);
    check_text(
        violations,
        "meeting.location",
        &meeting.location,
        false,
        200,
    );
    let mut delegation_ids: Vec<String> = Vec::with_capacity(meeting.delegations.len());
    if meeting.delegations.is_empty() {
        violations.add("meeting.delegations", "needs at least one delegation");
    } else if meeting.delegations.len() > MAX_DELEGATIONS {
        violations.add(
            "meeting.delegations",
            format!("at most {MAX_DELEGATIONS} delegations"),
        );
    }
    for (i, name) in meeting.delegations.iter().enumerate() {
        let field = format!("meeting.delegations[{i}]");
        match names::parse_child(name, "elections", "delegations") {
            Ok((election, _)) if election != election_id => {
                violations.add(field, "must be a delegation of the meeting's election");
            }
            Ok((_, id)) if delegation_ids.iter().any(|d| d == id) => {
                violations.add(field, "is listed twice");
            }
            Ok((_, id)) => delegation_ids.push(id.to_owned()),
            Err(e) => violations.add(field, e),
        }
    }
    if meeting.topics.len() > MAX_TOPICS {
        violations.add("meeting.topics", format!("at most {MAX_TOPICS} topics"));
    }
    for (i, topic) in meeting.topics.iter().enumerate() {
        check_text(
            violations,
            &format!("meeting.topics[{i}]"),
            topic,
            true,
            500,
        );
    }
    let time = |violations: &mut Violations,
                field: &str,
                value: &Option<prost_types::Timestamp>| match value {
        Some(value) => violations.check(field, from_timestamp(value)),
        None => {
            violations.add(field, "is required");
            None
        }
    };
    let start_time = time(violations, "meeting.start_time", &meeting.start_time);
    let end_time = time(violations, "meeting.end_time", &meeting.end_time);
    if let (Some(start), Some(end)) = (start_time, end_time)
        && end <= start
    {
        violations.add("meeting.end_time", "must be after start_time");
    }
    if !violations.is_empty() {
        return None;
    }
    Some(MeetingFields {
        title: meeting.title.trim().to_owned(),
        host: meeting.host.trim().to_owned(),
        delegation_ids,
        start_time: start_time?,
        end_time: end_time?,
        location: meeting.location.trim().to_owned(),
        topics: meeting.topics.iter().map(|t| t.trim().to_owned()).collect(),
    })
}

pub(crate) fn to_proto(meeting: &Meeting) -> pb::Meeting {
    pb::Meeting {
        name: meeting.name(),
        title: meeting.fields.title.clone(),
        host: meeting.fields.host.clone(),
        delegations: meeting
            .fields
            .delegation_ids
            .iter()
            .map(|d| delegation_name(&meeting.election_id, d))
            .collect(),
        start_time: Some(to_timestamp(meeting.fields.start_time)),
        end_time: Some(to_timestamp(meeting.fields.end_time)),
        location: meeting.fields.location.clone(),
        topics: meeting.fields.topics.clone(),
        state: pb::MeetingState::from_str_name(meeting.state.as_str())
            .unwrap_or(pb::MeetingState::Unspecified)
            .into(),
        outcome: meeting.outcome.clone(),
        cancel_reason: meeting.cancel_reason.clone(),
        create_time: Some(to_timestamp(meeting.create_time)),
        update_time: Some(to_timestamp(meeting.update_time)),
        etag: etag::format(meeting.etag),
        delete_time: meeting.delete_time.map(to_timestamp),
    }
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
        Ok(Response::new(
            self.set_deleted(&caller, &request.name, &request.etag, true)
                .await?,
        ))
    }

    async fn undelete_meeting(
        &self,
        request: Request<pb::UndeleteMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.set_deleted(&caller, &request.name, &request.etag, false)
                .await?,
        ))
    }

    async fn complete_meeting(
        &self,
        request: Request<pb::CompleteMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.conclude(
                &caller,
                &request.name,
                &request.etag,
                MeetingState::Held,
                &request.outcome,
            )
            .await?,
        ))
    }

    async fn cancel_meeting(
        &self,
        request: Request<pb::CancelMeetingRequest>,
    ) -> Result<Response<pb::Meeting>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        Ok(Response::new(
            self.conclude(
                &caller,
                &request.name,
                &request.etag,
                MeetingState::Cancelled,
                &request.reason,
            )
            .await?,
        ))
    }

    type WatchMeetingsStream = tonic::codegen::BoxStream<pb::MeetingEvent>;

    async fn watch_meetings(
        &self,
        request: Request<pb::WatchMeetingsRequest>,
    ) -> Result<Response<Self::WatchMeetingsStream>, Status> {
        let request = request.into_inner();
        let election_id = crate::api::parse_parent(&request.parent)?;
        let make_event: crate::api::watch::MakeEvent<pb::MeetingEvent> =
            Box::new(|meta, row, resume_token| {
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
                store::meetings::FEED,
                election_id,
                &request.resume_token,
                make_event,
            )
            .await?;
        Ok(Response::new(Box::pin(stream)))
    }
}
