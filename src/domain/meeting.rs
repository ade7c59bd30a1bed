//! Meetings of commission officials with delegations, and the rules that keep them
//! possible: the state machine, times within the delegations' stays, nobody double-booked,
//! and the hold a scheduled meeting has on its delegations.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::delegation::{Delegation, Stay, delegation_name};
use super::refusal::{Refusal, Rule};
use super::text::{self, TextKind};

/// An agenda topic: a one-line label, but an empty one says nothing.
pub const TOPIC: TextKind = TextKind {
    required: true,
    ..text::LABEL
};

/// What a held meeting came to: free text like a note, but required, since it is the record
/// of the meeting.
pub const OUTCOME: TextKind = TextKind {
    required: true,
    ..text::NOTE
};

/// Where a meeting stands: `SCHEDULED → HELD | CANCELLED`, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingState {
    Scheduled,
    Held,
    Cancelled,
}

impl MeetingState {
    /// The stored (and filter) names, in the order of [`MeetingState::ALL`].
    pub const NAMES: &[&str] = &["SCHEDULED", "HELD", "CANCELLED"];
    pub const ALL: [MeetingState; 3] = [
        MeetingState::Scheduled,
        MeetingState::Held,
        MeetingState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MeetingState::Scheduled => "SCHEDULED",
            MeetingState::Held => "HELD",
            MeetingState::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// The fields of a meeting a caller sets, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingFields {
    pub title: String,
    pub host: String,
    /// Delegation ids, in the caller's order, without repeats.
    pub delegation_ids: Vec<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub location: String,
    pub topics: Vec<String>,
}

/// A stored meeting.
#[derive(Debug, Clone, PartialEq)]
pub struct Meeting {
    pub election_id: String,
    pub id: String,
    pub fields: MeetingFields,
    pub state: MeetingState,
    pub outcome: String,
    pub cancel_reason: String,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: Uuid,
    pub delete_time: Option<DateTime<Utc>>,
}

impl Meeting {
    pub fn name(&self) -> String {
        meeting_name(&self.election_id, &self.id)
    }

    /// Whether it keeps its host and delegations from other meetings at its time: a
    /// cancelled or deleted meeting frees them, a held one is history that stays.
    pub fn holds_slot(&self) -> bool {
        self.state != MeetingState::Cancelled && self.delete_time.is_none()
    }
}

pub fn meeting_name(election_id: &str, id: &str) -> String {
    format!("elections/{election_id}/meetings/{id}")
}

/// A meeting ends after it starts (an empty meeting is not a meeting).
pub fn ends_after_start(start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    end > start
}

// ---- the state machine ----

/// What ends a scheduled meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conclude {
    /// CompleteMeeting: it took place and came to `outcome`.
    Complete { outcome: String },
    /// CancelMeeting: it will not take place, for `reason`.
    Cancel { reason: String },
}

impl Conclude {
    /// The state the command asks for.
    pub fn target(&self) -> MeetingState {
        match self {
            Conclude::Complete { .. } => MeetingState::Held,
            Conclude::Cancel { .. } => MeetingState::Cancelled,
        }
    }
}

/// A meeting's new state and the text recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conclusion {
    pub state: MeetingState,
    pub outcome: String,
    pub cancel_reason: String,
}

/// Decides `command` for `meeting` at `now`: only a SCHEDULED meeting is held (once it has
/// started) or cancelled (at any time); anything else is INVALID_STATE_TRANSITION.
pub fn conclude(
    meeting: &Meeting,
    command: Conclude,
    now: DateTime<Utc>,
) -> Result<Conclusion, Refusal> {
    let refuse = |message: String| {
        Refusal::new(Rule::InvalidStateTransition, message)
            .metadata("state", meeting.state.as_str())
    };
    let target = command.target();
    if meeting.state != MeetingState::Scheduled {
        return Err(refuse(format!(
            "{} is {}; only a SCHEDULED meeting can become {}",
            meeting.name(),
            meeting.state.as_str(),
            target.as_str()
        )));
    }
    match command {
        Conclude::Complete { .. } if now < meeting.fields.start_time => Err(refuse(format!(
            "{} has not started yet: it starts at {}",
            meeting.name(),
            meeting.fields.start_time.to_rfc3339()
        ))),
        Conclude::Complete { outcome } => Ok(Conclusion {
            state: target,
            outcome,
            cancel_reason: String::new(),
        }),
        Conclude::Cancel { reason } => Ok(Conclusion {
            state: target,
            outcome: String::new(),
            cancel_reason: reason,
        }),
    }
}

// ---- the schedule ----

/// Which change of a meeting the schedule is checked for.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    Create,
    /// An update of this meeting, as it is now.
    Update(&'a Meeting),
    /// Bringing this deleted meeting back.
    Undelete(&'a Meeting),
}

impl Change<'_> {
    /// The state the meeting has after the change.
    fn state(self) -> MeetingState {
        match self {
            Change::Create => MeetingState::Scheduled,
            Change::Update(current) | Change::Undelete(current) => current.state,
        }
    }
}

/// What the schedule rules look at, as the store found it.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleFacts<'a> {
    pub election_id: &'a str,
    /// The meeting being checked (it does not conflict with itself).
    pub meeting_id: &'a str,
    /// The delegations the meeting names that exist, deleted ones included.
    pub delegations: &'a [Delegation],
    /// Other meetings at an overlapping time that share the host or a delegation; those
    /// that hold no slot are ignored here.
    pub neighbours: &'a [Meeting],
}

