//! ErasePersonalData, and the erasure that the background task (`crate::retention`) runs with
//! the same code: the election locked → its observers' personal data emptied → the election
//! marked → one audit event with the count, in one transaction.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::ElectionApi;
use super::convert::to_proto;
use crate::api::audit::AuditEntry;
use crate::api::skeleton::entry_changed;
use crate::auth::Caller;
use crate::domain::election::Election;
use crate::domain::retention::{self, Trigger};
use crate::error::Result;
use crate::pb::v1 as pb;
use crate::store;

/// The method every erasure is audited under, whether a caller asked or the service erased
/// on its own: one filter on `method` finds them all.
pub const ERASE_METHOD: &str = "/observer_registry.v1.ElectionService/ErasePersonalData";

impl ElectionApi {
    pub(super) async fn erase_personal_data(
        &self,
        caller: &Caller,
        request: pb::ErasePersonalDataRequest,
    ) -> Result<pb::Election> {
        let id = super::parse_name(&request.name, "name")?;
        let now = self.state.clock.now();
        let request = &request;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = super::locked(tx, id, &request.name, &request.etag).await?;
                    if current.personal_data_erase_time.is_some() {
                        // Erased once already: the state asked for holds.
                        return Ok(to_proto(&current));
                    }
                    let erasure = erase(tx, caller, &current, now, Trigger::Request).await?;
                    let (election_, observers_) = (request.name.to_string(), erasure.observers);
                    tx.after_commit(move || {
                        tracing::info!(
                            election = %election_,
                            observers = observers_,
                            "personal data erased on request"
                        )
                    });
                    Ok(erasure.election)
                })
            })
            .await
    }
}

/// What one erasure did.
pub struct Erasure {
    pub election: pb::Election,
    /// Observers whose personal data was erased (deleted ones included).
    pub observers: u64,
}

/// Erases the personal data of `election`, which the caller has locked (`FOR UPDATE`) and
/// found not erased yet: the observers' personal columns (PostgreSQL's trigger feeds each as
/// UPDATED), the election's `personal_data_erase_time`, and one audit event for the election
/// whose reason counts the observers.
pub async fn erase(
    conn: &mut PgConnection,
    caller: &Caller,
    election: &Election,
    now: DateTime<Utc>,
    trigger: Trigger,
) -> Result<Erasure> {
    let observers = store::observers::erase_personal_data(conn, &election.id, now).await?;
    let count = u64::try_from(observers.len()).unwrap_or(u64::MAX);
    let erased = store::elections::set_personal_data_erased(conn, &election.id, now).await?;
    let after = to_proto(&erased);
    let reason = retention::audit_reason(count, trigger);
    AuditEntry {
        reason: &reason,
        ..entry_changed(Some(&election.id), &to_proto(election), &after)
    }
    .record(conn, caller)
    .await?;
    Ok(Erasure {
        election: after,
        observers: count,
    })
}
