//! The shapes that every resource's handlers share, written once: audit entries of
//! resources, the idempotent create (claim → insert → remember and audit) and the
//! preconditions of soft deletion. (Update masks as enums of fields: `aip::field_mask`.)

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::aip::request_id::IdempotencyKey;
use crate::api::audit::{self, AuditEntry};
use crate::auth::Caller;
use crate::database::{Attempt, Tx};
use crate::domain::election::Election;
use crate::error::{Error, Result};
use crate::store::{self, request_ids};

/// A contract message that is a resource: what the audit trail and idempotency need of it.
pub trait Resource: prost::Message + Default {
    /// The message's name in the contract (`Meeting`), for its audit JSON.
    const MESSAGE: &'static str;

    /// Its resource name (`elections/kz/meetings/m`).
    fn name(&self) -> &str;

    /// Proto3 JSON as the audit trail keeps it.
    fn audit_json(&self) -> Value {
        audit::json(Self::MESSAGE, self)
    }
}

/// The audit entry of a resource created by a call with `request_id`.
pub fn entry_created<'r, R: Resource>(
    election_id: Option<&'r str>,
    request_id: &'r str,
    created: &'r R,
) -> AuditEntry<'r> {
    AuditEntry {
        election_id,
        resource: created.name(),
        request_id,
        before: None,
        after: Some(created.audit_json()),
        reason: "",
    }
}

/// The audit entry of a resource changed from `before` to `after`.
pub fn entry_changed<'r, R: Resource>(
    election_id: Option<&'r str>,
    before: &R,
    after: &'r R,
) -> AuditEntry<'r> {
    AuditEntry {
        election_id,
        resource: after.name(),
        request_id: "",
        before: Some(before.audit_json()),
        after: Some(after.audit_json()),
        reason: "",
    }
}

/// The audit entry of a resource removed for good.
pub fn entry_removed<'r, R: Resource>(
    election_id: Option<&'r str>,
    before: &'r R,
) -> AuditEntry<'r> {
    AuditEntry {
        election_id,
        resource: before.name(),
        request_id: "",
        before: Some(before.audit_json()),
        after: None,
        reason: "",
    }
}

/// What a create is remembered and audited under.
#[derive(Debug, Clone, Copy)]
pub struct Creation<'r> {
    /// `None` when the caller sent no `request_id`.
    pub key: Option<&'r IdempotencyKey>,
    pub election_id: Option<&'r str>,
    pub request_id: &'r str,
}

/// AIP-155: the response of the first call with the same `request_id`, or `insert`'s
/// resource, remembered under the key and audited — all in the caller's transaction, so a
/// replay never creates a second resource.
pub async fn create_once<'a, R, F>(
    tx: &mut Tx<'a>,
    caller: &Caller,
    creation: Creation<'_>,
    insert: F,
) -> Result<R>
where
    R: Resource,
    F: for<'t> FnOnce(&'t mut Tx<'a>) -> Attempt<'t, R>,
{
    if let Some(first) = request_ids::claim::<R>(tx, creation.key).await? {
        return Ok(first);
    }
    let created = insert(tx).await?;
    remember_and_audit(tx, caller, creation, created).await
}

/// [`create_once`] of a resource in an election (`creation.election_id`): the election is
/// read in the statement that claims the request id, and handed to `insert`; NOT_FOUND when
/// there is none: a round trip less than reading it in `insert`.
pub async fn create_once_in_election<'a, R, F>(
    tx: &mut Tx<'a>,
    caller: &Caller,
    creation: Creation<'_>,
    insert: F,
) -> Result<R>
where
    R: Resource,
    F: for<'t> FnOnce(&'t mut Tx<'a>, Election) -> Attempt<'t, R>,
{
    let election_id = creation.election_id.ok_or_else(|| {
        Error::internal(anyhow::anyhow!(
            "a create in an election without the election"
        ))
    })?;
    match claim_in_election(tx, creation.key, election_id).await? {
        Claimed::Replay(first) => Ok(first),
        Claimed::First(election) => {
            let created = insert(tx, election).await?;
            remember_and_audit(tx, caller, creation, created).await
        }
    }
}

