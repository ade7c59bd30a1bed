//! The meeting rules, without a database.

use chrono::NaiveDate;

use super::*;
use crate::domain::delegation::DelegationFields;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Meeting `id` of `host` with `delegations`, scheduled from `start` to `end` (hours of
/// 2023-03-17, UTC).
fn meeting(id: &str, host: &str, delegations: &[&str], start: u32, end: u32) -> Meeting {
    let hour = |h: u32| at(&format!("2023-03-17T{h:02}:00:00Z"));
    Meeting {
        election_id: "kz".into(),
        id: id.into(),
        fields: MeetingFields {
            title: "Meeting with the observers".into(),
            host: host.into(),
            delegation_ids: delegations.iter().map(|d| d.to_string()).collect(),
            start_time: hour(start),
            end_time: hour(end),
            location: String::new(),
            topics: vec![],
        },
        state: MeetingState::Scheduled,
        outcome: String::new(),
        cancel_reason: String::new(),
        create_time: at("2023-03-01T00:00:00Z"),
        update_time: at("2023-03-01T00:00:00Z"),
        etag: Uuid::nil(),
        delete_time: None,
    }
}

fn delegation(id: &str, arrival: &str, departure: &str) -> Delegation {
    Delegation {
        election_id: "kz".into(),
        id: id.into(),
        fields: DelegationFields {
            display_name: id.to_uppercase(),
            organization_id: id.into(),
            head_observer_id: None,
            arrival_date: day(arrival),
            departure_date: day(departure),
            notes: String::new(),
        },
        member_count: 0,
        create_time: at("2023-03-01T00:00:00Z"),
        update_time: at("2023-03-01T00:00:00Z"),
        etag: Uuid::nil(),
        delete_time: None,
    }
}

fn facts<'a>(delegations: &'a [Delegation], neighbours: &'a [Meeting]) -> ScheduleFacts<'a> {
    ScheduleFacts {
        election_id: "kz",
        meeting_id: "m",
        delegations,
        neighbours,
    }
}

/// The refusal's `ErrorInfo.metadata` value under `key`.
fn meta<'a>(refusal: &'a Refusal, key: &str) -> Option<&'a str> {
    refusal
        .metadata
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
}

fn complete(outcome: &str) -> Conclude {
    Conclude::Complete {
        outcome: outcome.into(),
    }
}

fn cancel(reason: &str) -> Conclude {
    Conclude::Cancel {
        reason: reason.into(),
    }
}

// ---- states ----

#[test]
fn state_names_round_trip_in_the_order_of_the_filter_names() {
    let names: Vec<_> = MeetingState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, MeetingState::NAMES);
    for state in MeetingState::ALL {
        assert_eq!(MeetingState::parse(state.as_str()), Some(state));
    }
    assert_eq!(MeetingState::parse("held"), None);
}

#[test]
fn a_scheduled_meeting_is_held_once_it_has_started() {
    let m = meeting("m", "Chairman", &["sco"], 10, 12);
    let early = conclude(&m, complete("Noted"), at("2023-03-17T09:59:59Z")).unwrap_err();
    assert_eq!(early.rule, Rule::InvalidStateTransition);
    assert!(early.message.contains("has not started yet"), "{early:?}");

    let held = conclude(&m, complete("Noted"), at("2023-03-17T10:00:00Z")).unwrap();
    assert_eq!(
        held,
        Conclusion {
            state: MeetingState::Held,
            outcome: "Noted".into(),
            cancel_reason: String::new()
        }
    );
}

#[test]
fn a_scheduled_meeting_is_cancelled_at_any_time() {
    let m = meeting("m", "Chairman", &["sco"], 10, 12);
    for now in ["2023-03-16T00:00:00Z", "2023-03-18T00:00:00Z"] {
        let cancelled = conclude(&m, cancel("Flight delayed"), at(now)).unwrap();
        assert_eq!(cancelled.state, MeetingState::Cancelled);
        assert_eq!(cancelled.cancel_reason, "Flight delayed");
        assert_eq!(cancelled.outcome, "");
    }
}

#[test]
fn a_held_or_cancelled_meeting_is_final() {
    for state in [MeetingState::Held, MeetingState::Cancelled] {
        let m = Meeting {
            state,
            ..meeting("m", "Chairman", &["sco"], 10, 12)
        };
        for command in [complete("Again"), cancel("Again")] {
            let refusal = conclude(&m, command, at("2023-03-18T00:00:00Z")).unwrap_err();
            assert_eq!(refusal.rule, Rule::InvalidStateTransition);
            assert_eq!(
                refusal.metadata,
                [("state", state.as_str().to_owned())],
                "{refusal:?}"
            );
        }
    }
}

