//! The accreditation state machine (API.md): `PENDING → ACCREDITED | REJECTED`,
//! `ACCREDITED → REVOKED`; rejection and revocation need a reason; accreditation closes at
//! the election's deadline and takes the next number of the host country's sequence for the
//! voting year. PostgreSQL holds the same machine (`observers_accreditation_transition`) and
//! issues the numbers, so no other path can skip a state or a number.

use chrono::{DateTime, Utc};

use crate::domain::country::CountryCode;
use crate::domain::refusal::{Refusal, Rule};

/// Where an observer stands in the accreditation state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccreditationState {
    Pending,
    Accredited,
    Rejected,
    Revoked,
}

impl AccreditationState {
    /// The names the contract, filters and the database use, in declaration order.
    pub const NAMES: &[&str] = &["PENDING", "ACCREDITED", "REJECTED", "REVOKED"];

    pub fn as_str(self) -> &'static str {
        match self {
            AccreditationState::Pending => "PENDING",
            AccreditationState::Accredited => "ACCREDITED",
            AccreditationState::Rejected => "REJECTED",
            AccreditationState::Revoked => "REVOKED",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "PENDING" => Some(AccreditationState::Pending),
            "ACCREDITED" => Some(AccreditationState::Accredited),
            "REJECTED" => Some(AccreditationState::Rejected),
            "REVOKED" => Some(AccreditationState::Revoked),
            _ => None,
        }
    }

    /// Whether a decision was ever taken: from then on the observer is part of the official
    /// record (identity fixed, never removed).
    pub fn is_decided(self) -> bool {
        self != AccreditationState::Pending
    }
}

/// The accreditation record, set only by the accreditation methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Accreditation {
    pub state: AccreditationState,
    pub number: Option<String>,
    pub decide_time: Option<DateTime<Utc>>,
    pub reason: String,
}

impl Accreditation {
    /// A new observer's.
    pub fn pending() -> Self {
        Accreditation {
            state: AccreditationState::Pending,
            number: None,
            decide_time: None,
            reason: String::new(),
        }
    }
}

/// What the accreditation office decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Accredit with `next_sequence`, the next number of the host country's sequence for the
    /// voting year, which the store read under the sequence's lock.
    Accredit { next_sequence: i32 },
    /// Reject, with the reason (already parsed as text).
    Reject { reason: String },
    /// Revoke, with the reason.
    Revoke { reason: String },
}

impl Command {
    pub fn target(&self) -> AccreditationState {
        match self {
            Command::Accredit { .. } => AccreditationState::Accredited,
            Command::Reject { .. } => AccreditationState::Rejected,
            Command::Revoke { .. } => AccreditationState::Revoked,
        }
    }
}

/// What the decision needs to know of the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionTerms {
    pub host_country: CountryCode,
    pub voting_year: i32,
    /// When accreditation closes (the deadline, or the start of voting day).
    pub closes_at: DateTime<Utc>,
}

/// Whether `from` may become `to`: only the transitions of API.md.
pub fn can_become(from: AccreditationState, to: AccreditationState) -> bool {
    use AccreditationState::*;
    matches!(
        (from, to),
        (Pending, Accredited) | (Pending, Rejected) | (Accredited, Revoked)
    )
}

/// The accreditation after `command`, decided at `now`, or the rule it breaks.
pub fn decide(
    observer: &str,
    current: &Accreditation,
    command: Command,
    election: &ElectionTerms,
    now: DateTime<Utc>,
) -> Result<Accreditation, Refusal> {
    let (from, to) = (current.state, command.target());
    if !can_become(from, to) {
        return Err(Refusal::new(
            Rule::InvalidStateTransition,
            format!(
                "{observer} is {}; it cannot become {}",
                from.as_str(),
                to.as_str()
            ),
        )
        .metadata("state", from.as_str()));
    }
    match command {
        Command::Accredit { next_sequence } => {
            if now > election.closes_at {
                let deadline = election.closes_at.to_rfc3339();
                return Err(Refusal::new(
                    Rule::AccreditationClosed,
                    format!("accreditation closed at {deadline}"),
                )
                .metadata("deadline", deadline));
            }
            Ok(Accreditation {
                state: to,
                number: Some(accreditation_number(
                    election.host_country,
                    election.voting_year,
                    next_sequence,
                )),
                decide_time: Some(now),
                reason: String::new(),
            })
        }
        Command::Reject { reason } | Command::Revoke { reason } => Ok(Accreditation {
            state: to,
            // A revoked observer keeps its number: it is never issued again.
            number: current.number.clone(),
            decide_time: Some(now),
            reason,
        }),
    }
}

/// The accreditation number: `{host country}-{voting year}-{sequence, 6 digits}`.
pub fn accreditation_number(host_country: CountryCode, voting_year: i32, sequence: i32) -> String {
    format!("{host_country}-{voting_year}-{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccreditationState::*;

    fn terms(closes_at: &str) -> ElectionTerms {
        ElectionTerms {
            host_country: CountryCode::parse("KZ").unwrap(),
            voting_year: 2023,
            closes_at: closes_at.parse().unwrap(),
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
            Command::Accredit { next_sequence: 793 },
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
            Command::Accredit { next_sequence: 1 },
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
            },
            &terms("2023-03-19T00:00:00Z"),
            at("2023-04-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(decided.state, Revoked);
        assert_eq!(decided.number.as_deref(), Some("KZ-2023-000007"));
        assert_eq!(decided.reason, "left the mission");
    }

    #[test]
    fn any_other_transition_names_the_current_state() {
        for (from, command) in [
            (Rejected, Command::Accredit { next_sequence: 1 }),
            (Revoked, Command::Accredit { next_sequence: 1 }),
            (Accredited, Command::Accredit { next_sequence: 1 }),
            (
                Pending,
                Command::Revoke {
                    reason: "r".to_owned(),
                },
            ),
            (
                Revoked,
                Command::Reject {
                    reason: "r".to_owned(),
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
}
