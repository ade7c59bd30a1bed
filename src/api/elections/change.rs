//! UpdateElection and DeleteElection: parse → load the election (locked) and what the rules
//! need of its observers → decide (`domain::election`) → store and audit.

use crate::database::Tx;

use super::ElectionApi;
use super::convert::{OUTPUT_ONLY, merge, parse, to_proto};
use crate::aip::field_mask;
use crate::api::delegations::convert as delegation_convert;
use crate::api::meetings::convert as meeting_convert;
use crate::api::observers::convert as observer_convert;
use crate::api::skeleton::{entry_changed, entry_removed};
use crate::auth::Caller;
use crate::domain::election::{self, ElectionField};
use crate::error::{Error, Reason, Result, Violations};
use crate::pb::v1 as pb;
use crate::store;

impl ElectionApi {
    pub(super) async fn update(
        &self,
        caller: &Caller,
        request: pb::UpdateElectionRequest,
    ) -> Result<pb::Election> {
        let changes = request
            .election
            .ok_or_else(|| Error::invalid("election", "is required"))?;
        let id = super::parse_name(&changes.name, "election.name")?;
        let mask: Vec<ElectionField> =
            field_mask::resolve_fields(request.update_mask.as_ref(), OUTPUT_ONLY)?;
        let (changes, mask) = (&changes, &mask);
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = super::locked(tx, id, &changes.name, &changes.etag).await?;
                    let mut violations = Violations::new();
                    let fields = parse(&merge(&to_proto(&current), changes, mask), &mut violations);
                    violations.finish()?;
                    let fields = fields.ok_or_else(|| {
                        Error::internal(anyhow::anyhow!("validation passed without values"))
                    })?;
                    // Only a new host country or voting year concerns the observers.
                    let facts = if election::moves_numbering(&current.fields, &fields) {
                        store::elections::observer_facts(tx, id, fields.host_country).await?
                    } else {
                        election::ObserverFacts::default()
                    };
                    election::check_update(&changes.name, &current.fields, &fields, facts)?;
                    let updated = store::elections::update(tx, id, &fields).await?;
                    let updated = to_proto(&updated);
                    entry_changed(Some(id), &to_proto(&current), &updated)
                        .record(tx, caller)
                        .await?;
                    let (election_, fields_) = (changes.name.to_string(), format!("{:?}", mask));
                    tx.after_commit(move || tracing::info!(election = %election_, fields = %fields_, "election updated"));
                    Ok(updated)
                })
            })
            .await
    }

    pub(super) async fn delete(
        &self,
        caller: &Caller,
        request: pb::DeleteElectionRequest,
    ) -> Result<()> {
        let id = super::parse_name(&request.name, "name")?;
        let request = &request;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = super::locked(tx, id, &request.name, &request.etag).await?;
                    if store::elections::has_children(tx, id).await? {
                        if !request.force {
                            return Err(Error::precondition(
                                Reason::HasChildren,
                                format!(
                                    "{} has delegations, observers, meetings or invitations (also deleted ones); \
                                     set force to delete them with it",
                                    request.name
                                ),
                            )
                            .with_metadata("resource", &request.name));
                        }
                        let facts =
                            store::elections::observer_facts(tx, id, current.fields.host_country).await?;
                        election::check_wipe(&request.name, facts)?;
                        remove_children(tx, caller, id).await?;
                    }
                    store::elections::delete(tx, id).await?;
                    entry_removed(Some(id), &to_proto(&current))
                        .record(tx, caller)
                        .await?;
                    let (election_, force_) = (request.name.to_string(), request.force);
                    tx.after_commit(move || tracing::info!(election = %election_, force = force_, "election deleted"));
                    Ok(())
                })
            })
            .await
    }
}

/// Removes every child of the election for good, each with its own audit event (PostgreSQL's
/// triggers feed each as DELETED).
async fn remove_children(conn: &mut Tx<'_>, caller: &Caller, id: &str) -> Result<()> {
    let children = store::elections::children(conn, id).await?;
    let meetings: Vec<pb::Meeting> = children
        .meetings
        .iter()
        .map(meeting_convert::to_proto)
        .collect();
    let observers: Vec<pb::Observer> = children
        .observers
        .iter()
        .map(observer_convert::to_proto)
        .collect();
    let delegations: Vec<pb::Delegation> = children
        .delegations
        .iter()
        .map(delegation_convert::to_proto)
        .collect();
    let invitations: Vec<pb::Invitation> = children
        .invitations
        .iter()
        .map(crate::api::invitations::convert::to_proto)
        .collect();
    store::elections::delete_children(conn, id).await?;
    for meeting in &meetings {
        entry_removed(Some(id), meeting)
            .record(conn, caller)
            .await?;
    }
    for invitation in &invitations {
        entry_removed(Some(id), invitation)
            .record(conn, caller)
            .await?;
    }
    for observer in &observers {
        entry_removed(Some(id), observer)
            .record(conn, caller)
            .await?;
    }
    for delegation in &delegations {
        entry_removed(Some(id), delegation)
            .record(conn, caller)
            .await?;
    }
    let (election_, meetings_, invitations_, observers_, delegations_) = (
        id.to_owned(),
        children.meetings.len(),
        children.invitations.len(),
        children.observers.len(),
        children.delegations.len(),
    );
    conn.after_commit(move || {
        tracing::info!(
            election = election_,
            meetings = meetings_,
            invitations = invitations_,
            observers = observers_,
            delegations = delegations_,
            "children of a deleted election removed"
        )
    });
    Ok(())
}
