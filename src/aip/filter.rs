//! AIP-160 `filter` strings compiled to parameterised SQL for List RPCs.
//!
//! Parsing is left to the `aip-160` crate; this module maps its syntax tree
//! onto an allow-list of fields, so clients can filter only on the columns a
//! handler exposes, and every literal reaches Postgres as a bind parameter.

use aip_160::{Arg, Comparable, Comparator, Expression, Function, Restriction};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, QueryBuilder};

/// Returns a [`FilterError`] built like `format!`.
macro_rules! refuse {
    ($($message:tt)+) => {
        return Err(FilterError(format!($($message)+)))
    };
}

/// Longest filter accepted, so a client cannot make us parse megabytes.
const MAX_FILTER_LEN: usize = 2048;

/// Parenthesis and function nesting allowed by the parser. It also bounds
/// the recursion in this module, which follows the parsed tree.
const MAX_DEPTH: usize = 8;

const TIMESTAMP_EXPECTED: &str = "an RFC 3339 timestamp in quotes, e.g. \"2024-05-01T12:00:00Z\"";

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

/// Compiles `filter` against the fields a List RPC allows. An empty or blank
/// filter is `Ok(None)`: it matches everything.
///
/// # Errors
///
/// A [`FilterError`] for a filter that is too long, too deep, not AIP-160,
/// or uses a field, operator, value or construct that is not supported.
pub fn parse(filter: &str, fields: &[FilterField]) -> Result<Option<Condition>, FilterError> {
    if filter.len() > MAX_FILTER_LEN {
        refuse!(
            "filter is too long ({} bytes; the limit is {MAX_FILTER_LEN})",
            filter.len()
        );
    }
    let parsed = aip_160::parse_filter_with_max_depth(filter, MAX_DEPTH)
        .map_err(|error| syntax_error(filter, error))?;
    parsed
        .expression
        .map(|expression| Compiler { fields }.expression(&expression))
        .transpose()
}

/// Rewrites the parser's error with the text near the offset, since clients
/// do not count bytes.
fn syntax_error(filter: &str, error: aip_160::FilterError) -> FilterError {
    let message = match error {
        aip_160::FilterError::Syntax { offset, message } => {
            let rest = filter.get(offset..).unwrap_or("");
            let near: String = rest.chars().take(20).collect();
            // A stray `:` is most likely an unquoted timestamp.
            let hint = if near.starts_with(':') && message == "unexpected input" {
                " (quote values that contain `:`, such as timestamps)"
            } else {
                ""
            };
            if near.is_empty() {
                format!("syntax error at end of filter: {message}")
            } else {
                format!("syntax error at byte {offset} near `{near}`: {message}{hint}")
            }
        }
        aip_160::FilterError::TooDeep { limit } => {
            format!("filter is nested too deeply (at most {limit} levels of parentheses)")
        }
        // The error enum is non-exhaustive; the parser returns only the above.
        other => format!("invalid filter: {other}"),
    };
    FilterError(message)
}

/// Walks the parsed tree, checking it against the allowed fields.
struct Compiler<'f> {
    fields: &'f [FilterField],
}

impl<'f> Compiler<'f> {
    fn expression(&self, expression: &Expression) -> Result<Condition, FilterError> {
        match expression {
            // AIP-160 leaves whitespace-separated terms to the service; with
            // exact matching they mean AND.
            Expression::And(children) | Expression::Sequence(children) => {
                Ok(Condition::And(self.all(children)?))
            }
            Expression::Or(children) => Ok(Condition::Or(self.all(children)?)),
            Expression::Not(inner) => Ok(Condition::Not(Box::new(self.expression(inner)?))),
            Expression::Restriction(restriction) => self.restriction(restriction),
            Expression::Global(Comparable::Function(function)) => Err(function_error(function)),
            Expression::Global(Comparable::Member(member)) => Err(FilterError(format!(
                "bare term `{member}` is not supported: free-text search is not available; \
                 use a comparison such as `field = \"value\"` and quote values that contain spaces"
            ))),
        }
    }

    fn all(&self, children: &[Expression]) -> Result<Vec<Condition>, FilterError> {
        children
            .iter()
            .map(|child| self.expression(child))
            .collect()
    }

