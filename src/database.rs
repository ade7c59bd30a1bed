//! Everything about PostgreSQL in one place: connecting, creating and migrating the database
//! at start-up (`connect`), and how calls reach it — fail fast while it is down, deadlines,
//! retried transactions, and counting what failed (`calls`).

mod calls;
mod connect;

pub use calls::{Attempt, Database, Tx};
pub use connect::{
    MIGRATOR, PING_AFTER_IDLE, connect_options, ensure_database, ping_when_idle, pool, prepare,
};

/// Runs a block in a transaction of `db` ([`Database`]) and commits it, and runs it again
/// when it loses a serialization or deadlock race (a few times, with jittered backoff,
/// within the call's deadline). The block sees the transaction as `$tx`; `return` and `?`
/// inside it end the attempt (rolling back on error). A macro rather than a function taking
/// an async closure, because such closures are not yet `Send` for every borrow that tonic's
/// handlers need.
#[macro_export]
macro_rules! transaction {
    ($db:expr, |$tx:ident| $body:block) => {{
        let db: &$crate::database::Database = &$db;
        let mut attempt = 1;
        loop {
            let mut $tx = db.begin().await?;
            let result: $crate::error::Result<_> = async { $body }.await;
            let result = match result {
                Ok(value) => $tx
                    .commit()
                    .await
                    .map(|()| value)
                    .map_err($crate::error::Error::from_sqlx),
                Err(error) => Err(error),
            };
            if let Some(done) = db.settle(result, attempt).await {
                break done;
            }
            attempt += 1;
        }
    }};
}
