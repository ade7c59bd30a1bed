//! Call helpers: get-or-create, stable request ids, readable errors, timestamps.

use std::future::Future;

use anyhow::Context;
use chrono::{DateTime, Utc};
use prost::Message;
use prost_types::Timestamp;
use tonic::{Code, Response, Status};

use crate::client::ErrorDetails;

/// Whether a resource was made by this run or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Present,
}

/// Get → NOT_FOUND → Create. ALREADY_EXISTS on create means another run won the race, so
/// the resource is read again and counts as present.
pub async fn get_or_create<T, G, GF, C, CF>(
    what: &str,
    get: G,
    create: C,
) -> anyhow::Result<(T, Outcome)>
where
    G: Fn() -> GF,
    GF: Future<Output = Result<Response<T>, Status>>,
    C: FnOnce() -> CF,
    CF: Future<Output = Result<Response<T>, Status>>,
{
    match get().await {
        Ok(found) => return Ok((found.into_inner(), Outcome::Present)),
        Err(status) if status.code() == Code::NotFound => {}
        Err(status) => return Err(failed(&format!("reading {what}"), status)),
    }
    match create().await {
        Ok(created) => Ok((created.into_inner(), Outcome::Created)),
        Err(status) if status.code() == Code::AlreadyExists => get()
            .await
            .map(|found| (found.into_inner(), Outcome::Present))
            .map_err(|status| failed(&format!("reading {what}"), status)),
        Err(status) => Err(failed(&format!("creating {what}"), status)),
    }
}

/// A stable `request_id` for a create: a UUID (v5) of the method and the request's content
/// (sent with an empty `request_id`). The same create always carries the same id, and a
/// changed one a new id, which the server would otherwise refuse as reused.
pub fn request_id(method: &str, request: &impl Message) -> String {
    let mut name = format!("observer-registry demo {method}\n").into_bytes();
    name.extend(request.encode_to_vec());
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &name).to_string()
}

/// A failed call as one line: what was being done, the gRPC code, the reason, the message.
pub fn failed(what: &str, status: Status) -> anyhow::Error {
    let reason = status
        .reason()
        .map(|reason| format!(" / {reason}"))
        .unwrap_or_default();
    anyhow::anyhow!(
        "{what} failed: {:?}{reason}: {}",
        status.code(),
        status.message()
    )
}

pub fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

pub fn timestamp(rfc3339: &str) -> anyhow::Result<Timestamp> {
    let time = DateTime::parse_from_rfc3339(rfc3339)
        .with_context(|| format!("`{rfc3339}` is not an RFC 3339 instant"))?;
    Ok(to_timestamp(time.with_timezone(&Utc)))
}

pub fn to_timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        // Below 10^9, so it fits.
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}
