//! The SQL of a validated list: its filter, the keyset position after the cursor, the order
//! and the limit. Columns come from code; every value is a bind parameter.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};

use super::{KeyValue, ListQuery, SortKey};

impl KeyValue {
    pub(super) fn push_bind(&self, qb: &mut QueryBuilder<Postgres>) {
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
pub(super) fn push_keyset(qb: &mut QueryBuilder<Postgres>, order: &[SortKey], after: &[KeyValue]) {
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
