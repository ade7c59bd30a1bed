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

    let mut count =
        QueryBuilder::<Postgres>::new(format!("SELECT count(*) FROM {} WHERE true", source.from));
    scope(&mut count);
    query.push_filter(&mut count);
    let (total,): (i64,) = count.build_query_as().fetch_one(&mut *conn).await?;
    Ok((rows, total))
}