// ---- times and stays ----

#[test]
fn a_meeting_ends_after_it_starts() {
    let start = at("2023-03-17T10:00:00Z");
    assert!(ends_after_start(start, at("2023-03-17T10:00:01Z")));
    assert!(!ends_after_start(start, start));
    assert!(!ends_after_start(start, at("2023-03-17T09:00:00Z")));
}

#[test]
fn a_scheduled_meeting_lies_within_every_delegations_stay() {
    let m = meeting("m", "Chairman", &["sco", "cis"], 10, 12);
    let delegations = [
        delegation("sco", "2023-03-15", "2023-03-21"),
        delegation("cis", "2023-03-18", ""),
    ];
    let refusal = check_schedule(&m.fields, Change::Create, &facts(&delegations, &[])).unwrap_err();
    assert_eq!(refusal.rule, Rule::OutsideDelegationStay);
    assert_eq!(
        refusal.metadata,
        [("delegation", "elections/kz/delegations/cis".to_owned())]
    );
    assert!(refusal.message.contains("2023-03-18 to ?"), "{refusal:?}");

    let fits = [
        delegation("sco", "2023-03-15", "2023-03-21"),
        delegation("cis", "", "2023-03-17"),
    ];
    assert!(check_schedule(&m.fields, Change::Create, &facts(&fits, &[])).is_ok());
}

#[test]
fn a_meeting_that_is_history_is_not_held_to_stays() {
    let held = Meeting {
        state: MeetingState::Held,
        ..meeting("m", "Chairman", &["sco"], 10, 12)
    };
    let delegations = [delegation("sco", "2023-03-20", "2023-03-21")];
    assert!(
        check_schedule(
            &held.fields,
            Change::Update(&held),
            &facts(&delegations, &[])
        )
        .is_ok()
    );
}

#[test]
fn a_new_or_added_delegation_must_exist_and_be_live() {
    let m = meeting("m", "Chairman", &["sco", "gone"], 10, 12);
    let mut deleted = delegation("gone", "", "");
    deleted.delete_time = Some(at("2023-03-02T00:00:00Z"));
    for delegations in [
        vec![delegation("sco", "", "")],
        vec![delegation("sco", "", ""), deleted],
    ] {
        let refusal =
            check_schedule(&m.fields, Change::Create, &facts(&delegations, &[])).unwrap_err();
        assert_eq!(refusal.rule, Rule::InvalidArgument);
        assert_eq!(refusal.fields[0].0, "meeting.delegations[1]");
    }
    // An edit does not re-examine the delegations the meeting already had.
    let current = meeting("m", "Chairman", &["gone"], 10, 12);
    let only_sco = [delegation("sco", "", "")];
    assert!(check_schedule(&m.fields, Change::Update(&current), &facts(&only_sco, &[])).is_ok());
}

#[test]
fn a_scheduled_meeting_comes_back_only_with_its_delegations() {
    let m = meeting("m", "Chairman", &["gone"], 10, 12);
    let refusal = check_schedule(&m.fields, Change::Undelete(&m), &facts(&[], &[])).unwrap_err();
    assert_eq!(refusal.rule, Rule::DelegationDeleted);
    assert_eq!(
        refusal.metadata,
        [("delegation", "elections/kz/delegations/gone".to_owned())]
    );
    let cancelled = Meeting {
        state: MeetingState::Cancelled,
        ..m.clone()
    };
    assert!(check_schedule(&m.fields, Change::Undelete(&cancelled), &facts(&[], &[])).is_ok());
}

// ---- conflicts ----

#[test]
fn the_same_host_however_spelled_cannot_be_in_two_overlapping_meetings() {
    let m = meeting("m", "  CHAIRMAN ", &["sco"], 10, 12);
    let other = meeting("other", "chairman", &["cis"], 11, 13);
    let delegations = [delegation("sco", "", "")];
    let refusal = check_schedule(
        &m.fields,
        Change::Create,
        &facts(&delegations, std::slice::from_ref(&other)),
    )
    .unwrap_err();
    assert_eq!(refusal.rule, Rule::MeetingConflict);
    assert_eq!(
        meta(&refusal, "conflicting_meeting"),
        Some("elections/kz/meetings/other")
    );
    assert_eq!(meta(&refusal, "conflict"), Some("the host"));
}

