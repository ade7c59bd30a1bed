//! Changes to a registered observer: UpdateObserver, CorrectObserver, DeleteObserver and
//! UndeleteObserver. Parse → load the observer (locked) and the facts → decide (domain:
//! `observer::record`, `observer::registration`) → store and audit.

use crate::database::Tx;
use sqlx::PgConnection;

use super::ObserverApi;
use super::convert::{OUTPUT_ONLY, fields_given, merge_message, parse_observer, to_proto};
use super::register::{disclosure, scope};
use crate::aip::{etag, field_mask};
use crate::api::audit::AuditEntry;
use crate::api::invitations::check_invited;
use crate::api::require_election;
use crate::api::skeleton::{SoftDeletion, entry_changed};
use crate::auth::Caller;
use crate::domain::invitation::Sender;
use crate::domain::observer::record::{self, ObserverField};
use crate::domain::observer::registration::{self, Candidate};
use crate::domain::observer::{Observer, observer_name};
use crate::domain::retention;
use crate::domain::text;
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;
use crate::store;

/// What a change asks for: the observer's new message form, and why (corrections).
struct Change<'a> {
    name: &'a str,
    election_id: &'a str,
    id: &'a str,
    changes: &'a pb::Observer,
    mask: &'a [ObserverField],
    /// The correction's reason; `None` for an UpdateObserver.
    correction: Option<&'a str>,
}

impl ObserverApi {
    pub(super) async fn update(
        &self,
        caller: &Caller,
        request: pb::UpdateObserverRequest,
    ) -> Result<pb::Observer> {
        let changes = request
            .observer
            .ok_or_else(|| Error::invalid("observer", "is required"))?;
        let (election_id, id) = super::parse_name(&changes.name, "observer.name")?;
        let mask: Vec<ObserverField> =
            field_mask::resolve_fields(request.update_mask.as_ref(), OUTPUT_ONLY)?;
        let change = Change {
            name: &changes.name,
            election_id,
            id,
            changes: &changes,
            mask: &mask,
            correction: None,
        };
        self.change(caller, &change).await
    }

    pub(super) async fn correct(
        &self,
        caller: &Caller,
        request: pb::CorrectObserverRequest,
    ) -> Result<pb::Observer> {
        let mut violations = Violations::new();
        let reason = violations.check("reason", text::REASON.parse(&request.reason));
        let changes = request.observer.unwrap_or_default();
        let ids = violations.check(
            "observer.name",
            crate::domain::names::parse_child(&changes.name, "elections", "observers"),
        );
        let mask: Vec<ObserverField> = match request.update_mask.as_ref() {
            Some(mask) if !mask.paths.is_empty() => {
                field_mask::resolve_fields(Some(mask), OUTPUT_ONLY)?
            }
            _ => Vec::new(),
        };
        if let Err(refusal) = record::check_correction_mask(&mask) {
            for (field, why) in refusal.fields {
                violations.add(field, why);
            }
        }
        violations.finish()?;
        let (Some(reason), Some((election_id, id))) = (reason, ids) else {
            return Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            )));
        };
        let change = Change {
            name: &changes.name,
            election_id,
            id,
            changes: &changes,
            mask: &mask,
            correction: Some(&reason),
        };
        self.change(caller, &change).await
    }

    /// An update or a correction, in one transaction.
    async fn change(&self, caller: &Caller, change: &Change<'_>) -> Result<pb::Observer> {
        let today = self.today();
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = live_observer(tx, change.election_id, change.id, change.name).await?;
                    etag::check(&change.changes.etag, current.etag, change.name)?;
                    retention::check_update(
                        change.name,
                        current.personal_data_erase_time,
                        &fields_given(change.changes, change.mask),
                        "observer",
                    )?;
                    let merged = merge_message(&to_proto(&current), change.changes, change.mask);
                    let mut violations = Violations::new();
                    let erased = current.personal_data_erase_time.is_some();
                    let parsed = parse_observer(&merged, "observer", today, erased, &mut violations);
                    violations.finish()?;
                    let parsed = parsed.ok_or_else(|| {
                        Error::internal(anyhow::anyhow!("validation passed without values"))
                    })?;
                    let changed = record::changed_fields(&current.fields, &parsed.fields);
                    if changed.is_empty() {
                        return Ok(to_proto(&current));
                    }
                    if change.correction.is_none() {
                        record::check_update(change.name, current.accreditation.state, &changed, "observer")?;
                    }
                    let candidate = Candidate {
                        at: "observer",
                        fields: &parsed.fields,
                        delegation_election: if registration::membership_unchanged(&current.fields, &parsed.fields) {
                            None
                        } else {
                            parsed.delegation_election.as_deref()
                        },
                    };
                    check_registration(tx, caller, &current, candidate).await?;
                    if let Some(reason) = change.correction {
                        let paths: Vec<&str> = changed.iter().map(|f| f.path()).collect();
                        store::observers::record_correction(
                            tx, change.election_id, change.id, &paths, reason, &caller.agency,
                        )
                        .await?;
                    }
                    // Only leaving a delegation can cost it its head.
                    let heads = if changed.contains(&ObserverField::Delegation) {
                        store::heads::headed_by(tx, change.election_id, change.id).await?
                    } else {
                        Vec::new()
                    };
                    let observer =
                        store::observers::update(tx, change.election_id, change.id, &parsed.fields).await?;
                    audit_change(tx, caller, &current, &observer, change.correction.unwrap_or("")).await?;
                    audit_cleared_heads(tx, caller, change.election_id, change.id, &heads).await?;
                    let (observer_, fields_, corrected_) = (change.name.to_string(), format!("{:?}", changed), change.correction.is_some());
                    tx.after_commit(move || tracing::info!(observer = %observer_, fields = %fields_, corrected = corrected_, "observer changed"));
                    Ok(to_proto(&observer))
                })
            })
            .await
    }

    pub(super) async fn set_deleted(
        &self,
        caller: &Caller,
        name: &str,
        etag_given: &str,
        deleted: bool,
    ) -> Result<pb::Observer> {
        let (election_id, id) = super::parse_name(name, "name")?;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let deletion = SoftDeletion {
                        name,
                        etag: etag_given,
                        delete: deleted,
                    };
                    let current =
                        deletion.check(store::observers::get(tx, election_id, id, true).await?)?;
                    if deleted {
                        record::check_delete(name, current.accreditation.state)?;
                    } else {
                        // Coming back must not make the same person registered twice.
                        let candidate = Candidate {
                            at: "observer",
                            fields: &current.fields,
                            delegation_election: None,
                        };
                        check_registration(tx, caller, &current, candidate).await?;
                    }
                    let heads = store::heads::headed_by(tx, election_id, id).await?;
                    let observer =
                        store::observers::set_deleted(tx, election_id, id, deleted).await?;
                    audit_change(tx, caller, &current, &observer, "").await?;
                    audit_cleared_heads(tx, caller, election_id, id, &heads).await?;
                    let (observer_, deleted_) = (name.to_string(), deleted);
                    tx.after_commit(move || tracing::info!(observer = %observer_, deleted = deleted_, "observer deletion changed"));
                    Ok(to_proto(&observer))
                })
            })
            .await
    }
}

