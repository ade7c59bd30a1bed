//! `request_id` idempotency (AIP-155): what identifies a create so a replay can be
//! recognised. The store keeps the first response under this key. A request id is unique per
//! calling agency (AIP-155: per client), so two agencies that pick the same id never see or
//! block each other's creates.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{Error, Result};

/// Identifies one create request: its UUID plus what it asked for.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The calling agency (`Caller::agency`): ids of different agencies never meet.
    pub agency: String,
    pub request_id: Uuid,
    /// Full gRPC method, e.g. `/observer_registry.v1.ElectionService/CreateElection`.
    pub method: &'static str,
    /// SHA-256 of the encoded request: a reused id with a different request is refused.
    pub fingerprint: Vec<u8>,
}

/// The key of a request, or `None` when the caller sent no `request_id`.
pub fn key<M: prost::Message>(
    caller: &Caller,
    request_id: &str,
    method: &'static str,
    request: &M,
) -> Result<Option<IdempotencyKey>> {
    if request_id.is_empty() {
        return Ok(None);
    }
    let request_id = Uuid::try_parse(request_id).map_err(|_| {
        Error::invalid(
            "request_id",
            format!("`{request_id}` is not a UUID (e.g. 7f1c0c2e-3b1a-4c8e-9f61-0a7d2f4b9e11)"),
        )
    })?;
    Ok(Some(IdempotencyKey {
        agency: caller.agency.clone(),
        request_id,
        method,
        fingerprint: Sha256::digest(request.encode_to_vec()).to_vec(),
    }))
}