/// What [`claim_in_election`] found.
enum Claimed<R> {
    /// The first call with its key (or one without a key): the election to create in.
    First(Election),
    /// The response of the first call with the same key.
    Replay(R),
}

/// Claims `key` (as `request_ids::claim` does) and reads the election in the same statement;
/// NOT_FOUND when a first call finds no election. The claim is undone with the transaction.
async fn claim_in_election<R: prost::Message + Default>(
    conn: &mut PgConnection,
    key: Option<&IdempotencyKey>,
    election_id: &str,
) -> Result<Claimed<R>> {
    let election = match key {
        Some(key) => {
            let (claimed, election) =
                store::elections::get_claiming(conn, election_id, key).await?;
            if !claimed {
                return request_ids::first_response(conn, key)
                    .await
                    .map(Claimed::Replay);
            }
            election
        }
        None => store::elections::get(conn, election_id, false).await?,
    };
    election
        .map(Claimed::First)
        .ok_or_else(|| Error::not_found(&format!("elections/{election_id}")))
}

/// The end of a create: its response remembered under the key and its audit event, in one
/// statement.
async fn remember_and_audit<R: Resource>(
    tx: &mut Tx<'_>,
    caller: &Caller,
    creation: Creation<'_>,
    created: R,
) -> Result<R> {
    entry_created(creation.election_id, creation.request_id, &created)
        .record_with_response(tx, caller, creation.key, &created)
        .await?;
    Ok(created)
}

/// A stored resource that is soft-deleted (AIP-164).
pub trait SoftDeletable {
    fn delete_time(&self) -> Option<DateTime<Utc>>;
    fn etag(&self) -> Uuid;
}

/// A Delete… or Undelete… request of a soft-deleted resource.
#[derive(Debug, Clone, Copy)]
pub struct SoftDeletion<'r> {
    pub name: &'r str,
    pub etag: &'r str,
    /// Delete (`true`) or undelete (`false`).
    pub delete: bool,
}

impl SoftDeletion<'_> {
    /// The resource as found, if this request may change it: NOT_FOUND when there is none
    /// or it is deleted already, ALREADY_EXISTS when undeleting a live one, ABORTED when
    /// the etag is stale.
    pub fn check<T: SoftDeletable>(self, found: Option<T>) -> Result<T> {
        let current = found.ok_or_else(|| Error::not_found(self.name))?;
        crate::api::check_soft_delete(
            self.name,
            self.delete,
            current.delete_time().is_some(),
            current.etag(),
            self.etag,
        )?;
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Stored(Option<DateTime<Utc>>);

    impl SoftDeletable for Stored {
        fn delete_time(&self) -> Option<DateTime<Utc>> {
            self.0
        }
        fn etag(&self) -> Uuid {
            Uuid::nil()
        }
    }

    #[test]
    fn soft_deletion_follows_aip_164() {
        use crate::error::Reason;
        let deleted = || Some(Stored(Some(Utc::now())));
        let live = || Some(Stored(None));
        let (delete, undelete) = (
            SoftDeletion {
                name: "x",
                etag: "",
                delete: true,
            },
            SoftDeletion {
                name: "x",
                etag: "",
                delete: false,
            },
        );
        assert!(delete.check(live()).is_ok());
        assert!(undelete.check(deleted()).is_ok());
        let reason = |r: Result<Stored>| r.err().map(|e| e.reason);
        assert_eq!(reason(delete.check(None)), Some(Reason::NotFound));
        assert_eq!(reason(delete.check(deleted())), Some(Reason::NotFound));
        assert_eq!(reason(undelete.check(live())), Some(Reason::AlreadyExists));
        let stale = SoftDeletion {
            etag: "stale",
            ..delete
        };
        assert_eq!(reason(stale.check(live())), Some(Reason::EtagMismatch));
    }
}
