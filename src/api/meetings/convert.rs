//! Meetings between the contract and the domain: requests parsed into validated fields
//! (every bad field named at once), update masks as fields, and meetings encoded back.

use chrono::{DateTime, Utc};

use crate::aip::etag;
use crate::aip::field_mask::UpdatableField;
use crate::api::skeleton::{Resource, SoftDeletable};
use crate::api::{from_timestamp, to_timestamp};
use crate::domain::delegation::delegation_name;
use crate::domain::meeting::{
    self, Conclude, Meeting, MeetingFields, MeetingState, OUTCOME, TOPIC,
};
use crate::domain::names;
use crate::domain::text::{LABEL, NAME, REASON};
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;

const MAX_DELEGATIONS: usize = 100;
const MAX_TOPICS: usize = 50;

/// Fields an update may not name: the server sets them, or they name the resource.
pub const OUTPUT_ONLY: &[&str] = &[
    "name",
    "state",
    "outcome",
    "cancel_reason",
    "create_time",
    "update_time",
    "etag",
    "delete_time",
];

/// The fields of a meeting an update may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingField {
    Title,
    Host,
    Delegations,
    StartTime,
    EndTime,
    Location,
    Topics,
}

impl UpdatableField for MeetingField {
    const ALL: &'static [Self] = &[
        MeetingField::Title,
        MeetingField::Host,
        MeetingField::Delegations,
        MeetingField::StartTime,
        MeetingField::EndTime,
        MeetingField::Location,
        MeetingField::Topics,
    ];

    fn path(self) -> &'static str {
        match self {
            MeetingField::Title => "title",
            MeetingField::Host => "host",
            MeetingField::Delegations => "delegations",
            MeetingField::StartTime => "start_time",
            MeetingField::EndTime => "end_time",
            MeetingField::Location => "location",
            MeetingField::Topics => "topics",
        }
    }
}

impl MeetingField {
    /// Copies this field from `changes` into `merged`.
    pub fn apply(self, merged: &mut pb::Meeting, changes: &pb::Meeting) {
        match self {
            MeetingField::Title => merged.title.clone_from(&changes.title),
            MeetingField::Host => merged.host.clone_from(&changes.host),
            MeetingField::Delegations => merged.delegations.clone_from(&changes.delegations),
            MeetingField::StartTime => merged.start_time = changes.start_time,
            MeetingField::EndTime => merged.end_time = changes.end_time,
            MeetingField::Location => merged.location.clone_from(&changes.location),
            MeetingField::Topics => merged.topics.clone_from(&changes.topics),
        }
    }
}

impl Resource for pb::Meeting {
    const MESSAGE: &'static str = "Meeting";
    fn name(&self) -> &str {
        &self.name
    }
}

impl SoftDeletable for Meeting {
    fn delete_time(&self) -> Option<DateTime<Utc>> {
        self.delete_time
    }
    fn etag(&self) -> uuid::Uuid {
        self.etag
    }
}

/// `elections/{election}/meetings/{meeting}` as its two ids; INVALID_ARGUMENT on `field`.
pub fn parse_name<'a>(name: &'a str, field: &str) -> Result<(&'a str, &'a str)> {
    names::parse_child(name, "elections", "meetings").map_err(|e| Error::invalid(field, e))
}

/// CompleteMeeting's outcome or CancelMeeting's reason, as the state machine takes it.
pub fn parse_conclude(next: MeetingState, text: &str) -> Result<Conclude> {
    let mut violations = Violations::new();
    let command = match next {
        MeetingState::Cancelled => violations
            .check("reason", REASON.parse(text))
            .map(|reason| Conclude::Cancel { reason }),
        MeetingState::Held | MeetingState::Scheduled => violations
            .check("outcome", OUTCOME.parse(text))
            .map(|outcome| Conclude::Complete { outcome }),
    };
    violations.finish()?;
    command.ok_or_else(|| Error::internal(anyhow::anyhow!("validation passed without values")))
}

/// The caller-set fields of a meeting in `election_id`, recording every bad one.
pub fn parse_fields(
    meeting: &pb::Meeting,
    election_id: &str,
    violations: &mut Violations,
) -> Option<MeetingFields> {
    let title = violations.check("meeting.title", NAME.parse(&meeting.title));
    let host = violations.check("meeting.host", NAME.parse(&meeting.host));
    let location = violations.check("meeting.location", LABEL.parse(&meeting.location));
    let delegation_ids = parse_delegations(&meeting.delegations, election_id, violations);
    let topics = parse_topics(&meeting.topics, violations);
    let start_time = parse_time(
        violations,
        "meeting.start_time",
        meeting.start_time.as_ref(),
    );
    let end_time = parse_time(violations, "meeting.end_time", meeting.end_time.as_ref());
    if let (Some(start), Some(end)) = (start_time, end_time)
        && !meeting::ends_after_start(start, end)
    {
        violations.add("meeting.end_time", "must be after start_time");
    }
    if !violations.is_empty() {
        return None;
    }
    Some(MeetingFields {
        title: title?,
        host: host?,
        delegation_ids,
        start_time: start_time?,
        end_time: end_time?,
        location: location?,
        topics,
    })
}

/// The meeting's fields with the masked ones taken from `changes`, parsed again as a whole
/// (an update must leave a valid meeting behind).
pub fn merge(
    current: &Meeting,
    changes: &pb::Meeting,
    masked: &[MeetingField],
    election_id: &str,
) -> Result<MeetingFields> {
    let mut merged = to_proto(current);
    for field in masked {
        field.apply(&mut merged, changes);
    }
    let mut violations = Violations::new();
    let fields = parse_fields(&merged, election_id, &mut violations);
    violations.finish()?;
    fields.ok_or_else(|| Error::internal(anyhow::anyhow!("validation passed without values")))
}

