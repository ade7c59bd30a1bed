//! List mechanics shared by every List RPC (AIP-132, AIP-158): page sizes, `order_by`,
//! keyset cursors and opaque, tamper-evident page tokens bound to the query that made them.
//!
//! A page token is `base64url(json(cursor) || hmac)`. The HMAC key is kept in the database,
//! so every replica accepts every other replica's tokens, also across restarts.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aip::filter::{self, Condition, FilterField};
use crate::error::{Error, Reason, Result};

mod sql;
#[cfg(test)]
mod tests;
mod token;

pub use token::PageTokens;

/// Page size when the request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Larger requests are silently capped (AIP-158).
pub const MAX_PAGE_SIZE: i64 = 1000;

/// A field a list can be ordered by. Orderable columns are NOT NULL, so keyset comparison
/// never meets NULL.
#[derive(Debug, Clone, Copy)]
pub struct SortField {
    /// Field path as the client writes it, e.g. `create_time`.
    pub path: &'static str,
    /// Trusted SQL expression.
    pub column: &'static str,
}

/// What a list of one resource can be filtered and ordered by.
#[derive(Debug)]
pub struct ListSpec {
    /// Names the query in page-token fingerprints, e.g. the full method name.
    pub collection: &'static str,
    pub filter_fields: &'static [FilterField],
    /// Personal-data fields: filterable only by callers allowed to read personal data.
    pub personal_filter_fields: &'static [FilterField],
    pub sort_fields: &'static [SortField],
    /// The unique key that ends every ordering, so that the order is total.
    pub tiebreak: SortField,
    /// Order when the request gives none.
    pub default_order_by: &'static str,
}

/// One field of the effective ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub path: &'static str,
    pub column: &'static str,
    pub descending: bool,
}

/// A value of a sort key, as carried in a page token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyValue {
    #[serde(rename = "s")]
    Text(String),
    /// Microseconds since the epoch: PostgreSQL's own precision.
    #[serde(rename = "t")]
    Time(i64),
    #[serde(rename = "d")]
    Date(NaiveDate),
    #[serde(rename = "i")]
    Int(i64),
}

impl KeyValue {
    pub fn time(time: DateTime<Utc>) -> Self {
        KeyValue::Time(time.timestamp_micros())
    }
}

/// A row that can tell the value of each of its sort keys, to build the next cursor.
pub trait Keyed {
    fn key_value(&self, path: &str) -> KeyValue;
}

/// The list fields common to every List request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListRequest<'a> {
    pub parent: &'a str,
    pub page_size: i32,
    pub page_token: &'a str,
    pub filter: &'a str,
    pub order_by: &'a str,
    pub show_deleted: bool,
    /// Whether the caller may read, and so filter on, personal data.
    pub personal_data: bool,
}

/// A validated List request, ready for the store.
#[derive(Debug)]
pub struct ListQuery {
    pub limit: i64,
    pub filter: Option<Condition>,
    pub order: Vec<SortKey>,
    /// Keyset position: the sort-key values of the last row of the previous page.
    pub after: Option<Vec<KeyValue>>,
    pub show_deleted: bool,
    fingerprint: String,
}

impl PageTokens {
    /// Validates the list fields of a request against `spec`.
    pub fn prepare(&self, spec: &ListSpec, request: &ListRequest<'_>) -> Result<ListQuery> {
        let limit = page_size(request.page_size)?;
        let filter = self.parse_filter(spec, request)?;
        let order_by = if request.order_by.trim().is_empty() {
            spec.default_order_by
        } else {
            request.order_by
        };
        let order = parse_order_by(order_by, spec)?;
        let fingerprint = token::fingerprint(spec.collection, request, &order);
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(self.decode(request.page_token, &fingerprint, &order)?)
        };
        Ok(ListQuery {
            limit,
            filter,
            order,
            after,
            show_deleted: request.show_deleted,
            fingerprint,
        })
    }

    /// The filter, on the fields this caller may filter by: a filter on personal data from a
    /// caller who may not read it is PERMISSION_DENIED, not a hint that the field exists.
    fn parse_filter(
        &self,
        spec: &ListSpec,
        request: &ListRequest<'_>,
    ) -> Result<Option<Condition>> {
        let all_fields = || -> Vec<FilterField> {
            spec.filter_fields
                .iter()
                .chain(spec.personal_filter_fields)
                .copied()
                .collect()
        };
        if request.personal_data && !spec.personal_filter_fields.is_empty() {
            return filter::parse(request.filter, &all_fields())
                .map_err(|e| Error::invalid_field(Reason::InvalidFilter, "filter", e.to_string()));
        }
        filter::parse(request.filter, spec.filter_fields).map_err(|e| {
            if !spec.personal_filter_fields.is_empty()
                && filter::parse(request.filter, &all_fields()).is_ok()
            {
                Error::new(
                    Reason::PermissionDenied,
                    "filtering on personal data needs the personal-data-reader role",
                )
            } else {
                Error::invalid_field(Reason::InvalidFilter, "filter", e.to_string())
            }
        })
    }
}

/// AIP-158: 0 → default, above the maximum → the maximum, negative → INVALID_ARGUMENT.
pub fn page_size(requested: i32) -> Result<i64> {
    match requested {
        n if n < 0 => Err(Error::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

/// Parses AIP-132 `order_by` ("voting_day desc, display_name") and ends it with the tiebreak.
pub fn parse_order_by(order_by: &str, spec: &ListSpec) -> Result<Vec<SortKey>> {
    let invalid = |why: String| Error::invalid("order_by", why);
    let mut keys: Vec<SortKey> = Vec::new();
    for clause in order_by.split(',') {
        let words: Vec<&str> = clause.split_whitespace().collect();
        let (path, descending) = match words.as_slice() {
            [path] => (*path, false),
            [path, dir] if dir.eq_ignore_ascii_case("asc") => (*path, false),
            [path, dir] if dir.eq_ignore_ascii_case("desc") => (*path, true),
            _ => {
                return Err(invalid(format!(
                    "`{}` is not `field [asc|desc]`",
                    clause.trim()
                )));
            }
        };
        let field = std::iter::once(&spec.tiebreak)
            .chain(spec.sort_fields)
            .find(|f| f.path == path)
            .ok_or_else(|| {
                let known: Vec<&str> = std::iter::once(spec.tiebreak.path)
                    .chain(spec.sort_fields.iter().map(|f| f.path))
                    .collect();
                invalid(format!(
                    "cannot order by `{path}` (orderable: {})",
                    known.join(", ")
                ))
            })?;
        if keys.iter().any(|k| k.path == path) {
            return Err(invalid(format!("`{path}` appears twice")));
        }
        keys.push(SortKey {
            path: field.path,
            column: field.column,
            descending,
        });
    }
    if !keys.iter().any(|k| k.path == spec.tiebreak.path) {
        keys.push(SortKey {
            path: spec.tiebreak.path,
            column: spec.tiebreak.column,
            descending: false,
        });
    }
    Ok(keys)
}

/// One page of results, ready to encode.
#[derive(Debug)]
pub struct Page<R> {
    pub items: Vec<R>,
    pub next_page_token: String,
    pub total_size: i64,
}

impl<R: Keyed> Page<R> {
    /// Cuts the extra row fetched by `LIMIT n+1` and makes the next token from the last row.
    pub fn from_rows(
        tokens: &PageTokens,
        query: &ListQuery,
        mut rows: Vec<R>,
        total_size: i64,
    ) -> Self {
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let next_page_token = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|last| tokens.next_token(query, last))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Page {
            items: rows,
            next_page_token,
            total_size,
        }
    }
}
