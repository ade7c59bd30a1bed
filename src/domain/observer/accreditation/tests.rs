//! The accreditation state machine and decisions, without a database.

use super::*;
use AccreditationState::*;

fn terms(closes_at: &str) -> ElectionTerms {
    ElectionTerms {
        host_country: CountryCode::parse("KZ").unwrap(),
        voting_year: 2023,
        closes_at: closes_at.parse().unwrap(),
        decision_required: false,
    }
}

fn accredit(next_sequence: i32) -> Command {
    Command::Accredit {
        next_sequence,
        decision: String::new(),
    }
}

fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

fn in_state(state: AccreditationState) -> Accreditation {
    Accreditation {
        state,
        number: matches!(state, Accredited | Revoked).then(|| "KZ-2023-000007".to_owned()),
        decide_time: None,
        reason: String::new(),
        decision: String::new(),
    }
}

#[test]
fn only_the_contracts_transitions_are_allowed() {
    let all = [Pending, Accredited, Rejected, Revoked];
    let allowed: Vec<_> = all
        .iter()
        .flat_map(|from| all.iter().map(move |to| (*from, *to)))
        .filter(|(from, to)| can_become(*from, *to))
        .collect();
    assert_eq!(
        allowed,
        vec![
            (Pending, Accredited),
            (Pending, Rejected),
            (Accredited, Revoked)
        ]
    );
}

#[test]
fn accrediting_issues_the_next_number_and_records_the_time() {
    let now = at("2023-03-10T09:00:00Z");
    let decided = decide(
        "o",
        &in_state(Pending),
        accredit(793),
        &terms("2023-03-19T00:00:00Z"),
        now,
    )
    .unwrap();
    assert_eq!(decided.state, Accredited);
    assert_eq!(decided.number.as_deref(), Some("KZ-2023-000793"));
    assert_eq!(decided.decide_time, Some(now));
}

#[test]
fn accrediting_after_the_deadline_is_refused() {
    let refusal = decide(
        "o",
        &in_state(Pending),
        accredit(1),
        &terms("2023-03-19T00:00:00Z"),
        at("2023-03-19T00:00:01Z"),
    )
    .unwrap_err();
    assert_eq!(refusal.rule, Rule::AccreditationClosed);
}

