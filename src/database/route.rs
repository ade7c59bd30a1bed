//! Where the service's connections go, and what a pooler in transaction mode between them and
//! PostgreSQL asks of them (HA.md, "Behind PgBouncer"). Such a pooler (PgBouncer before 1.21)
//! lends a PostgreSQL session for one transaction only and knows nothing of prepared
//! statements, so behind it:
//!
//! - a statement with parameters runs inside a transaction: sqlx parses it and binds it in
//!   two exchanges, and between them, outside a transaction, the pooler may hand the session
//!   to another client;
//! - sqlx's statement cache is off (`connect_options`), yet sqlx still names each statement
//!   (`sqlx_s_N`, counted per connection) and never closes it: each transaction begins by
//!   dropping the statements earlier clients of the session left there (`DEALLOCATE ALL`, in
//!   the same message as BEGIN), or a name of another client's would collide with ours;
//! - LISTEN and the migrator's session advisory lock need a session of their own: they use
//!   the direct connection (`--listen-database-url`).

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::config::{DatabaseSettings, Pooler};

/// How the service reaches PostgreSQL besides its pool's URL.
#[derive(Debug, Clone, Default)]
pub struct DatabaseRoute {
    /// What the pool's connections go through.
    pub pooler: Pooler,
    /// Where the change feed's LISTEN connects, past any pooler; `None`: where the pool does.
    pub listen: Option<Arc<PgConnectOptions>>,
}

impl DatabaseRoute {
    pub fn from_settings(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        Ok(DatabaseRoute {
            pooler: settings.pooler,
            listen: super::connect::direct_options(settings)?.map(Arc::new),
        })
    }

    /// Whether statements must run inside transactions: a session is ours only for one.
    pub fn transactions_only(&self) -> bool {
        self.pooler == Pooler::Transaction
    }

    /// The statement that begins a transaction with `begin` (`BEGIN`, `BEGIN READ ONLY`, …).
    pub fn begin_statement(&self, begin: &'static str) -> Cow<'static, str> {
        match self.pooler {
            Pooler::None => Cow::Borrowed(begin),
            Pooler::Transaction => Cow::Owned(format!("{begin}{}", self.after_begin())),
        }
    }

    /// What follows BEGIN in the same message: nothing, or behind a transaction pooler the
    /// dropping of the prepared statements that earlier clients left in the session.
    pub fn after_begin(&self) -> &'static str {
        match self.pooler {
            Pooler::None => "",
            Pooler::Transaction => "; DEALLOCATE ALL",
        }
    }

    /// Where LISTEN connects: the direct connection, or the pool's.
    pub fn listen_options(&self, pool: &PgPool) -> PgConnectOptions {
        match &self.listen {
            Some(options) => (**options).clone(),
            None => (*pool.connect_options()).clone(),
        }
    }

    /// A transaction on a connection of `pool`, for work outside calls (start-up, purges).
    pub async fn begin(&self, pool: &PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
        pool.begin_with(sqlx::AssertSqlSafe(
            self.begin_statement("BEGIN").into_owned(),
        ))
        .await
    }

    /// A read-only transaction on a connection of its own (a point-read slot's).
    pub async fn read_on<'c>(
        &self,
        connection: &'c mut PgConnection,
    ) -> sqlx::Result<Transaction<'c, Postgres>> {
        connection
            .begin_with(sqlx::AssertSqlSafe(
                self.begin_statement("BEGIN READ ONLY").into_owned(),
            ))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_behind_a_transaction_pooler_do_transactions_drop_leftover_statements() {
        let direct = DatabaseRoute::default();
        assert_eq!(direct.begin_statement("BEGIN READ ONLY"), "BEGIN READ ONLY");
        assert!(!direct.transactions_only());
        let pooled = DatabaseRoute {
            pooler: Pooler::Transaction,
            listen: None,
        };
        assert_eq!(pooled.begin_statement("BEGIN"), "BEGIN; DEALLOCATE ALL");
        assert!(pooled.transactions_only());
    }
}
