//! List mechanics shared by every List RPC (AIP-132, AIP-158): page sizes, `order_by`,
//! keyset cursors and opaque, tamper-evident page tokens bound to the query that made them.
//!
//! A page token is `base64url(json(cursor) || hmac)`. The HMAC key is kept in the database,
//! so every replica accepts every other replica's tokens, also across restarts.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Postgres, QueryBuilder};

use crate::aip::filter::{self, Condition, FilterField};
use crate::error::{Error, Reason, Result};

/// Page size when the request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Larger requests are silently capped (AIP-158).
pub const MAX_PAGE_SIZE: i64 = 1000;
/// Bytes of the HMAC kept in a token: 128 bits is beyond guessing.
const MAC_LEN: usize = 16;

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

    fn push_bind(&self, qb: &mut QueryBuilder<Postgres>) {
        match self {
            KeyValue::Text(text) => qb.push_bind(text.clone()),
            KeyValue::Time(micros) => {
                qb.push_bind(DateTime::<Utc>::from_timestamp_micros(*micros).unwrap_or_default())
            }
            KeyValue::Date(date) => qb.push_bind(*date),
            KeyValue::Int(int) => qb.push_bind(*int),
        };
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
        let fingerprint = fingerprint(spec.collection, request, &order);
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

    fn decode(&self, token: &str, fingerprint: &str, order: &[SortKey]) -> Result<Vec<KeyValue>> {
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

fn fingerprint(collection: &str, request: &ListRequest<'_>, order: &[SortKey]) -> String {
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

impl ListQuery {
    /// Appends ` AND <filter> AND <after the cursor>` to a WHERE clause.
    pub fn push_conditions(&self, qb: &mut QueryBuilder<Postgres>) {
        if let Some(filter) = &self.filter {
            qb.push(" AND ");
            filter.push_sql(qb);
        }
        if let Some(after) = &self.after {
            qb.push(" AND ");
            push_keyset(qb, &self.order, after);
        }
    }

    /// Appends ` AND <filter>` only: the condition `total_size` counts.
    pub fn push_filter(&self, qb: &mut QueryBuilder<Postgres>) {
        if let Some(filter) = &self.filter {
            qb.push(" AND ");
            filter.push_sql(qb);
        }
    }

    /// Appends ` ORDER BY … LIMIT n+1`: the extra row tells whether another page follows.
    pub fn push_order_and_limit(&self, qb: &mut QueryBuilder<Postgres>) {
        qb.push(" ORDER BY ");
        for (i, key) in self.order.iter().enumerate() {
            if i > 0 {
                qb.push(", ");
            }
            qb.push(key.column);
            qb.push(if key.descending { " DESC" } else { " ASC" });
        }
        // A literal (an integer, never text): bound as a parameter, PostgreSQL cannot see the
        // limit when it weighs a generic plan, estimates it worse than the custom ones, and
        // then plans every execution again (a sixth of its time per page, perf).
        qb.push(format_args!(" LIMIT {}", self.limit + 1));
    }
}

/// Rows strictly after the cursor in the given order. A row comparison when all keys run
/// the same way (PostgreSQL walks the index with it); the expanded form otherwise.
fn push_keyset(qb: &mut QueryBuilder<Postgres>, order: &[SortKey], after: &[KeyValue]) {
    let descending = order[0].descending;
    if order.iter().all(|k| k.descending == descending) {
        qb.push("(");
        push_list(qb, order.iter().map(|k| k.column));
        qb.push(if descending { ") < (" } else { ") > (" });
        for (i, value) in after.iter().enumerate() {
            if i > 0 {
                qb.push(", ");
            }
            value.push_bind(qb);
        }
        qb.push(")");
        return;
    }
    qb.push("(");
    for (i, key) in order.iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push("(");
        for (earlier, value) in order[..i].iter().zip(after) {
            qb.push(earlier.column);
            qb.push(" = ");
            value.push_bind(qb);
            qb.push(" AND ");
        }
        qb.push(key.column);
        qb.push(if key.descending { " < " } else { " > " });
        after[i].push_bind(qb);
        qb.push(")");
    }
    qb.push(")");
}

fn push_list<'s>(qb: &mut QueryBuilder<Postgres>, items: impl Iterator<Item = &'s str>) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push(item);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: ListSpec = ListSpec {
        collection: "test",
        filter_fields: &[],
        personal_filter_fields: &[],
        sort_fields: &[
            SortField {
                path: "create_time",
                column: "create_time",
            },
            SortField {
                path: "display_name",
                column: "display_name",
            },
        ],
        tiebreak: SortField {
            path: "name",
            column: "id",
        },
        default_order_by: "create_time",
    };

    struct Row(&'static str);
    impl Keyed for Row {
        fn key_value(&self, path: &str) -> KeyValue {
            KeyValue::Text(format!("{path}={}", self.0))
        }
    }

    #[test]
    fn page_sizes_follow_aip_158() {
        assert_eq!(page_size(0).unwrap(), 50);
        assert_eq!(page_size(7).unwrap(), 7);
        assert_eq!(page_size(5000).unwrap(), 1000);
        assert_eq!(page_size(-1).unwrap_err().violations[0].field, "page_size");
    }

    #[test]
    fn order_by_ends_with_the_tiebreak() {
        let keys = parse_order_by("display_name desc", &SPEC).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys[0].descending);
        assert_eq!(keys[1].column, "id");
        assert!(parse_order_by("nope", &SPEC).is_err());
        assert!(parse_order_by("display_name sideways", &SPEC).is_err());
        assert!(parse_order_by("name, name", &SPEC).is_err());
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering_and_other_queries() {
        let tokens = PageTokens::new(&[7; 32]);
        let request = ListRequest {
            page_size: 2,
            ..Default::default()
        };
        let query = tokens.prepare(&SPEC, &request).unwrap();
        let token = tokens.next_token(&query, &Row("a"));

        let next = ListRequest {
            page_token: &token,
            ..request
        };
        assert_eq!(
            tokens.prepare(&SPEC, &next).unwrap().after.unwrap().len(),
            2
        );

        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let bad = ListRequest {
            page_token: &tampered,
            ..request
        };
        assert_eq!(
            tokens.prepare(&SPEC, &bad).unwrap_err().reason,
            Reason::InvalidPageToken
        );

        let other = ListRequest {
            page_token: &token,
            order_by: "display_name",
            ..request
        };
        assert_eq!(
            tokens.prepare(&SPEC, &other).unwrap_err().reason,
            Reason::InvalidPageToken
        );

        let foreign = PageTokens::new(&[8; 32]);
        assert_eq!(
            foreign.prepare(&SPEC, &next).unwrap_err().reason,
            Reason::InvalidPageToken
        );

        let garbage = ListRequest {
            page_token: "garbage!",
            ..request
        };
        assert_eq!(
            tokens.prepare(&SPEC, &garbage).unwrap_err().reason,
            Reason::InvalidPageToken
        );
    }

    #[test]
    fn keyset_uses_a_row_comparison_when_directions_agree() {
        let order = parse_order_by("create_time", &SPEC).unwrap();
        let mut qb = QueryBuilder::<Postgres>::new("");
        push_keyset(
            &mut qb,
            &order,
            &[KeyValue::Int(1), KeyValue::Text("x".into())],
        );
        assert_eq!(qb.sql().as_str(), "(create_time, id) > ($1, $2)");

        let order = parse_order_by("create_time desc", &SPEC).unwrap();
        let mut qb = QueryBuilder::<Postgres>::new("");
        push_keyset(
            &mut qb,
            &order,
            &[KeyValue::Int(1), KeyValue::Text("x".into())],
        );
        assert_eq!(
            qb.sql().as_str(),
            "((create_time < $1) OR (create_time = $2 AND id > $3))"
        );
    }
}
