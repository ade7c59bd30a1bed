//! How calls reach PostgreSQL: fail fast while it is down, wait for a connection no longer
//! than the call's deadline, bound every statement by that deadline, run a transaction
//! again when it lost a serialization or deadlock race, and count what failed.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::time::Instant;

use crate::database::DatabaseRoute;
use crate::error::{DatabaseFailure, Error, Reason, Result};
use crate::health::Availability;
use crate::layers::deadline::{current_deadline, run_with_deadline};
use crate::metrics::Metrics;

/// The deadline of database work done on behalf of calls outside their handlers.
const BACKGROUND_DEADLINE: Duration = Duration::from_secs(30);

/// Attempts of a transaction that keeps losing races, before ABORTED.
const MAX_ATTEMPTS: u32 = 4;

/// The service's access to the database.
#[derive(Debug, Clone)]
pub struct Database {
    pub pool: PgPool,
    pub availability: Arc<Availability>,
    pub metrics: Arc<Metrics>,
    /// What the pool's connections go through (a transaction pooler asks for transactions).
    pub route: DatabaseRoute,
}

/// What [`Database::connection`] lends: a pool connection, or behind a transaction pooler a
/// read-only transaction (a statement outside one may lose its session halfway).
pub enum Autocommit {
    Connection(PoolConnection<Postgres>),
    Transaction(Transaction<'static, Postgres>),
}

impl Autocommit {
    /// Gives the connection back; commits the transaction, if it is one, so that the
    /// pooler's session is free at once.
    pub async fn finish(self) -> Result<()> {
        match self {
            Autocommit::Connection(_) => Ok(()),
            Autocommit::Transaction(transaction) => {
                transaction.commit().await.map_err(Error::from_sqlx)
            }
        }
    }
}

impl std::ops::Deref for Autocommit {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        match self {
            Autocommit::Connection(connection) => connection,
            Autocommit::Transaction(transaction) => transaction,
        }
    }
}

impl std::ops::DerefMut for Autocommit {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Autocommit::Connection(connection) => connection,
            Autocommit::Transaction(transaction) => transaction,
        }
    }
}

/// One attempt of the work of a transaction: borrows the transaction's connection.
pub type Attempt<'t, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 't>>;

/// The transaction an attempt works in. `'a` is the lifetime of what the work borrows from
/// its caller: `&'t mut Tx<'a>` implies `'a: 't`, which lets an attempt's future borrow the
/// request instead of cloning it.
pub struct Tx<'a> {
    transaction: Transaction<'static, Postgres>,
    /// What to do once the attempt has committed: the lines that say a change was made.
    /// Dropped with an attempt that rolls back, so a line never claims what did not happen.
    after_commit: Vec<Box<dyn FnOnce() + Send>>,
    borrows: std::marker::PhantomData<&'a ()>,
}

impl Tx<'_> {
    /// Runs `then` (e.g. a success log line) after this transaction commits; never if it
    /// rolls back, whether by an error, a lost race that is retried, or a failed commit.
    pub fn after_commit(&mut self, then: impl FnOnce() + Send + 'static) {
        self.after_commit.push(Box::new(then));
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        &self.transaction
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.transaction
    }
}

impl Database {
    /// Runs `work` in a transaction and commits it; runs it again, in a new transaction, when
    /// it lost a serialization or deadlock race (a few times, with jittered backoff, within
    /// the call's deadline). An error from `work` rolls the attempt back and is returned.
    pub async fn transaction<'a, T, F>(&self, mut work: F) -> Result<T>
    where
        F: for<'t> FnMut(&'t mut Tx<'a>) -> Attempt<'t, T>,
    {
        let mut attempt = 1;
        loop {
            let mut tx = Tx {
                transaction: self.begin().await?,
                after_commit: Vec::new(),
                borrows: std::marker::PhantomData,
            };
            let result = match work(&mut tx).await {
                Ok(value) => match tx.transaction.commit().await {
                    Ok(()) => {
                        tx.after_commit.into_iter().for_each(|then| then());
                        Ok(value)
                    }
                    Err(error) => Err(Error::from_sqlx(error)),
                },
                Err(error) => Err(error),
            };
            if let Some(done) = self.settle(result, attempt).await {
                return done;
            }
            attempt += 1;
        }
    }

