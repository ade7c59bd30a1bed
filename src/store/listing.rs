//! Runs a validated List query: one page by keyset, plus the capped count for `total_size`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row};

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
///
/// The page and the capped count are one statement (the count is an uncorrelated subquery,
/// evaluated once): one round trip and one snapshot. Only an empty page, which carries no
/// count, needs a second statement.
pub async fn fetch_page<R>(
    conn: &mut PgConnection,
    source: &Source<'_>,
    scope: &(dyn Fn(&mut QueryBuilder<Postgres>) + Sync),
    query: &ListQuery,
) -> Result<(Vec<R>, i64)>
where
    R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let mut page = QueryBuilder::<Postgres>::new(format!("SELECT {}, (", source.columns));
    push_capped_count(&mut page, source, scope, query);
    page.push(format!(") AS {TOTAL_COLUMN}"));
    let rows = fetch_rows(conn, page, source, scope, query).await?;
    let Some(first) = rows.first() else {
        return Ok((Vec::new(), count(conn, source, scope, query).await?));
    };
    let capped: i64 = first.try_get(TOTAL_COLUMN)?;
    let total = total_size(conn, source, scope, query, capped).await?;
    Ok((decode(&rows)?, total))
}

/// Completes a page's statement after its select list (FROM, the conditions, the order and
/// the limit) and runs it.
async fn fetch_rows(
    conn: &mut PgConnection,
    mut page: QueryBuilder<Postgres>,
    source: &Source<'_>,
    scope: &(dyn Fn(&mut QueryBuilder<Postgres>) + Sync),
    query: &ListQuery,
) -> Result<Vec<PgRow>> {
    page.push(format!(" FROM {} WHERE true", source.from));
    scope(&mut page);
    query.push_conditions(&mut page);
    query.push_order_and_limit(&mut page);
    Ok(page.build().fetch_all(conn).await?)
}

fn decode<R>(rows: &[PgRow]) -> Result<Vec<R>>
where
    R: for<'r> FromRow<'r, PgRow>,
{
    Ok(rows
        .iter()
        .map(R::from_row)
        .collect::<std::result::Result<Vec<R>, _>>()?)
}

/// Totals of the lists of an election, reused while nothing in the election changes.
///
/// Counting the matches is most of what a page costs PostgreSQL (0.5 of 1.2 ms for a page of
/// 100 of 2,400 matches), and partners poll the same lists again and again. Every committed
/// change to an election's observers, delegations or meetings advances its change-feed
/// position (`change_positions`, moved at commit by the feed's triggers); the page's statement
/// reads that position in its own snapshot and counts only when it differs from the one the
/// stored total was counted at. So a reused total is exactly what counting would give in
/// that snapshot: never older than an acknowledged write.
#[derive(Debug, Default)]
pub struct ListCounts {
    /// (election, list, filter) → (position counted at, total).
    totals: Mutex<HashMap<String, (i64, i64)>>,
}

/// Kept at most; all are forgotten at once beyond it (a count is cheap to redo).
const MAX_KEPT_COUNTS: usize = 4096;

impl ListCounts {
    fn known(&self, key: &str) -> Option<(i64, i64)> {
        self.totals.lock().ok()?.get(key).copied()
    }

    fn remember(&self, key: String, position: i64, total: i64) {
        if let Ok(mut totals) = self.totals.lock() {
            if totals.len() >= MAX_KEPT_COUNTS {
                totals.clear();
            }
            totals.insert(key, (position, total));
        }
    }
}

/// Pages of lists read before, each with its total and the change-feed position of its
/// election it was read at. A page is answered from here when a statement that started after
/// the call arrived finds that position unchanged: then the page is what reading it would
/// give (see [`ListCounts`]). Bounded by the rows kept; all are forgotten at once beyond it.
#[derive(Debug)]
pub struct KeptPages<T> {
    capacity: usize,
    pages: Mutex<HashMap<String, KeptPage<T>>>,
}

/// A page as read at `position`.
#[derive(Debug)]
pub struct KeptPage<T> {
    pub position: i64,
    pub rows: Arc<Vec<T>>,
    pub total: i64,
}

impl<T> Clone for KeptPage<T> {
    fn clone(&self) -> Self {
        KeptPage {
            position: self.position,
            rows: self.rows.clone(),
            total: self.total,
        }
    }
}

impl<T> KeptPages<T> {
    /// Keeps pages of `capacity` rows in all at most; 0 keeps none.
    pub fn new(capacity: usize) -> Self {
        KeptPages {
            capacity,
            pages: Mutex::default(),
        }
    }

    pub fn get(&self, key: &str) -> Option<KeptPage<T>> {
        self.pages.lock().ok()?.get(key).cloned()
    }

    pub fn keep(&self, key: String, page: KeptPage<T>) {
        if page.rows.len() > self.capacity {
            return;
        }
        if let Ok(mut pages) = self.pages.lock() {
            let kept: usize = pages.values().map(|p| p.rows.len()).sum();
            if kept + page.rows.len() > self.capacity {
                pages.clear();
            }
            // A slower call's older read does not replace a newer one.
            if pages.get(&key).is_none_or(|p| p.position <= page.position) {
                pages.insert(key, page);
            }
        }
    }
}

