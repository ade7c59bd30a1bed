//! The accreditation office's decisions: AccreditObserver, RejectObserver and
//! RevokeAccreditation. Parse → load the observer (locked), the election and, to accredit,
//! the next number under its sequence's lock → decide (`domain::observer::accreditation`) →
//! store and audit.

use chrono::Datelike;

use super::ObserverApi;
use super::change::live_observer;
use super::convert::{for_caller, to_proto};
use crate::aip::etag;
use crate::api::audit::AuditEntry;
use crate::api::require_election;
use crate::api::skeleton::entry_changed;
use crate::auth::Caller;
use crate::domain::observer::AccreditationState;
use crate::domain::observer::accreditation::{self, Command, ElectionTerms};
use crate::domain::text;
use crate::error::{Error, Result};
use crate::pb::v1 as pb;
use crate::store;

/// A decision as the request states it.
pub(super) enum Decision {
    Accredit,
    Reject { reason: String },
    Revoke { reason: String },
}

impl Decision {
    fn target(&self) -> AccreditationState {
        match self {
            Decision::Accredit => AccreditationState::Accredited,
            Decision::Reject { .. } => AccreditationState::Rejected,
            Decision::Revoke { .. } => AccreditationState::Revoked,
        }
    }

    /// A rejection or revocation with its reason parsed (required, multi-line text).
    pub(super) fn with_reason(make: fn(String) -> Decision, reason: &str) -> Result<Decision> {
        text::REASON
            .parse(reason)
            .map(make)
            .map_err(|e| Error::invalid("reason", e.to_string()))
    }
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
                    let terms = ElectionTerms {
                        host_country: election.fields.host_country,
                        voting_year: election.fields.voting_day.year(),
                        closes_at: election.fields.accreditation_closes_at(),
                    };
                    let (from, to) = (current.accreditation.state, decision.target());
                    let command = match decision {
                        // The sequence is locked only for a transition the machine allows.
                        Decision::Accredit if accreditation::can_become(from, to) => Command::Accredit {
                            next_sequence: store::observers::next_accreditation_sequence(
                                tx,
                                terms.host_country,
                                terms.voting_year,
                            )
                            .await?,
                        },
                        Decision::Accredit => Command::Accredit { next_sequence: 0 },
                        Decision::Reject { reason } => Command::Reject { reason: reason.clone() },
                        Decision::Revoke { reason } => Command::Revoke { reason: reason.clone() },
                    };
                    // Read after the sequence's lock, so decision times follow number order.
                    let now = self.state.clock.now();
                    let decided = accreditation::decide(name, &current.accreditation, command, &terms, now)?;
                    let observer =
                        store::observers::set_accreditation(tx, election_id, id, &decided).await?;
                                        let after = to_proto(&observer);
                    let entry = AuditEntry {
                        reason: &decided.reason,
                        ..entry_changed(Some(election_id), &to_proto(&current), &after)
                    };
                    entry.record(tx, caller).await?;
                    let (observer_, from_, to_) = (name.to_string(), from.as_str(), to.as_str());
                    tx.after_commit(move || tracing::info!(observer = %observer_, from = from_, to = to_, "accreditation decided"));
                    Ok(for_caller(caller, after))
                })
            })
            .await
    }
}
