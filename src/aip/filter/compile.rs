//! From filter text to a [`Condition`]: the `aip-160` crate parses, and this maps its tree
//! onto the fields a List RPC allows, converting each literal for its field's type.

use aip_160::{Arg, Comparable, Comparator, Expression, Function, Restriction};
use chrono::{DateTime, NaiveDate, Utc};

use super::{Condition, FieldType, FilterError, FilterField, Op, Value};

/// Longest filter accepted, so a client cannot make us parse megabytes.
pub(super) const MAX_FILTER_LEN: usize = 2048;

/// Parenthesis and function nesting allowed by the parser. It also bounds
/// the recursion in this module, which follows the parsed tree.
const MAX_DEPTH: usize = 8;

const TIMESTAMP_EXPECTED: &str = "an RFC 3339 timestamp in quotes, e.g. \"2024-05-01T12:00:00Z\"";

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
/// value is never read as a field name. One arm per field type, so it is as long as
/// that list.
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
        FieldType::Canonical(canonical) => {
            equality_only(field, op)?;
            let Some(value) = canonical(text) else {
                let noun = field.path.replace('_', " ");
                refuse!("`{text}` is not a valid {noun} (for `{}`)", field.path);
            };
            Value::Text(value)
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
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}