    fn restriction(&self, restriction: &Restriction) -> Result<Condition, FilterError> {
        let field = self.field(&restriction.comparable)?;
        let op = match restriction.comparator {
            Comparator::Equal => Op::Eq,
            Comparator::NotEqual => Op::Ne,
            Comparator::LessThan => Op::Lt,
            Comparator::LessThanOrEqual => Op::Le,
            Comparator::GreaterThan => Op::Gt,
            Comparator::GreaterThanOrEqual => Op::Ge,
            Comparator::Has => {
                refuse!("operator `:` is not supported (in `{restriction}`); use `=` or `!=`")
            }
        };
        let literal = self.literal(field, &restriction.arg)?;
        compare(field, op, literal)
    }

    fn field(&self, comparable: &Comparable) -> Result<&'f FilterField, FilterError> {
        let member = match comparable {
            Comparable::Member(member) => member,
            Comparable::Function(function) => return Err(function_error(function)),
        };
        let Some(path) = member.field_path() else {
            refuse!("expected a field name on the left of a comparison, found `{member}`");
        };
        self.fields
            .iter()
            .find(|field| field.path == path)
            .ok_or_else(|| {
                let known = self.fields.iter().map(|field| field.path);
                let known = known.collect::<Vec<_>>().join(", ");
                FilterError(format!("unknown field `{path}` (filterable: {known})"))
            })
    }

    /// Returns the text of the right-hand side, which must be a literal.
    fn literal<'a>(&self, field: &FilterField, arg: &'a Arg) -> Result<&'a str, FilterError> {
        let path = field.path;
        let member = match arg {
            Arg::Comparable(Comparable::Member(member)) => member,
            Arg::Comparable(Comparable::Function(function)) => {
                return Err(function_error(function));
            }
            Arg::Composite(_) => refuse!(
                "the value for `{path}` must be a single literal, not a parenthesised \
                 expression or list (found `{arg}`)"
            ),
        };
        if !member.is_simple() {
            refuse!(
                "the value for `{path}` must be a literal, not a field path \
                 (found `{member}`; quote text that contains `.`)"
            );
        }
        // An unquoted value spelling a filterable field reads as a
        // field-to-field comparison; the field's own enum names are fine.
        if let aip_160::Value::Text(text) = &member.value
            && self.fields.iter().any(|other| other.path == text)
            && !matches!(field.field_type, FieldType::Enum(names) if names.contains(&text.as_str()))
        {
            refuse!(
                "comparing `{path}` with field `{member}` is not supported; \
                 quote `\"{member}\"` to compare with that text"
            );
        }
        Ok(member.value.as_str())
    }
}

fn function_error(function: &Function) -> FilterError {
    FilterError(format!(
        "function calls are not supported (found `{}(…)`)",
        function.name.join(".")
    ))
}

/// Converts the literal for the field's type and builds the comparison.
/// Quoting does not change a literal's meaning here, except that a quoted
/// value is never read as a field name.
fn compare(field: &FilterField, op: Op, text: &str) -> Result<Condition, FilterError> {
    let value = match field.field_type {
        FieldType::Text => {
            if let Some(prefix) = wildcard_prefix(field, op, text)? {
                return Ok(Condition::Prefix {
                    column: field.column,
                    prefix,
                });
            }
            Value::Text(text.to_owned())
        }
        FieldType::Enum(names) => {
            equality_only(field, op)?;
            if !names.contains(&text) {
                let expected = format!("one of {}", names.join(", "));
                return Err(invalid(field, text, &expected));
            }
            Value::Text(text.to_owned())
        }
        FieldType::Timestamp => DateTime::parse_from_rfc3339(text)
            .map(|time| Value::Timestamp(time.with_timezone(&Utc)))
            .map_err(|_| invalid(field, text, TIMESTAMP_EXPECTED))?,
        FieldType::Date => parse_date(text)
            .map(Value::Date)
            .ok_or_else(|| invalid(field, text, "a valid date written YYYY-MM-DD"))?,
        FieldType::Integer => text
            .parse()
            .map(Value::Integer)
            .map_err(|_| invalid(field, text, "an integer"))?,
        FieldType::Bool => {
            equality_only(field, op)?;
            match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(invalid(field, text, "true or false")),
            }
        }
        FieldType::Member(resolve) => {
            equality_only(field, op)?;
            let Some(key) = resolve(text) else {
                let noun = field.path.rsplit('.').next().unwrap_or(field.path);
                refuse!(
                    "`{text}` is not a valid {} name (for `{}`)",
                    noun.replace('_', " "),
                    field.path
                );
            };
            return Ok(Condition::Contains {
                column: field.column,
                key,
                negated: op == Op::Ne,
            });
        }
        FieldType::Reference(resolve) => {
            equality_only(field, op)?;
            let Some(key) = resolve(text) else {
                // `delegation.organization` → "organization".
                let noun = field.path.rsplit('.').next().unwrap_or(field.path);
                let noun = noun.replace('_', " ");
                refuse!("`{text}` is not a valid {noun} name (for `{}`)", field.path);
            };
            Value::Text(key)
        }
    };
    Ok(Condition::Compare {
        column: field.column,
        op,
        value,
        nullable: field.nullable,
    })
}