    /// A read-write transaction bounded by the call's deadline.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.begin_with("BEGIN").await
    }

    /// A read-only transaction bounded by the call's deadline: reads get one snapshot and
    /// a statement timeout like writes.
    pub async fn read(&self) -> Result<Transaction<'static, Postgres>> {
        self.begin_with("BEGIN READ ONLY").await
    }

    /// A connection for autocommit statements (change feeds): fails fast while the database
    /// is down; the wait is bounded by the pool's acquire timeout. Behind a transaction
    /// pooler, a read-only transaction instead: end it with [`Autocommit::finish`].
    pub async fn connection(&self) -> Result<Autocommit> {
        self.ensure_available()?;
        let _waiting = self.metrics.waiting_for_connection();
        let connection = if self.route.transactions_only() {
            self.pool
                .begin_with(sqlx::AssertSqlSafe(
                    self.route.begin_statement("BEGIN READ ONLY").into_owned(),
                ))
                .await
                .map(Autocommit::Transaction)
        } else {
            self.pool.acquire().await.map(Autocommit::Connection)
        };
        connection.map_err(|e| self.map_db_err(e))
    }

    /// Fails fast while the database is known to be down.
    pub fn ensure_available(&self) -> Result<()> {
        if self.availability.database_up() {
            Ok(())
        } else {
            Err(unavailable())
        }
    }

    /// Runs `work` as if in a call with a deadline of its own, for database work done
    /// outside a handler on behalf of calls; its error is observed (see [`Database::observe`]).
    pub async fn in_scope<T>(
        &self,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = run_with_deadline(Instant::now() + BACKGROUND_DEADLINE, work).await;
        if let Err(error) = &result {
            self.observe(error);
        }
        result
    }

    /// Decides after one attempt of a transaction (see [`Database::transaction`]):
    /// `None` to run it again — it lost a serialization or deadlock race, attempts and the
    /// deadline remain, and the jittered backoff has been slept — or the final result. The
    /// attempt's error is observed here: its statements ran on the transaction's connection,
    /// out of this module's sight.
    async fn settle<T>(&self, result: Result<T>, attempt: u32) -> Option<Result<T>> {
        if let Err(error) = &result {
            self.observe(error);
        }
        match result {
            Err(error) if error.is_retryable() && attempt < MAX_ATTEMPTS => {
                let backoff = jittered_backoff(attempt);
                if current_deadline().is_some_and(|d| Instant::now() + backoff >= d) {
                    return Some(Err(error));
                }
                self.metrics.transaction_retried();
                tracing::info!(
                    attempt,
                    ?backoff,
                    "transaction lost a race; running it again"
                );
                tokio::time::sleep(backoff).await;
                None
            }
            result => Some(result),
        }
    }

    async fn begin_with(&self, begin: &'static str) -> Result<Transaction<'static, Postgres>> {
        if !self.availability.database_up() {
            return Err(unavailable());
        }
        let Some(deadline) = current_deadline() else {
            return self
                .begin_in_own_task(self.route.begin_statement(begin).into_owned())
                .await;
        };
        let remaining = remaining_ms(deadline)?;
        let acquire = async {
            let _waiting = self.metrics.waiting_for_connection();
            self.begin_in_own_task(format!(
                "{begin}; SET LOCAL statement_timeout = {remaining}; \
                 SET LOCAL idle_in_transaction_session_timeout = {}{}",
                remaining + IDLE_AFTER_DEADLINE_MS,
                self.route.after_begin()
            ))
            .await
        };
        let started = Instant::now();
        let mut transaction = tokio::time::timeout_at(deadline, acquire)
            .await
            .map_err(|_| deadline_exceeded())??;
        // A long wait for a connection shortens what is left for the statements.
        if started.elapsed() > Duration::from_millis(5) {
            let remaining = remaining_ms(deadline)?;
            sqlx::query(
                "SELECT set_config('statement_timeout', $1, true), \
                        set_config('idle_in_transaction_session_timeout', $2, true)",
            )
            .bind(remaining.to_string())
            .bind((remaining + IDLE_AFTER_DEADLINE_MS).to_string())
            .execute(&mut *transaction)
            .await
            .map_err(|e| self.map_db_err(e))?;
        }
        Ok(transaction)
    }

    /// Begins a transaction in a task of its own, which finishes even when the call that
    /// asked for it is cancelled (client gone, deadline passed). sqlx counts a transaction as
    /// open only once PostgreSQL has answered its BEGIN; dropped before that, it returns the
    /// connection to the pool inside an open transaction, and the connection's next user
    /// would run in it (a leftover READ ONLY one fails every write). Finished here, the
    /// transaction is dropped if nobody waits for it any more, which rolls it back.
    async fn begin_in_own_task(&self, begin: String) -> Result<Transaction<'static, Postgres>> {
        let pool = self.pool.clone();
        let begun = tokio::spawn(async move { pool.begin_with(sqlx::AssertSqlSafe(begin)).await });
        match begun.await {
            Ok(transaction) => transaction.map_err(|e| self.map_db_err(e)),
            Err(error) => Err(Error::internal(anyhow::anyhow!(
                "beginning a transaction failed: {error}"
            ))),
        }
    }

    /// Maps an error of work this module runs itself (acquiring, beginning), observing it.
    fn map_db_err(&self, error: sqlx::Error) -> Error {
        let failure = DatabaseFailure::of(&error);
        if takes_database_away(failure) {
            tracing::warn!(kind = failure.as_str(), %error, "database unavailable to a call");
        }
        self.record(failure);
        Error::from_sqlx(error)
    }

    /// Observes an error of database work that reached this module already mapped (the
    /// statements of a transaction): counts it, and takes the database for lost when the
    /// connection broke, so that calls fail fast until the watch sees it answer again.
    pub fn observe(&self, error: &Error) {
        let Some(failure) = error.database_failure() else {
            return;
        };
        if takes_database_away(failure) {
            tracing::warn!(kind = failure.as_str(), "database unavailable to a call");
        }
        self.record(failure);
    }

    fn record(&self, failure: DatabaseFailure) {
        self.metrics.database_error(failure);
        // A read-only server is lost too: the primary moved, and calls fail fast until the
        // watch finds a primary behind the address again.
        if matches!(
            failure,
            DatabaseFailure::Connection | DatabaseFailure::ReadOnly
        ) {
            self.availability.database_failed();
        }
    }
}