/// The delegations exist and are live, they stay long enough, and nobody is double-booked
/// — as far as `change` needs: a cancelled meeting holds no slot, a held one is history,
/// and delegations a meeting already had are not re-examined on edits.
pub fn check_schedule(
    fields: &MeetingFields,
    change: Change<'_>,
    facts: &ScheduleFacts<'_>,
) -> Result<(), Refusal> {
    let state = change.state();
    for (index, delegation_id) in fields.delegation_ids.iter().enumerate() {
        let live = facts
            .delegations
            .iter()
            .find(|d| d.id == *delegation_id && d.delete_time.is_none());
        let Some(delegation) = live else {
            check_missing_delegation(facts.election_id, index, delegation_id, change)?;
            continue;
        };
        let stay = delegation.fields.stay();
        if state == MeetingState::Scheduled && !stay.covers(fields.start_time, fields.end_time) {
            return Err(Refusal::new(
                Rule::OutsideDelegationStay,
                format!(
                    "the meeting is outside the stay of {} ({stay})",
                    delegation.name()
                ),
            )
            .metadata("delegation", delegation.name()));
        }
    }
    if state == MeetingState::Cancelled {
        return Ok(());
    }
    match find_conflict(facts.meeting_id, fields, facts.neighbours) {
        Some(conflict) => Err(conflict.refusal(facts.election_id)),
        None => Ok(()),
    }
}

/// A delegation the meeting names is gone (deleted or never there): fine when it was
/// already the meeting's, or the meeting is history; otherwise refused.
fn check_missing_delegation(
    election_id: &str,
    index: usize,
    delegation_id: &str,
    change: Change<'_>,
) -> Result<(), Refusal> {
    let name = delegation_name(election_id, delegation_id);
    match change {
        Change::Update(current)
            if current
                .fields
                .delegation_ids
                .iter()
                .any(|d| d == delegation_id) =>
        {
            Ok(())
        }
        Change::Undelete(current) if current.state != MeetingState::Scheduled => Ok(()),
        Change::Undelete(_) => Err(Refusal::new(
            Rule::DelegationDeleted,
            format!("{name} was deleted: undelete it or change the meeting's delegations"),
        )
        .metadata("delegation", name)),
        Change::Create | Change::Update(_) => {
            let field = format!("meeting.delegations[{index}]");
            let why = format!("{name} does not exist or is deleted");
            Err(Refusal::new(Rule::InvalidArgument, format!("{field}: {why}")).field(field, why))
        }
    }
}

/// Who would be in two places at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clash {
    Host,
    /// The id of a delegation.
    Delegation(String),
}

/// Another meeting that holds the slot someone of this one needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub meeting_id: String,
    pub clash: Clash,
}

impl Conflict {
    /// MEETING_CONFLICT naming the other meeting (`conflicting_meeting`) and who clashes.
    pub fn refusal(&self, election_id: &str) -> Refusal {
        let other = meeting_name(election_id, &self.meeting_id);
        let who = match &self.clash {
            Clash::Host => "the host".to_owned(),
            Clash::Delegation(id) => delegation_name(election_id, id),
        };
        Refusal::new(
            Rule::MeetingConflict,
            format!("{who} is already in {other} at that time"),
        )
        .metadata("conflicting_meeting", other)
        .metadata("conflict", who)
    }
}

/// Hosts are the same person whatever the case and surrounding blanks (as `host_key` in
/// PostgreSQL).
pub fn same_host(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// Half-open ranges, so that back-to-back meetings do not overlap.
fn overlaps(fields: &MeetingFields, other: &MeetingFields) -> bool {
    fields.start_time < other.end_time && other.start_time < fields.end_time
}

/// The first meeting among `neighbours` (other than `meeting_id`) holding a slot that the
/// host or a delegation of `fields` needs; a host conflict is named first.
pub fn find_conflict(
    meeting_id: &str,
    fields: &MeetingFields,
    neighbours: &[Meeting],
) -> Option<Conflict> {
    let mut rivals = neighbours
        .iter()
        .filter(|other| other.id != meeting_id && other.holds_slot())
        .filter(|other| overlaps(fields, &other.fields));
    if let Some(other) = rivals
        .clone()
        .find(|other| same_host(&other.fields.host, &fields.host))
    {
        return Some(Conflict {
            meeting_id: other.id.clone(),
            clash: Clash::Host,
        });
    }
    rivals.find_map(|other| {
        let shared = fields
            .delegation_ids
            .iter()
            .find(|d| other.fields.delegation_ids.contains(d))?;
        Some(Conflict {
            meeting_id: other.id.clone(),
            clash: Clash::Delegation(shared.clone()),
        })
    })
}

// ---- what a scheduled meeting asks of its delegations ----

/// A delegation's stay may not shrink away from a scheduled meeting it attends.
pub fn check_stay_keeps_meetings(stay: Stay, scheduled: &[Meeting]) -> Result<(), Refusal> {
    let Some(meeting) = scheduled
        .iter()
        .find(|m| !stay.covers(m.fields.start_time, m.fields.end_time))
    else {
        return Ok(());
    };
    Err(Refusal::new(
        Rule::OutsideDelegationStay,
        format!(
            "{} is scheduled outside the new stay; move or cancel it first",
            meeting.name()
        ),
    )
    .metadata("meeting", meeting.name()))
}

/// Decision (README): a delegation expected at a scheduled meeting is not deleted behind
/// the protocol office's back; the meeting is cancelled or changed first.
pub fn check_delegation_deletable(
    delegation_name: &str,
    scheduled: &[Meeting],
) -> Result<(), Refusal> {
    let Some(meeting) = scheduled.first() else {
        return Ok(());
    };
    Err(Refusal::new(
        Rule::HasChildren,
        format!(
            "{delegation_name} is expected at the scheduled {}; cancel or change it first",
            meeting.name()
        ),
    )
    .metadata("meeting", meeting.name()))
}

#[cfg(test)]
mod tests;