#[test]
fn a_revoked_observer_keeps_its_number_and_the_reason() {
    let decided = decide(
        "o",
        &in_state(Accredited),
        Command::Revoke {
            reason: "left the mission".to_owned(),
            decision: "Resolution No. 25/400".to_owned(),
        },
        &terms("2023-03-19T00:00:00Z"),
        at("2023-04-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(decided.state, Revoked);
    assert_eq!(decided.number.as_deref(), Some("KZ-2023-000007"));
    assert_eq!(decided.reason, "left the mission");
    assert_eq!(decided.decision, "Resolution No. 25/400");
}

#[test]
fn an_election_that_requires_decisions_refuses_one_without_naming_decision() {
    let required = ElectionTerms {
        decision_required: true,
        ..terms("2100-01-01T00:00:00Z")
    };
    let commands = [
        accredit(1),
        Command::Reject {
            reason: "r".to_owned(),
            decision: "  ".to_owned(),
        },
    ];
    for command in commands {
        let refusal = decide(
            "o",
            &in_state(Pending),
            command,
            &required,
            at("2023-01-01T00:00:00Z"),
        )
        .unwrap_err();
        assert_eq!(refusal.rule, Rule::InvalidArgument);
        assert_eq!(refusal.fields[0].0, "decision");
    }
    let with_decision = Command::Accredit {
        next_sequence: 1,
        decision: "Resolution No. 25/312 of 2023-03-14".to_owned(),
    };
    let decided = decide(
        "o",
        &in_state(Pending),
        with_decision,
        &required,
        at("2023-01-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(decided.decision, "Resolution No. 25/312 of 2023-03-14");
    // Without the requirement, a decision is optional.
    assert!(check_decision(&terms("2100-01-01T00:00:00Z"), "").is_ok());
}

#[test]
fn a_batch_is_numbered_in_the_order_given() {
    let pending = in_state(Pending);
    let entries: Vec<_> = ["b", "a", "c"]
        .iter()
        .map(|name| BatchEntry {
            at: "names[i]",
            name,
            current: Some(&pending),
        })
        .collect();
    let decided = accredit_all(
        &entries,
        "Resolution 7",
        41,
        &terms("2100-01-01T00:00:00Z"),
        at("2023-01-01T00:00:00Z"),
    )
    .unwrap();
    let numbers: Vec<_> = decided.iter().map(|a| a.number.clone().unwrap()).collect();
    assert_eq!(
        numbers,
        ["KZ-2023-000041", "KZ-2023-000042", "KZ-2023-000043"]
    );
    assert!(decided.iter().all(|a| a.decision == "Resolution 7"));
}

#[test]
fn a_batch_with_bad_entries_names_each_of_them() {
    let (pending, accredited, rejected) =
        (in_state(Pending), in_state(Accredited), in_state(Rejected));
    let entry = |at, current| BatchEntry {
        at,
        name: "o",
        current,
    };
    let terms = terms("2100-01-01T00:00:00Z");
    let now = at("2023-01-01T00:00:00Z");
    let states = [
        entry("names[0]", Some(&pending)),
        entry("names[1]", Some(&accredited)),
        entry("names[2]", Some(&rejected)),
    ];
    let refusal = accredit_all(&states, "", 1, &terms, now).unwrap_err();
    assert_eq!(refusal.rule, Rule::InvalidStateTransition);
    let fields: Vec<_> = refusal.fields.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["names[1]", "names[2]"]);

    let missing = [
        entry("names[0]", None),
        entry("names[1]", Some(&accredited)),
    ];
    let refusal = accredit_all(&missing, "", 1, &terms, now).unwrap_err();
    assert_eq!(refusal.rule, Rule::NotFound);
    assert_eq!(refusal.fields.len(), 1);
    assert_eq!(refusal.fields[0].0, "names[0]");
}

#[test]
fn a_batch_after_the_deadline_is_refused() {
    let pending = in_state(Pending);
    let entries = [BatchEntry {
        at: "names[0]",
        name: "o",
        current: Some(&pending),
    }];
    let refusal = accredit_all(
        &entries,
        "",
        1,
        &terms("2023-03-19T00:00:00Z"),
        at("2023-03-19T00:00:01Z"),
    )
    .unwrap_err();
    assert_eq!(refusal.rule, Rule::AccreditationClosed);
}

#[test]
fn any_other_transition_names_the_current_state() {
    for (from, command) in [
        (Rejected, accredit(1)),
        (Revoked, accredit(1)),
        (Accredited, accredit(1)),
        (
            Pending,
            Command::Revoke {
                reason: "r".to_owned(),
                decision: String::new(),
            },
        ),
        (
            Revoked,
            Command::Reject {
                reason: "r".to_owned(),
                decision: String::new(),
            },
        ),
    ] {
        let refusal = decide(
            "o",
            &in_state(from),
            command,
            &terms("2100-01-01T00:00:00Z"),
            at("2023-01-01T00:00:00Z"),
        )
        .unwrap_err();
        assert_eq!(refusal.rule, Rule::InvalidStateTransition);
        assert_eq!(refusal.metadata, vec![("state", from.as_str().to_owned())]);
    }
}

#[test]
fn numbers_are_padded_to_six_digits() {
    let kz = CountryCode::parse("KZ").unwrap();
    assert_eq!(accreditation_number(kz, 2023, 1), "KZ-2023-000001");
    assert_eq!(accreditation_number(kz, 2023, 793), "KZ-2023-000793");
}

#[test]
fn state_names_round_trip() {
    for name in AccreditationState::NAMES {
        assert_eq!(AccreditationState::parse(name).unwrap().as_str(), *name);
    }
}