#[test]
fn a_delegation_cannot_be_in_two_overlapping_meetings() {
    let m = meeting("m", "Chairman", &["sco", "cis"], 10, 12);
    let other = meeting("other", "Deputy", &["tj", "cis"], 9, 11);
    let conflict = find_conflict("m", &m.fields, std::slice::from_ref(&other)).unwrap();
    assert_eq!(
        conflict,
        Conflict {
            meeting_id: "other".into(),
            clash: Clash::Delegation("cis".into())
        }
    );
    let refusal = conflict.refusal("kz");
    assert_eq!(
        meta(&refusal, "conflict"),
        Some("elections/kz/delegations/cis")
    );
}

#[test]
fn a_host_conflict_is_named_before_a_delegation_conflict() {
    let m = meeting("m", "Chairman", &["sco"], 10, 12);
    let neighbours = [
        meeting("by-delegation", "Deputy", &["sco"], 10, 12),
        meeting("by-host", "Chairman", &["cis"], 10, 12),
    ];
    let conflict = find_conflict("m", &m.fields, &neighbours).unwrap();
    assert_eq!(conflict.meeting_id, "by-host");
    assert_eq!(conflict.clash, Clash::Host);
}

#[test]
fn back_to_back_cancelled_deleted_and_own_meetings_do_not_conflict() {
    let m = meeting("m", "Chairman", &["sco"], 10, 12);
    let mut cancelled = meeting("cancelled", "Chairman", &["sco"], 10, 12);
    cancelled.state = MeetingState::Cancelled;
    let mut deleted = meeting("deleted", "Chairman", &["sco"], 10, 12);
    deleted.delete_time = Some(at("2023-03-02T00:00:00Z"));
    let neighbours = [
        meeting("before", "Chairman", &["sco"], 8, 10),
        meeting("after", "Chairman", &["sco"], 12, 14),
        meeting("m", "Chairman", &["sco"], 10, 12),
        cancelled,
        deleted,
    ];
    assert_eq!(find_conflict("m", &m.fields, &neighbours), None);
    // A held meeting keeps its slot.
    let mut held = meeting("held", "Chairman", &["cis"], 11, 12);
    held.state = MeetingState::Held;
    assert!(find_conflict("m", &m.fields, std::slice::from_ref(&held)).is_some());
}

#[test]
fn a_cancelled_meeting_is_not_checked_for_conflicts() {
    let mut m = meeting("m", "Chairman", &["sco"], 10, 12);
    m.state = MeetingState::Cancelled;
    let other = meeting("other", "Chairman", &["sco"], 10, 12);
    let delegations = [delegation("sco", "", "")];
    let facts = facts(&delegations, std::slice::from_ref(&other));
    assert!(check_schedule(&m.fields, Change::Update(&m), &facts).is_ok());
}

// ---- what meetings ask of delegations ----

#[test]
fn a_stay_cannot_shrink_away_from_a_scheduled_meeting() {
    let scheduled = [meeting("m", "Chairman", &["sco"], 10, 12)];
    let wide = Stay {
        arrival: day("2023-03-15"),
        departure: day("2023-03-17"),
    };
    assert!(check_stay_keeps_meetings(wide, &scheduled).is_ok());
    let shrunk = Stay {
        arrival: day("2023-03-18"),
        departure: None,
    };
    let refusal = check_stay_keeps_meetings(shrunk, &scheduled).unwrap_err();
    assert_eq!(refusal.rule, Rule::OutsideDelegationStay);
    assert_eq!(meta(&refusal, "meeting"), Some("elections/kz/meetings/m"));
}

#[test]
fn a_delegation_expected_at_a_scheduled_meeting_is_not_deleted() {
    let name = "elections/kz/delegations/sco";
    assert!(check_delegation_deletable(name, &[]).is_ok());
    let scheduled = [meeting("m", "Chairman", &["sco"], 10, 12)];
    let refusal = check_delegation_deletable(name, &scheduled).unwrap_err();
    assert_eq!(refusal.rule, Rule::HasChildren);
    assert_eq!(meta(&refusal, "meeting"), Some("elections/kz/meetings/m"));
}

#[test]
fn topics_and_outcomes_are_required_text() {
    assert!(TOPIC.parse("  ").is_err());
    assert!(OUTCOME.parse("").is_err());
    assert_eq!(OUTCOME.parse(" first\nsecond ").unwrap(), "first\nsecond");
    assert!(TOPIC.parse("first\nsecond").is_err());
}
