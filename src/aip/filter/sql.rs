//! A [`Condition`] written as a parenthesised SQL boolean expression: columns come from
//! code ([`FilterField`](super::FilterField)), every value is a bind parameter.

use sqlx::{Postgres, QueryBuilder};

use super::{Condition, Op, Value};

impl Op {
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
pub(super) fn escape_like(text: &str) -> String {
    // The escape character itself goes first, so added escapes stay single.
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