/// The observer, locked, unless it does not exist or is deleted (then NOT_FOUND).
pub async fn live_observer(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    name: &str,
) -> Result<Observer> {
    store::observers::get(conn, election_id, id, true)
        .await?
        .filter(|o| o.delete_time.is_none())
        .ok_or_else(|| Error::not_found(name))
}

/// The registration rules for an observer that changes (itself excepted).
async fn check_registration(
    conn: &mut PgConnection,
    caller: &Caller,
    current: &Observer,
    candidate: Candidate<'_>,
) -> Result<()> {
    let election = require_election(conn, &current.election_id).await?;
    let candidates = [candidate];
    let found =
        store::registration::load(conn, &election.id, &candidates, Some(&current.id), &[]).await?;
    registration::check(
        scope(&election),
        &candidates,
        &found.facts,
        disclosure(caller),
    )?;
    // Only a move to another organization needs its invitation: an observer registered
    // before a withdrawal stays.
    if candidate.fields.organization_id == current.fields.organization_id {
        return Ok(());
    }
    let sender = Sender {
        at: "observer.organization",
        organization_id: &candidate.fields.organization_id,
    };
    check_invited(conn, &election, &[sender]).await
}

async fn audit_change(
    conn: &mut PgConnection,
    caller: &Caller,
    before: &Observer,
    after: &Observer,
    reason: &str,
) -> Result<()> {
    let after = to_proto(after);
    let entry = AuditEntry {
        reason,
        ..entry_changed(Some(&before.election_id), &to_proto(before), &after)
    };
    entry.record(conn, caller).await
}

/// A rule changed other records too: the delegations whose head this observer was, and no
/// longer is, are audited as updated (the change feed has them from PostgreSQL).
async fn audit_cleared_heads(
    conn: &mut Tx<'_>,
    caller: &Caller,
    election_id: &str,
    observer_id: &str,
    headed: &[String],
) -> Result<()> {
    for delegation_id in headed {
        let Some(delegation) =
            store::delegations::get(conn, election_id, delegation_id, false).await?
        else {
            continue;
        };
        if delegation.fields.head_observer_id.is_some() {
            continue;
        }
        let after = crate::api::delegations::convert::to_proto(&delegation);
        let mut before = after.clone();
        before.head = observer_name(election_id, observer_id);
        let entry = AuditEntry {
            reason: "its head left the delegation or was deleted",
            ..entry_changed(Some(election_id), &before, &after)
        };
        entry.record(conn, caller).await?;
        let delegation_ = after.name.to_string();
        conn.after_commit(
            move || tracing::info!(delegation = %delegation_, "head of delegation cleared"),
        );
    }
    Ok(())
}