fn invalid(field: &FilterField, text: &str, expected: &str) -> FilterError {
    FilterError(format!(
        "invalid value `{text}` for `{}` (expected {expected})",
        field.path
    ))
}

fn equality_only(field: &FilterField, op: Op) -> Result<(), FilterError> {
    if !matches!(op, Op::Eq | Op::Ne) {
        refuse!(
            "operator `{}` is not supported for `{}` (only `=` and `!=`)",
            op.symbol(),
            field.path
        );
    }
    Ok(())
}

/// Reads AIP-160's `*` wildcard on a text value. Only a trailing `*` with
/// `=` is supported: it becomes an index-friendly prefix `LIKE`. Other uses
/// are refused rather than silently compared as a literal `*`.
fn wildcard_prefix(field: &FilterField, op: Op, text: &str) -> Result<Option<String>, FilterError> {
    if !text.starts_with('*') && !text.ends_with('*') {
        return Ok(None);
    }
    match (op, text.strip_suffix('*')) {
        (Op::Eq, Some(prefix)) if !prefix.starts_with('*') => Ok(Some(prefix.to_owned())),
        _ => refuse!(
            "`*` is only supported at the end of a value compared with `=` \
             (a prefix match), not in `{} {} {text}`",
            field.path,
            op.symbol()
        ),
    }
}

/// Accepts exactly `YYYY-MM-DD`: chrono's `%Y` alone would also take signs
/// and short years. chrono refuses impossible dates such as `2023-02-30`.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

impl Op {
    /// The operator as clients write it, for error messages.
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Op::Ne => "<>",
            other => other.symbol(),
        }
    }
}

impl Condition {
    /// Appends the condition as a parenthesised SQL boolean expression.
    /// Columns are trusted SQL from [`FilterField`]; every value is bound.
    pub fn push_sql(&self, qb: &mut QueryBuilder<Postgres>) {
        match self {
            Condition::Compare {
                column,
                op,
                value,
                nullable,
            } => {
                // `<>` is NULL for NULL rows, which would drop unset fields.
                let operator = match op {
                    Op::Ne if *nullable => "IS DISTINCT FROM",
                    _ => op.sql(),
                };
                qb.push("(").push(column).push(" ").push(operator).push(" ");
                value.push_bind(qb);
                qb.push(")");
            }
            // `@>` lets PostgreSQL use a GIN index on the array.
            Condition::Contains {
                column,
                key,
                negated,
            } => {
                qb.push(if *negated { "(NOT " } else { "(" });
                qb.push(column).push(" @> ARRAY[");
                qb.push_bind(key.clone());
                qb.push("]::text[])");
            }
            Condition::Prefix { column, prefix } => {
                qb.push("(").push(column).push(" LIKE ");
                qb.push_bind(format!("{}%", escape_like(prefix)));
                qb.push(")");
            }
            Condition::And(children) => push_joined(qb, children, " AND ", "TRUE"),
            Condition::Or(children) => push_joined(qb, children, " OR ", "FALSE"),
            // `NOT (x)` is NULL when `x` is, which would drop rows with unset
            // fields; `IS NOT TRUE` keeps them, so `NOT a = 1` agrees with
            // `a != 1` on nullable columns.
            Condition::Not(inner) => {
                qb.push("(");
                inner.push_sql(qb);
                qb.push(" IS NOT TRUE)");
            }
        }
    }
}

fn push_joined(qb: &mut QueryBuilder<Postgres>, children: &[Condition], joiner: &str, empty: &str) {
    qb.push("(");
    if children.is_empty() {
        qb.push(empty);
    }
    for (index, child) in children.iter().enumerate() {
        if index > 0 {
            qb.push(joiner);
        }
        child.push_sql(qb);
    }
    qb.push(")");
}

