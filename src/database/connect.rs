//! Connecting to PostgreSQL: connection options, the pool, creating the database and
//! migrating it at start-up.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::DatabaseSettings;

/// The embedded migrations (`migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection options from the settings: application name for `pg_stat_activity`, and a
/// statement timeout so no query outlives its purpose.
pub fn connect_options(settings: &DatabaseSettings) -> anyhow::Result<PgConnectOptions> {
    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    Ok(PgConnectOptions::from_str(&settings.url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .application_name("observer-registry")
        .options([("statement_timeout", timeout_ms.as_str())]))
}

/// A pool that connects on demand, so the service starts and reports NOT_SERVING while
/// the database is away instead of failing.
pub fn pool(options: PgConnectOptions, settings: &DatabaseSettings) -> PgPool {
    ping_when_idle(PgPoolOptions::new())
        .max_connections(settings.pool_size)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options)
}

/// A connection idle for this long is pinged before use; one in steady use is not.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Pings a connection before handing it out only when it sat idle (it may have died with a
/// restarted PostgreSQL meanwhile), not on every acquire as sqlx does by default: under load
/// that ping is a round trip per call. A connection that dies between two calls is caught
/// by the database watch, which then fails calls fast until PostgreSQL answers.
pub fn ping_when_idle(options: PgPoolOptions) -> PgPoolOptions {
    options
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Creates the database named in `options` if it does not exist yet.
pub async fn ensure_database(options: &PgConnectOptions) -> anyhow::Result<()> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .context("cannot connect to PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "database created"),
            // Another replica created it at the same moment (42P04 once it is there, 23505
            // when both inserted into the catalog at once).
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(e) => return Err(e).context("cannot create the database"),
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// Creates the database if needed and migrates it, retrying while PostgreSQL is not
/// reachable yet (a pod may start before its database) until the start-up timeout.
pub async fn prepare(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let options = connect_options(settings)?;
    let deadline = Instant::now() + settings.startup_timeout;
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = async {
            ensure_database(&options).await?;
            let pool = pool(options.clone(), settings);
            // A migration that fails is a bug to report at once, not a database to wait for.
            match MIGRATOR.run(&pool).await {
                Err(sqlx::migrate::MigrateError::Execute(error))
                    if !is_connection_error(&error) =>
                {
                    Ok(Err(anyhow::Error::new(error).context("migration failed")))
                }
                Err(error) => Err(anyhow::Error::new(error).context("migration failed")),
                Ok(()) => Ok(Ok(pool)),
            }
        };
        match attempt.await {
            Ok(Err(fatal)) => return Err(fatal),
            Ok(Ok(pool)) => {
                tracing::info!("database ready and migrated");
                return Ok(pool);
            }
            Err(error) if Instant::now() + delay < deadline => {
                tracing::warn!(error = format!("{error:#}"), retry_in = ?delay, "database not ready");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether an error means the database could not be reached (worth waiting for).
fn is_connection_error(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    )
}
