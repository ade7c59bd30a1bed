//! AIP-160 `filter` strings compiled to parameterised SQL for List RPCs.
//!
//! Parsing is left to the `aip-160` crate; this module maps its syntax tree
//! onto an allow-list of fields, so clients can filter only on the columns a
//! handler exposes, and every literal reaches Postgres as a bind parameter.

//! The filter is parsed into a [`Condition`] (`compile`: the allow-list, literals checked
//! against each field's type) and the condition written as SQL (`sql`), so each half can
//! be read and tested alone.

use chrono::{DateTime, NaiveDate, Utc};

/// Returns a [`FilterError`] built like `format!`.
macro_rules! refuse {
    ($($message:tt)+) => {
        return Err(FilterError(format!($($message)+)))
    };
}

mod compile;
mod sql;
#[cfg(test)]
mod tests;

pub use compile::parse;

/// How a filterable field is typed and stored; decides which literals and
/// operators a client may use with it.
#[derive(Debug, Clone, Copy)]
pub enum FieldType {
    /// Text compared as a string. `=` with a trailing `*` is a prefix match
    /// (the AIP-160 wildcard).
    Text,
    /// One of the listed enum value names, stored as that text. Only `=`
    /// and `!=`, because the names have no meaningful order.
    Enum(&'static [&'static str]),
    /// An RFC 3339 timestamp. It must be quoted, since the parser ends
    /// unquoted text at `:`.
    Timestamp,
    /// A calendar date written `YYYY-MM-DD`.
    Date,
    /// A signed 64-bit integer.
    Integer,
    /// `true` or `false`; only `=` and `!=`.
    Bool,
    /// A resource name such as `organizations/osce`. The function maps it to
    /// the stored key and returns `None` for a malformed name. Only `=` and
    /// `!=`, because keys have no meaningful order for clients.
    Reference(fn(&str) -> Option<String>),
    /// Membership in a `text[]` column of resource keys, e.g. a meeting's delegations:
    /// `delegation = "elections/e/delegations/d"` keeps rows whose array holds `d`. The
    /// function maps the name to the key as for [`FieldType::Reference`]. Only `=` and `!=`.
    Member(fn(&str) -> Option<String>),
    /// Text stored in a canonical form, e.g. a travel document number: the literal is put in
    /// that form before it is compared (`"ab 123-4567"` finds `AB1234567`); `None` for a
    /// literal that has none. Only `=` and `!=`.
    Canonical(fn(&str) -> Option<String>),
}

/// A field clients may filter on, and the SQL that reads it.
#[derive(Debug, Clone, Copy)]
pub struct FilterField {
    /// The path clients write, e.g. `accreditation.state`.
    pub path: &'static str,
    /// The SQL expression for the field, e.g. `o.accreditation_state`. It is
    /// pasted into the query, so it must come from code, never from input.
    pub column: &'static str,
    /// How literals for the field are read.
    pub field_type: FieldType,
    /// Whether the column can be NULL; `!=` then keeps NULL rows, since an
    /// unset field is not equal to any value.
    pub nullable: bool,
}

/// A literal converted for binding as a SQL parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Timestamp(DateTime<Utc>),
    Date(NaiveDate),
    Integer(i64),
    Bool(bool),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A compiled filter: a tree of comparisons on trusted columns with
/// converted values, ready to be written as SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare {
        column: &'static str,
        op: Op,
        value: Value,
        nullable: bool,
    },
    /// The array `column` holds `key` (or does not, when `negated`).
    Contains {
        column: &'static str,
        key: String,
        negated: bool,
    },
    /// `column` starts with `prefix`, matched literally.
    Prefix {
        column: &'static str,
        prefix: String,
    },
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

/// Why a filter was refused. The message is meant for the client, e.g. as
/// the text of an `INVALID_ARGUMENT` status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);