/// [`fetch_page`] for a list inside one election whose changes move its change-feed
/// position: the total is counted only when something changed since it was last counted.
/// Returns the rows, the total and the position they were read at (None for an empty page).
pub async fn fetch_page_of_election<R>(
    conn: &mut PgConnection,
    source: &Source<'_>,
    scope: &(dyn Fn(&mut QueryBuilder<Postgres>) + Sync),
    query: &ListQuery,
    counts: &ListCounts,
    election_id: &str,
) -> Result<(Vec<R>, i64, Option<i64>)>
where
    R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let key = format!(
        "{election_id}\0{}\0{}\0{:?}",
        source.from, query.show_deleted, query.filter
    );
    // A position below every real one when nothing is known.
    let (known_position, known_total) = counts.known(&key).unwrap_or((-1, 0));
    let position = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(
            "(SELECT coalesce(max(last_position), 0) FROM change_positions WHERE election_id = ",
        )
        .push_bind(election_id.to_owned())
        .push(")");
    };
    let mut page = QueryBuilder::<Postgres>::new(format!("SELECT {}, CASE WHEN ", source.columns));
    position(&mut page);
    page.push(" = ")
        .push_bind(known_position)
        .push(" THEN ")
        .push_bind(known_total)
        .push(" ELSE (");
    // Not evaluated at all when the position matches (an uncorrelated subquery runs when
    // first needed).
    push_capped_count(&mut page, source, scope, query);
    page.push(format!(") END AS {TOTAL_COLUMN}, "));
    position(&mut page);
    page.push(format!(" AS {POSITION_COLUMN}"));
    let rows = fetch_rows(conn, page, source, scope, query).await?;
    let Some(first) = rows.first() else {
        return Ok((Vec::new(), count(conn, source, scope, query).await?, None));
    };
    let current_position: i64 = first.try_get(POSITION_COLUMN)?;
    let counted: i64 = first.try_get(TOTAL_COLUMN)?;
    let total = if current_position == known_position {
        counted
    } else {
        let total = total_size(conn, source, scope, query, counted).await?;
        counts.remember(key, current_position, total);
        total
    };
    Ok((decode(&rows)?, total, Some(current_position)))
}

/// The election's change-feed position the page was read at.
const POSITION_COLUMN: &str = "change_position";

/// The page's extra column: the capped count of every match.
const TOTAL_COLUMN: &str = "total_matching";

/// Counted exactly up to this many matches; above it `total_size` is the planner's estimate
/// (AIP-132 allows that), so a list of a million observers does not count them on every page.
pub const EXACT_COUNT_LIMIT: i64 = 10_000;

async fn count(
    conn: &mut PgConnection,
    source: &Source<'_>,
    scope: &(dyn Fn(&mut QueryBuilder<Postgres>) + Sync),
    query: &ListQuery,
) -> Result<i64> {
    let mut capped = QueryBuilder::<Postgres>::new("");
    push_capped_count(&mut capped, source, scope, query);
    let (exact,): (i64,) = capped.build_query_as().fetch_one(&mut *conn).await?;
    total_size(conn, source, scope, query, exact).await
}

/// Every row that matches the filter, counted up to one more than the exact limit.
fn push_capped_count(
    qb: &mut QueryBuilder<Postgres>,
    source: &Source<'_>,
    scope: &(dyn Fn(&mut QueryBuilder<Postgres>) + Sync),
    query: &ListQuery,
) {
    qb.push(format!(
        "SELECT count(*) FROM (SELECT 1 FROM {} WHERE true",
        source.from
    ));
    scope(qb);
    query.push_filter(qb);
    // A literal, for the reason given at `ListQuery::push_order_and_limit`.
    qb.push(format_args!(
        " LIMIT {}) AS matching",
        EXACT_COUNT_LIMIT + 1
    ));
}

/// The exact count when it is at most the limit, else the planner's estimate.
async fn total_size(
    conn: &mut PgConnection,
    source: &Source<'_>,
    scope: &(dyn Fn(&mut QueryBuilder<Postgres>) + Sync),
    query: &ListQuery,
    capped: i64,
) -> Result<i64> {
    if capped <= EXACT_COUNT_LIMIT {
        return Ok(capped);
    }
    let mut matching = QueryBuilder::<Postgres>::new(format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE true",
        source.from
    ));
    scope(&mut matching);
    query.push_filter(&mut matching);
    // Not prepared: an unnamed statement is planned with the actual filter values, which
    // gives a far better estimate than a generic plan.
    let (plan,): (serde_json::Value,) = matching
        .build_query_as()
        .persistent(false)
        .fetch_one(&mut *conn)
        .await?;
    let estimate = plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or_default() as i64;
    Ok(estimate.max(capped))
}
