//! The accreditation state machine (API.md): `PENDING → ACCREDITED | REJECTED`,
//! `ACCREDITED → REVOKED`; rejection and revocation need a reason; accreditation closes at
//! the election's deadline and takes the next number of the host country's sequence for the
//! voting year. PostgreSQL holds the same machine (`observers_accreditation_transition`) and
//! issues the numbers, so no other path can skip a state or a number. An election may
//! require the commission's decision (its act, e.g. a resolution) behind every decision
//! (`observers_decision_required`).

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
    /// The commission's act behind the last decision (`text::LABEL`), empty when none.
    pub decision: String,
}

impl Accreditation {
    /// A new observer's.
    pub fn pending() -> Self {
        Accreditation {
            state: AccreditationState::Pending,
            number: None,
            decide_time: None,
            reason: String::new(),
            decision: String::new(),
        }
    }
}

/// What the accreditation office decides, and the commission's act behind it (already
/// parsed as text; empty when none was given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Accredit with `next_sequence`, the next number of the host country's sequence for the
    /// voting year, which the store read under the sequence's lock.
    Accredit {
        next_sequence: i32,
        decision: String,
    },
    /// Reject, with the reason (already parsed as text).
    Reject { reason: String, decision: String },
    /// Revoke, with the reason.
    Revoke { reason: String, decision: String },
}

impl Command {
    pub fn target(&self) -> AccreditationState {
        match self {
            Command::Accredit { .. } => AccreditationState::Accredited,
            Command::Reject { .. } => AccreditationState::Rejected,
            Command::Revoke { .. } => AccreditationState::Revoked,
        }
    }

    pub fn decision(&self) -> &str {
        match self {
            Command::Accredit { decision, .. }
            | Command::Reject { decision, .. }
            | Command::Revoke { decision, .. } => decision,
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
    /// Whether every decision must name the commission's act behind it.
    pub decision_required: bool,
}

/// An election with `decision_required` takes no decision without the commission's act
/// behind it: the official record must say on what authority an observer was accredited,
/// rejected or revoked.
pub fn check_decision(election: &ElectionTerms, decision: &str) -> Result<(), Refusal> {
    if election.decision_required && decision.trim().is_empty() {
        return Err(Refusal::new(
            Rule::InvalidArgument,
            "this election requires the commission's decision behind every accreditation, \
             rejection and revocation",
        )
        .field(
            "decision",
            "is required: the election's decision_required is set",
        ));
    }
    Ok(())
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
    // A malformed request is refused before the observer's state is looked at.
    check_decision(election, command.decision())?;
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
        Command::Accredit {
            next_sequence,
            decision,
        } => {
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
                decision,
            })
        }
        Command::Reject { reason, decision } | Command::Revoke { reason, decision } => {
            Ok(Accreditation {
                state: to,
                // A revoked observer keeps its number: it is never issued again.
                number: current.number.clone(),
                decide_time: Some(now),
                reason,
                decision,
            })
        }
    }
}

/// One observer of a BatchAccreditObservers request, as loaded.
#[derive(Debug, Clone, Copy)]
pub struct BatchEntry<'a> {
    /// Where it sits in the request, e.g. `names[3]`.
    pub at: &'a str,
    pub name: &'a str,
    /// `None` when there is no such live observer.
    pub current: Option<&'a Accreditation>,
}

/// BatchAccreditObservers, before anything is decided: the refusal naming every bad entry
/// (missing ones first, NOT_FOUND; then those not PENDING), so that a batch is accredited
/// whole or not at all.
pub fn check_batch(
    entries: &[BatchEntry<'_>],
    decision: &str,
    election: &ElectionTerms,
) -> Result<(), Refusal> {
    check_decision(election, decision)?;
    let missing: Vec<_> = entries.iter().filter(|e| e.current.is_none()).collect();
    if !missing.is_empty() {
        return Err(missing.iter().fold(
            Refusal::new(
                Rule::NotFound,
                format!(
                    "{} of the observers do not exist or are deleted; nothing was accredited",
                    missing.len()
                ),
            ),
            |refusal, e| refusal.field(e.at, format!("{} does not exist or is deleted", e.name)),
        ));
    }
    let not_pending: Vec<_> = entries
        .iter()
        .filter_map(|e| Some((e, e.current?.state)))
        .filter(|(_, state)| !can_become(*state, AccreditationState::Accredited))
        .collect();
    if !not_pending.is_empty() {
        return Err(not_pending.iter().fold(
            Refusal::new(
                Rule::InvalidStateTransition,
                format!(
                    "{} of the observers are not PENDING; nothing was accredited",
                    not_pending.len()
                ),
            ),
            |refusal, (e, state)| {
                refusal.field(
                    e.at,
                    format!(
                        "{} is {}; only PENDING observers are accredited",
                        e.name,
                        state.as_str()
                    ),
                )
            },
        ));
    }
    Ok(())
}

/// BatchAccreditObservers, all or none: the accreditations in the order of `entries`,
/// numbered from `first_sequence` on (read under the sequence's lock), or the refusal.
pub fn accredit_all(
    entries: &[BatchEntry<'_>],
    decision: &str,
    first_sequence: i32,
    election: &ElectionTerms,
    now: DateTime<Utc>,
) -> Result<Vec<Accreditation>, Refusal> {
    check_batch(entries, decision, election)?;
    let mut accredited = Vec::with_capacity(entries.len());
    for (next_sequence, entry) in (first_sequence..).zip(entries) {
        let current = entry
            .current
            .ok_or_else(|| Refusal::new(Rule::NotFound, entry.name))?;
        let command = Command::Accredit {
            next_sequence,
            decision: decision.to_owned(),
        };
        accredited.push(decide(entry.name, current, command, election, now)?);
    }
    Ok(accredited)
}

/// The accreditation number: `{host country}-{voting year}-{sequence, 6 digits}`.
pub fn accreditation_number(host_country: CountryCode, voting_year: i32, sequence: i32) -> String {
    format!("{host_country}-{voting_year}-{sequence:06}")
}

#[cfg(test)]
mod tests;
