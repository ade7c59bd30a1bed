//! Etags (AIP-154): opaque, replaced on every update, checked when the caller sends one.

use uuid::Uuid;

use crate::error::{Error, Result};

/// The etag string of a stored etag value.
pub fn format(etag: Uuid) -> String {
    etag.simple().to_string()
}

/// Refuses the call when the caller sent an etag that is not the current one.
pub fn check(requested: &str, current: Uuid, resource: &str) -> Result<()> {
    if requested.is_empty() || requested == format(current) {
        Ok(())
    } else {
        Err(Error::etag_mismatch(resource))
    }
}