impl Value {
    fn push_bind(&self, qb: &mut QueryBuilder<Postgres>) {
        match self {
            Value::Text(text) => qb.push_bind(text.clone()),
            Value::Timestamp(time) => qb.push_bind(*time),
            Value::Date(date) => qb.push_bind(*date),
            Value::Integer(integer) => qb.push_bind(*integer),
            Value::Bool(boolean) => qb.push_bind(*boolean),
        };
    }
}

/// Escapes `LIKE` metacharacters with `\`, Postgres's default escape
/// character, so the client's prefix matches literally.
fn escape_like(text: &str) -> String {
    // The escape character itself goes first, so added escapes stay single.
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: &[&str] = &["PENDING", "ACCREDITED", "REJECTED", "REVOKED"];

    fn organization_key(name: &str) -> Option<String> {
        name.strip_prefix("organizations/")
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase()))
            .map(str::to_owned)
    }

    const FIELDS: &[FilterField] = &[
        FilterField {
            path: "display_name",
            column: "o.display_name",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "abbreviation",
            column: "o.abbreviation",
            field_type: FieldType::Text,
            nullable: true,
        },
        FilterField {
            path: "accreditation.state",
            column: "o.accreditation_state",
            field_type: FieldType::Enum(STATES),
            nullable: false,
        },
        FilterField {
            path: "create_time",
            column: "o.create_time",
            field_type: FieldType::Timestamp,
            nullable: false,
        },
        FilterField {
            path: "birth_date",
            column: "o.birth_date",
            field_type: FieldType::Date,
            nullable: true,
        },
        FilterField {
            path: "seats",
            column: "o.seats",
            field_type: FieldType::Integer,
            nullable: false,
        },
        FilterField {
            path: "active",
            column: "o.active",
            field_type: FieldType::Bool,
            nullable: false,
        },
        FilterField {
            path: "organization",
            column: "o.organization_id",
            field_type: FieldType::Reference(organization_key),
            nullable: true,
        },
    ];

    fn compile(filter: &str) -> Condition {
        match parse(filter, FIELDS) {
            Ok(Some(condition)) => condition,
            other => panic!("{filter:?} should compile, got {other:?}"),
        }
    }

    fn sql(filter: &str) -> String {
        let mut qb = QueryBuilder::<Postgres>::new("");
        compile(filter).push_sql(&mut qb);
        qb.sql().as_str().to_owned()
    }

    fn error(filter: &str) -> String {
        match parse(filter, FIELDS) {
            Err(FilterError(message)) => message,
            other => panic!("{filter:?} should fail, got {other:?}"),
        }
    }

    fn compare(column: &'static str, op: Op, value: Value, nullable: bool) -> Condition {
        Condition::Compare {
            column,
            op,
            value,
            nullable,
        }
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert_eq!(parse("", FIELDS), Ok(None));
        assert_eq!(parse(" \t\n ", FIELDS), Ok(None));
    }

    #[test]
    fn each_operator() {
        for (filter, op, expected) in [
            ("seats = 3", Op::Eq, "(o.seats = $1)"),
            ("seats != 3", Op::Ne, "(o.seats <> $1)"),
            ("seats < 3", Op::Lt, "(o.seats < $1)"),
            ("seats <= 3", Op::Le, "(o.seats <= $1)"),
            ("seats > 3", Op::Gt, "(o.seats > $1)"),
            ("seats >= 3", Op::Ge, "(o.seats >= $1)"),
        ] {
            assert_eq!(
                compile(filter),
                compare("o.seats", op, Value::Integer(3), false)
            );
            assert_eq!(sql(filter), expected, "{filter}");
        }
        assert_eq!(
            compile("seats>-2"),
            compare("o.seats", Op::Gt, Value::Integer(-2), false)
        );
    }

    #[test]
    fn values_for_each_type() {
        assert_eq!(
            compile(r#"display_name = "OSCE ODIHR""#),
            compare(
                "o.display_name",
                Op::Eq,
                Value::Text("OSCE ODIHR".into()),
                false
            )
        );
        // Numbers given for a text field are read as their text.
        assert_eq!(
            compile("abbreviation = 1.5"),
            compare("o.abbreviation", Op::Eq, Value::Text("1.5".into()), true)
        );
        let accredited = compare(
            "o.accreditation_state",
            Op::Ne,
            Value::Text("ACCREDITED".into()),
            false,
        );
        assert_eq!(compile("accreditation.state != ACCREDITED"), accredited);
        assert_eq!(
            compile(r#"accreditation.state != "ACCREDITED""#),
            accredited
        );
        let time = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            compile(r#"create_time >= "2024-05-01T12:00:00+02:00""#),
            compare("o.create_time", Op::Ge, Value::Timestamp(time), false)
        );
        assert_eq!(
            compile("birth_date < 2000-02-29"),
            compare(
                "o.birth_date",
                Op::Lt,
                Value::Date(NaiveDate::from_ymd_opt(2000, 2, 29).unwrap()),
                true
            )
        );
        assert_eq!(
            compile("active = false"),
            compare("o.active", Op::Eq, Value::Bool(false), false)
        );
        assert_eq!(
            compile(r#"organization = "organizations/osce""#),
            compare(
                "o.organization_id",
                Op::Eq,
                Value::Text("osce".into()),
                true
            )
        );
    }

    #[test]
    fn and_or_not_and_parentheses() {
        // AIP-160: OR binds tighter than AND.
        assert_eq!(
            sql("seats = 1 AND active = true OR display_name = x"),
            "((o.seats = $1) AND ((o.active = $2) OR (o.display_name = $3)))"
        );
        assert_eq!(
            sql("(seats = 1 AND active = true) OR display_name = x"),
            "(((o.seats = $1) AND (o.active = $2)) OR (o.display_name = $3))"
        );
        assert_eq!(sql("NOT seats = 1"), "((o.seats = $1) IS NOT TRUE)");
        assert_eq!(sql("-seats = 1"), sql("NOT seats = 1"));
        assert_eq!(
            sql("NOT (seats = 1 OR seats = 2)"),
            "(((o.seats = $1) OR (o.seats = $2)) IS NOT TRUE)"
        );
        // Whitespace-separated restrictions mean AND.
        assert_eq!(
            sql("seats = 1 active = true"),
            "((o.seats = $1) AND (o.active = $2))"
        );
        // Keywords are case-sensitive, so `and` is a bare term.
        assert!(error("seats = 1 and active = true").contains("bare term `and`"));
    }

    #[test]
    fn push_sql_numbers_placeholders_after_existing_binds() {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT * FROM o WHERE o.parent = ");
        qb.push_bind(7_i64).push(" AND ");
        compile("seats > 1 OR NOT active = true").push_sql(&mut qb);
        assert_eq!(
            qb.sql().as_str(),
            "SELECT * FROM o WHERE o.parent = $1 AND ((o.seats > $2) OR ((o.active = $3) IS NOT TRUE))"
        );
    }

    #[test]
    fn not_equal_on_nullable_column_keeps_nulls() {
        assert_eq!(
            sql("abbreviation != OSCE"),
            "(o.abbreviation IS DISTINCT FROM $1)"
        );
        assert_eq!(
            sql(r#"organization != "organizations/osce""#),
            "(o.organization_id IS DISTINCT FROM $1)"
        );
        assert_eq!(sql("display_name != OSCE"), "(o.display_name <> $1)");
        assert_eq!(sql("abbreviation = OSCE"), "(o.abbreviation = $1)");
    }

    #[test]
    fn injection_attempt_is_a_bound_value() {
        let filter = r#"display_name = "x' OR '1'='1""#;
        assert_eq!(
            compile(filter),
            compare(
                "o.display_name",
                Op::Eq,
                Value::Text("x' OR '1'='1".into()),
                false
            )
        );
        let sql = sql(filter);
        assert_eq!(sql, "(o.display_name = $1)");
        assert!(!sql.contains("OR") && !sql.contains('\''));
    }

    #[test]
    fn trailing_wildcard_is_an_escaped_prefix_match() {
        assert_eq!(
            compile(r#"display_name = "50%_off\\*""#),
            Condition::Prefix {
                column: "o.display_name",
                prefix: "50%_off\\".into()
            }
        );
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(sql(r#"display_name = "OSCE*""#), "(o.display_name LIKE $1)");
        assert_eq!(sql("display_name = OS*"), "(o.display_name LIKE $1)");
        for filter in [r#"display_name = "*OSCE""#, r#"display_name != "OSCE*""#] {
            assert!(
                error(filter).contains("`*` is only supported at the end"),
                "{filter}"
            );
        }
    }

    #[test]
    fn unknown_field() {
        let message = error("foo = 1");
        assert!(
            message.starts_with(
                "unknown field `foo` (filterable: display_name, abbreviation, accreditation.state,"
            ),
            "{message}"
        );
        assert!(error("accreditation.foo = 1").contains("unknown field `accreditation.foo`"));
    }

    #[test]
    fn syntax_errors() {
        assert!(error("seats = = 3").starts_with("syntax error at byte 8 near `= 3`"));
        let message = error(r#"display_name = "unterminated"#);
        assert!(message.contains("unterminated string"), "{message}");
        assert!(message.contains(r#"near `"unterminated`"#), "{message}");
        assert!(error("seats = 1 AND").starts_with("syntax error"));
        assert!(error("(seats = 1").starts_with("syntax error at end of filter"));
        let message = error("create_time > 2024-05-01T12:00:00Z");
        assert!(
            message.contains("quote values that contain `:`"),
            "{message}"
        );
    }

    #[test]
    fn unsupported_constructs() {
        assert!(error("display_name:osce").starts_with("operator `:` is not supported"));
        assert!(error(r#"regex(display_name, "^O")"#).contains("function calls are not supported"));
        assert!(error("lower(display_name) = osce").contains("function calls are not supported"));
        assert!(error("display_name = lower(x)").contains("function calls are not supported"));
        assert!(error("osce").starts_with("bare term `osce` is not supported"));
        assert!(error("display_name = (a OR b)").contains("single literal"));
        assert!(
            error("display_name = abbreviation").contains("comparing `display_name` with field")
        );
        assert!(error("display_name = accreditation.state").contains("not a field path"));
        assert!(error(r#""display_name" = x"#).contains("expected a field name"));
        assert!(error("accreditation.state < PENDING").contains("operator `<` is not supported"));
        assert!(error("active >= true").contains("only `=` and `!=`"));
    }

    #[test]
    fn invalid_values() {
        assert_eq!(
            error("accreditation.state = XYZ"),
            "invalid value `XYZ` for `accreditation.state` \
             (expected one of PENDING, ACCREDITED, REJECTED, REVOKED)"
        );
        assert!(
            error(r#"create_time > "yesterday""#)
                .starts_with("invalid value `yesterday` for `create_time`")
        );
        assert!(
            error("birth_date = 2023-02-30")
                .starts_with("invalid value `2023-02-30` for `birth_date`")
        );
        assert!(error("birth_date = 2023-2-3").contains("YYYY-MM-DD"));
        assert!(
            error("seats = 2.5")
                .starts_with("invalid value `2.5` for `seats` (expected an integer)")
        );
        assert!(error("active = yes").contains("true or false"));
        assert_eq!(
            error(r#"organization = "orgs/osce""#),
            "`orgs/osce` is not a valid organization name (for `organization`)"
        );
    }

    #[test]
    fn limits() {
        let long = format!("display_name = \"{}\"", "a".repeat(MAX_FILTER_LEN));
        assert!(error(&long).starts_with("filter is too long"));
        let deep = format!("{}seats = 1{}", "(".repeat(20), ")".repeat(20));
        assert!(error(&deep).starts_with("filter is nested too deeply"));
    }

    #[test]
    fn empty_groups_render_as_constants() {
        let mut qb = QueryBuilder::<Postgres>::new("");
        Condition::Or(vec![Condition::And(vec![])]).push_sql(&mut qb);
        assert_eq!(qb.sql().as_str(), "((TRUE))");
    }
}

#[cfg(test)]
mod membership_tests {
    use super::*;

    fn delegation_key(name: &str) -> Option<String> {
        name.strip_prefix("elections/e/delegations/")
            .map(str::to_owned)
    }

    const FIELDS: &[FilterField] = &[FilterField {
        path: "delegation",
        column: "delegation_ids",
        field_type: FieldType::Member(delegation_key),
        nullable: false,
    }];

    #[test]
    fn membership_is_an_array_containment_with_a_bound_key() {
        let condition = parse(r#"delegation = "elections/e/delegations/sco""#, FIELDS)
            .unwrap()
            .unwrap();
        let mut qb = QueryBuilder::<Postgres>::new("");
        condition.push_sql(&mut qb);
        assert_eq!(qb.sql().as_str(), "(delegation_ids @> ARRAY[$1]::text[])");

        let negated = parse(r#"delegation != "elections/e/delegations/sco""#, FIELDS)
            .unwrap()
            .unwrap();
        let mut qb = QueryBuilder::<Postgres>::new("");
        negated.push_sql(&mut qb);
        assert_eq!(
            qb.sql().as_str(),
            "(NOT delegation_ids @> ARRAY[$1]::text[])"
        );

        assert!(parse(r#"delegation = "organizations/x""#, FIELDS).is_err());
        assert!(parse(r#"delegation < "elections/e/delegations/sco""#, FIELDS).is_err());
    }
}
