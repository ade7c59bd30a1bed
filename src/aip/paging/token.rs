//! Page tokens: the cursor of the next page, bound to the query that made it and sealed
//! with an HMAC, so a client can neither forge a position nor reuse it for another query.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{KeyValue, Keyed, ListQuery, ListRequest, SortKey};
use crate::error::{Error, Reason, Result};

/// Bytes of the HMAC kept in a token: 128 bits is beyond guessing.
const MAC_LEN: usize = 16;

#[derive(Serialize, Deserialize)]
struct Cursor {
    #[serde(rename = "q")]
    fingerprint: String,
    #[serde(rename = "k")]
    last: Vec<KeyValue>,
}

/// Signs and checks page tokens.
#[derive(Clone)]
pub struct PageTokens {
    key: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

impl PageTokens {
    pub fn new(key: &[u8]) -> Self {
        PageTokens { key: key.into() }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    /// The token for the page after `last`, the last row of the current page.
    pub fn next_token(&self, query: &ListQuery, last: &impl Keyed) -> String {
        let cursor = Cursor {
            fingerprint: query.fingerprint.clone(),
            last: query.order.iter().map(|k| last.key_value(k.path)).collect(),
        };
        self.seal(serde_json::to_vec(&cursor).unwrap_or_default())
    }

    /// `body` with a MAC, URL-safe: a token only this service (sharing the key) can issue.
    pub fn seal(&self, mut body: Vec<u8>) -> String {
        let mut mac = self.mac();
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes()[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(body)
    }

    /// The body of a sealed token, if this service issued it unaltered.
    pub fn open(&self, token: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() <= MAC_LEN {
            return None;
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_truncated_left(tag).ok()?;
        Some(body.to_vec())
    }

    pub(super) fn decode(
        &self,
        token: &str,
        fingerprint: &str,
        order: &[SortKey],
    ) -> Result<Vec<KeyValue>> {
        let invalid = |why: &str| Error::invalid_field(Reason::InvalidPageToken, "page_token", why);
        let body = self
            .open(token)
            .ok_or_else(|| invalid("not a page token issued by this service, or altered"))?;
        let cursor: Cursor = serde_json::from_slice(&body)
            .map_err(|_| invalid("not a page token issued by this service"))?;
        if cursor.fingerprint != fingerprint || cursor.last.len() != order.len() {
            return Err(invalid(
                "the page token belongs to a different query: parent, filter, order_by and \
                 show_deleted must stay the same while paging",
            ));
        }
        Ok(cursor.last)
    }
}

/// Names the query a token belongs to: what must not change while paging.
pub(super) fn fingerprint(
    collection: &str,
    request: &ListRequest<'_>,
    order: &[SortKey],
) -> String {
    let mut hash = Sha256::new();
    for part in [collection, request.parent, request.filter.trim()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    for key in order {
        hash.update(key.path.as_bytes());
        hash.update(if key.descending { b"-" } else { b"+" });
    }
    hash.update([u8::from(request.show_deleted)]);
    let digest = hash.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}