/// Whether a failure leaves calls without the database (worth a warning).
fn takes_database_away(failure: DatabaseFailure) -> bool {
    matches!(
        failure,
        DatabaseFailure::Connection | DatabaseFailure::ReadOnly | DatabaseFailure::PoolExhausted
    )
}

/// How long past its call's deadline PostgreSQL lets a transaction sit idle before it ends
/// the session. A live replica has rolled back by then (the call was dropped at its
/// deadline); a replica that froze or lost its network mid-transaction never will, and
/// without this its row locks (a country's number sequence, an observer) would hold every
/// other replica up until TCP keepalive gave up on it, hours later (HA.md).
const IDLE_AFTER_DEADLINE_MS: u128 = 1000;

/// Milliseconds until `deadline`, at least 1 (0 would mean no timeout at all).
fn remaining_ms(deadline: Instant) -> Result<u128> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(deadline_exceeded());
    }
    Ok(remaining.as_millis().max(1))
}

fn jittered_backoff(attempt: u32) -> Duration {
    let ceiling_ms = 5u64 << attempt.min(6);
    Duration::from_millis(rand::rng().random_range(1..=ceiling_ms))
}

fn unavailable() -> Error {
    Error::new(
        Reason::Unavailable,
        "the database is unavailable; retry later",
    )
}

fn deadline_exceeded() -> Error {
    Error::new(
        Reason::DeadlineExceeded,
        "the call's deadline passed while waiting for the database",
    )
}
