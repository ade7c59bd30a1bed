//! The idempotency table: the first response of every create that carried a `request_id`.

use std::sync::LazyLock;
use std::time::Duration;

use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::aip::request_id::IdempotencyKey;
use crate::error::{Error, Result};

/// The statement that claims a key, its parameters numbered from `$first`: agency, request
/// id, method, fingerprint; a row is inserted only by the first call. Also the claim of the
/// statements that read what a create needs while claiming
/// ([`crate::store::elections::get_claiming`], [`crate::store::registration::claim_and_load`]).
pub(crate) fn claim_statement(first: usize) -> String {
    let [agency, request_id, method, fingerprint] = [0, 1, 2, 3].map(|i| first + i);
    format!(
        "INSERT INTO request_ids (agency, request_id, method, fingerprint, response) \
         VALUES (${agency}, ${request_id}, ${method}, ${fingerprint}, '') \
         ON CONFLICT (agency, request_id) DO NOTHING"
    )
}

/// Claims the key in the caller's transaction. `None`: this is the first call, go on and
/// [`record`] the response before committing. `Some`: the response of the first call.
///
/// A concurrent call with the same key (same agency, same id) blocks here on the primary key
/// until the first one commits (then it reads its response) or rolls back (then it becomes
/// the first call). Another agency's call with the same id has a key of its own.
pub async fn claim<R: Message + Default>(
    conn: &mut PgConnection,
    key: Option<&IdempotencyKey>,
) -> Result<Option<R>> {
    let Some(key) = key else { return Ok(None) };
    static CLAIM: LazyLock<String> = LazyLock::new(|| claim_statement(1));
    let inserted = sqlx::query(sqlx::AssertSqlSafe(CLAIM.as_str()))
        .bind(&key.agency)
        .bind(key.request_id)
        .bind(key.method)
        .bind(&key.fingerprint)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if inserted == 1 {
        return Ok(None);
    }
    first_response(conn, key).await.map(Some)
}

/// The response of the first call with `key`, which an earlier statement of this
/// transaction found claimed; INVALID_ARGUMENT when that call asked for something else.
pub async fn first_response<R: Message + Default>(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
) -> Result<R> {
    let first: FirstCall = sqlx::query_as(
        "SELECT agency, request_id, method, fingerprint, response FROM request_ids \
         WHERE agency = $1 AND request_id = $2",
    )
    .bind(&key.agency)
    .bind(key.request_id)
    .fetch_one(&mut *conn)
    .await?;
    answer(key, &first)
}

/// What the first call with a key left.
#[derive(sqlx::FromRow)]
pub struct FirstCall {
    pub agency: String,
    pub request_id: Uuid,
    pub method: String,
    pub fingerprint: Vec<u8>,
    pub response: Vec<u8>,
}

/// The first calls made with any of `keys` that committed, in one statement.
pub async fn first_calls(
    conn: &mut PgConnection,
    keys: &[&IdempotencyKey],
) -> Result<Vec<FirstCall>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let agencies: Vec<&str> = keys.iter().map(|k| k.agency.as_str()).collect();
    let request_ids: Vec<Uuid> = keys.iter().map(|k| k.request_id).collect();
    // A lookup by primary key per key (`OFFSET 0` keeps it a nested loop): PostgreSQL keeps a
    // generic plan, and one made while the table was small scanned all of it, and went on
    // doing so as it grew (nothing replans it without an ANALYZE).
    Ok(sqlx::query_as(
        "SELECT r.* FROM unnest($1::text[], $2::uuid[]) AS k(agency, request_id) \
         CROSS JOIN LATERAL (SELECT agency, request_id, method, fingerprint, response \
           FROM request_ids WHERE agency = k.agency AND request_id = k.request_id OFFSET 0) AS r",
    )
    .bind(agencies)
    .bind(request_ids)
    .fetch_all(conn)
    .await?)
}

/// The answer to a call with `key` that `first` made first: its response, or
/// INVALID_ARGUMENT when it asked for something else.
pub fn answer<R: Message + Default>(key: &IdempotencyKey, first: &FirstCall) -> Result<R> {
    if first.method != key.method || first.fingerprint != key.fingerprint {
        return Err(Error::invalid(
            "request_id",
            "this request_id was already used for a different request",
        ));
    }
    R::decode(first.response.as_slice()).map_err(Error::internal)
}

/// Stores the response of a first call under its key, in the same transaction as the change.
pub async fn record<R: Message>(
    conn: &mut PgConnection,
    key: Option<&IdempotencyKey>,
    response: &R,
) -> Result<()> {
    let Some(key) = key else { return Ok(()) };
    sqlx::query("UPDATE request_ids SET response = $3 WHERE agency = $1 AND request_id = $2")
        .bind(&key.agency)
        .bind(key.request_id)
        .bind(response.encode_to_vec())
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets keys older than `retention`; returns how many.
pub async fn purge(conn: &mut PgConnection, retention: Duration) -> Result<u64> {
    let seconds = retention.as_secs_f64();
    let purged = sqlx::query(
        "DELETE FROM request_ids WHERE create_time < now() - make_interval(secs => $1)",
    )
    .bind(seconds)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(purged)
}
