//! The accreditation office's decisions: AccreditObserver, RejectObserver and
//! RevokeAccreditation. Parse → load the observer (locked), the election and, to accredit,
//! the next number under its sequence's lock → decide (`domain::observer::accreditation`) →
//! store and audit ([`record`], which BatchAccreditObservers shares).

use chrono::Datelike;

use super::ObserverApi;
use super::change::live_observer;
use super::convert::{for_caller, to_proto};
use crate::aip::etag;
use crate::api::audit::AuditEntry;
use crate::api::invitations::check_invited;
use crate::api::require_election;
use crate::api::skeleton::entry_changed;
use crate::auth::Caller;
use crate::database::Tx;
use crate::domain::election::Election;
use crate::domain::invitation::Sender;
use crate::domain::observer::accreditation::{self, Command, ElectionTerms};
use crate::domain::observer::{Accreditation, AccreditationState, Observer};
use crate::domain::text;
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;
use crate::store;

/// What the office decides, as the request states it.
enum Act {
    Accredit,
    Reject { reason: String },
    Revoke { reason: String },
}

/// A decision as the request states it, parsed: the act and the commission's decision
/// behind it (empty when none was given).
pub(super) struct Decision {
    act: Act,
    decision: String,
}

impl Decision {
    pub(super) fn accredit(decision: &str) -> Result<Decision> {
        Ok(Decision {
            act: Act::Accredit,
            decision: parse_decision(decision)?,
        })
    }

    pub(super) fn reject(reason: &str, decision: &str) -> Result<Decision> {
        Decision::with_reason(|reason| Act::Reject { reason }, reason, decision)
    }

    pub(super) fn revoke(reason: &str, decision: &str) -> Result<Decision> {
        Decision::with_reason(|reason| Act::Revoke { reason }, reason, decision)
    }

    /// A rejection or revocation: the reason (required, multi-line text) and the decision,
    /// each bad one a violation.
    fn with_reason(make: fn(String) -> Act, reason: &str, decision: &str) -> Result<Decision> {
        let mut violations = Violations::new();
        let reason = violations.check("reason", text::REASON.parse(reason));
        let decision = violations.check("decision", text::LABEL.parse(decision));
        violations.finish()?;
        match (reason, decision) {
            (Some(reason), Some(decision)) => Ok(Decision {
                act: make(reason),
                decision,
            }),
            _ => Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            ))),
        }
    }

    fn target(&self) -> AccreditationState {
        match self.act {
            Act::Accredit => AccreditationState::Accredited,
            Act::Reject { .. } => AccreditationState::Rejected,
            Act::Revoke { .. } => AccreditationState::Revoked,
        }
    }
}

/// The commission's decision as a request gives it: one line of text (`text::LABEL`), empty
/// when none; whether the election requires one is the domain's rule.
pub(super) fn parse_decision(decision: &str) -> Result<String> {
    text::LABEL
        .parse(decision)
        .map_err(|e| Error::invalid("decision", e.to_string()))
}

/// What the accreditation rules need to know of the election.
pub(super) fn terms(election: &Election) -> ElectionTerms {
    ElectionTerms {
        host_country: election.fields.host_country,
        voting_year: election.fields.voting_day.year(),
        closes_at: election.fields.accreditation_closes_at(),
        decision_required: election.fields.decision_required,
    }
}

/// Stores a decision taken on `current` and audits it, in the caller's transaction; the
/// change feed records it through its trigger. One path for every decision, single or in a
/// batch, so that each observer decided leaves the same trail.
pub(super) async fn record(
    tx: &mut Tx<'_>,
    caller: &Caller,
    current: &Observer,
    decided: &Accreditation,
    request_id: &str,
) -> Result<pb::Observer> {
    let observer =
        store::observers::set_accreditation(tx, &current.election_id, &current.id, decided).await?;
    let after = to_proto(&observer);
    let entry = AuditEntry {
        reason: &decided.reason,
        request_id,
        ..entry_changed(Some(&current.election_id), &to_proto(current), &after)
    };
    entry.record(tx, caller).await?;
    let (observer_, from_, to_) = (
        after.name.clone(),
        current.accreditation.state.as_str(),
        decided.state.as_str(),
    );
    tx.after_commit(
        move || tracing::info!(observer = %observer_, from = from_, to = to_, "accreditation decided"),
    );
    Ok(after)
}

impl ObserverApi {
    /// Moves the observer through the accreditation state machine.
    pub(super) async fn decide(
        &self,
        caller: &Caller,
        name: &str,
        etag_given: &str,
        decision: Decision,
    ) -> Result<pb::Observer> {
        let (election_id, id) = super::parse_name(name, "name")?;
        let decision = &decision;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = live_observer(tx, election_id, id, name).await?;
                    etag::check(etag_given, current.etag, name)?;
                    let election = require_election(tx, election_id).await?;
                    let terms = terms(&election);
                    let (from, to) = (current.accreditation.state, decision.target());
                    if matches!(decision.act, Act::Accredit) && accreditation::can_become(from, to)
                    {
                        let sender = Sender {
                            at: "name",
                            organization_id: &current.fields.organization_id,
                        };
                        check_invited(tx, &election, &[sender]).await?;
                    }
                    let made = decision.decision.clone();
                    let command = match &decision.act {
                        // The sequence is locked only for a transition the machine allows.
                        Act::Accredit if accreditation::can_become(from, to) => {
                            let next_sequence = store::observers::next_accreditation_sequence(
                                tx,
                                terms.host_country,
                                terms.voting_year,
                            )
                            .await?;
                            Command::Accredit {
                                next_sequence,
                                decision: made,
                            }
                        }
                        Act::Accredit => Command::Accredit {
                            next_sequence: 0,
                            decision: made,
                        },
                        Act::Reject { reason } => Command::Reject {
                            reason: reason.clone(),
                            decision: made,
                        },
                        Act::Revoke { reason } => Command::Revoke {
                            reason: reason.clone(),
                            decision: made,
                        },
                    };
                    // Read after the sequence's lock, so decision times follow number order.
                    let now = self.state.clock.now();
                    let decided =
                        accreditation::decide(name, &current.accreditation, command, &terms, now)?;
                    let after = record(tx, caller, &current, &decided, "").await?;
                    Ok(for_caller(caller, after))
                })
            })
            .await
    }
}