/// Delegation names as ids: at least one, of the meeting's election, none twice.
fn parse_delegations(
    names_given: &[String],
    election_id: &str,
    violations: &mut Violations,
) -> Vec<String> {
    if names_given.is_empty() {
        violations.add("meeting.delegations", "needs at least one delegation");
    } else if names_given.len() > MAX_DELEGATIONS {
        violations.add(
            "meeting.delegations",
            format!("at most {MAX_DELEGATIONS} delegations"),
        );
    }
    let mut ids: Vec<String> = Vec::with_capacity(names_given.len());
    for (i, name) in names_given.iter().enumerate() {
        let field = format!("meeting.delegations[{i}]");
        match names::parse_child(name, "elections", "delegations") {
            Ok((election, _)) if election != election_id => {
                violations.add(field, "must be a delegation of the meeting's election");
            }
            Ok((_, id)) if ids.iter().any(|d| d == id) => violations.add(field, "is listed twice"),
            Ok((_, id)) => ids.push(id.to_owned()),
            Err(e) => violations.add(field, e),
        }
    }
    ids
}

fn parse_topics(topics: &[String], violations: &mut Violations) -> Vec<String> {
    if topics.len() > MAX_TOPICS {
        violations.add("meeting.topics", format!("at most {MAX_TOPICS} topics"));
    }
    topics
        .iter()
        .enumerate()
        .filter_map(|(i, topic)| {
            violations.check(&format!("meeting.topics[{i}]"), TOPIC.parse(topic))
        })
        .collect()
}

fn parse_time(
    violations: &mut Violations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Option<DateTime<Utc>> {
    match value {
        Some(value) => violations.check(field, from_timestamp(value)),
        None => {
            violations.add(field, "is required");
            None
        }
    }
}

pub fn state_to_proto(state: MeetingState) -> pb::MeetingState {
    match state {
        MeetingState::Scheduled => pb::MeetingState::Scheduled,
        MeetingState::Held => pb::MeetingState::Held,
        MeetingState::Cancelled => pb::MeetingState::Cancelled,
    }
}

pub fn to_proto(meeting: &Meeting) -> pb::Meeting {
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
        state: state_to_proto(meeting.state).into(),
        outcome: meeting.outcome.clone(),
        cancel_reason: meeting.cancel_reason.clone(),
        create_time: Some(to_timestamp(meeting.create_time)),
        update_time: Some(to_timestamp(meeting.update_time)),
        etag: etag::format(meeting.etag),
        delete_time: meeting.delete_time.map(to_timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aip::field_mask::resolve_fields;

    fn valid() -> pb::Meeting {
        let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        pb::Meeting {
            title: "Meeting with the observers".into(),
            host: "Chairman".into(),
            delegations: vec!["elections/kz/delegations/sco".into()],
            start_time: at(1_679_047_200),
            end_time: at(1_679_054_400),
            ..Default::default()
        }
    }

    fn refused_fields(meeting: &pb::Meeting) -> Vec<String> {
        let mut violations = Violations::new();
        assert!(parse_fields(meeting, "kz", &mut violations).is_none());
        violations
            .finish()
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn an_empty_mask_updates_every_field_of_the_contract() {
        let all: Vec<MeetingField> = resolve_fields(None, OUTPUT_ONLY).unwrap();
        let paths: Vec<_> = all.iter().map(|f| f.path()).collect();
        assert_eq!(
            paths,
            [
                "title",
                "host",
                "delegations",
                "start_time",
                "end_time",
                "location",
                "topics"
            ]
        );
        let mask = prost_types::FieldMask {
            paths: vec!["startTime".into(), "state".into()],
        };
        assert!(resolve_fields::<MeetingField>(Some(&mask), OUTPUT_ONLY).is_err());
    }

    #[test]
    fn every_state_has_its_contract_value() {
        for state in MeetingState::ALL {
            assert_eq!(state_to_proto(state).as_str_name(), state.as_str());
        }
    }

    #[test]
    fn text_fields_are_normalized_and_control_characters_refused() {
        let mut violations = Violations::new();
        let fields = parse_fields(
            &pb::Meeting {
                title: "  Jose\u{301} ".into(),
                topics: vec![" agenda ".into()],
                ..valid()
            },
            "kz",
            &mut violations,
        )
        .unwrap();
        assert_eq!(fields.title, "Jos\u{e9}");
        assert_eq!(fields.topics, ["agenda"]);

        for title in ["Meeting\0", "Meeting\u{7}"] {
            let bad = pb::Meeting {
                title: title.into(),
                ..valid()
            };
            assert_eq!(refused_fields(&bad), ["meeting.title"]);
        }
        let bad = pb::Meeting {
            host: "Chair\u{202E}man".into(),
            location: "Hall\n2".into(),
            topics: vec!["ok".into(), "".into()],
            ..valid()
        };
        assert_eq!(
            refused_fields(&bad),
            ["meeting.host", "meeting.location", "meeting.topics[1]"]
        );
    }

    #[test]
    fn outcomes_and_reasons_are_required_text() {
        assert_eq!(
            parse_conclude(MeetingState::Held, " Noted ").unwrap(),
            Conclude::Complete {
                outcome: "Noted".into()
            }
        );
        let error = parse_conclude(MeetingState::Cancelled, "  ").unwrap_err();
        assert_eq!(error.violations[0].field, "reason");
        let error = parse_conclude(MeetingState::Held, "Noted\0").unwrap_err();
        assert_eq!(error.violations[0].field, "outcome");
    }
}
