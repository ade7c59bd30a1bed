//! Runs a validated List query: one page by keyset, plus the exact count for `total_size`.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use crate::aip::paging::ListQuery;
use crate::error::Result;

/// The fixed part of a list query of one resource.
pub struct Source<'s> {
    /// Trusted select list, e.g. `*`.
    pub columns: &'s str,
    /// Trusted FROM clause, e.g. `elections`.
    pub from: &'s str,
}

/// Fetches up to `limit + 1` rows after the cursor and counts every row that matches.
/// `scope` appends ` AND …` conditions that bound the list (parent, deleted rows).
pub async fn fetch_page<R>(
    conn: &mut PgConnection,
    source: &Source<'_>,
    scope: &(dyn Fn(&mut QueryBuilder<Postgres>) + Sync),
    query: &ListQuery,
) -> Result<(Vec<R>, i64)>
where
    R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let mut rows = QueryBuilder::<Postgres>::new(format!(
        "SELECT {} FROM {} WHERE true",
        source.columns, source.from
    ));
    scope(&mut rows);
    query.push_conditions(&mut rows);
    query.push_order_and_limit(&mut rows);
    let rows: Vec<R> = rows.build_query_as().fetch_all(&mut *conn).await?;

    let total = count(conn, source, scope, query).await?;
    Ok((rows, total))
}

/// Counted exactly up to this many matches; above it `total_size` is the planner's estimate
/// (AIP-132 allows that), so a list of a million observers does not count them on every page.
pub const EXACT_COUNT_LIMIT: i64 = 10_000;

async fn count(
    conn: &mut PgConnection,
    source: &Source<'_>,
    scope: &(dyn Fn(&mut QueryBuilder<Postgres>) + Sync),
    query: &ListQuery,
) -> Result<i64> {
    let matching = |prefix: &str| {
        let mut qb =
            QueryBuilder::<Postgres>::new(format!("{prefix} FROM {} WHERE true", source.from));
        scope(&mut qb);
        query.push_filter(&mut qb);
        qb
    };
    let mut capped = matching("SELECT count(*) FROM (SELECT 1");
    capped
        .push(" LIMIT ")
        .push_bind(EXACT_COUNT_LIMIT + 1)
        .push(") AS matching");
    let (exact,): (i64,) = capped.build_query_as().fetch_one(&mut *conn).await?;
    if exact <= EXACT_COUNT_LIMIT {
        return Ok(exact);
    }
    // Not prepared: an unnamed statement is planned with the actual filter values, which
    // gives a far better estimate than a generic plan.
    let (plan,): (serde_json::Value,) = matching("EXPLAIN (FORMAT JSON) SELECT 1")
        .build_query_as()
        .persistent(false)
        .fetch_one(&mut *conn)
        .await?;
    let estimate = plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or_default() as i64;
    Ok(estimate.max(exact))
}
