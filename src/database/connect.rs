//! Connecting to PostgreSQL: connection options (TLS as libpq reads it), the pool, creating
//! the database and migrating it at start-up, or checking that it was migrated.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool, Row};

use crate::config::{DatabaseSettings, Pooler};
use crate::health::Availability;

/// The embedded migrations (`migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection options from the settings: TLS from the URL's `sslmode` and `sslrootcert`,
/// application name for `pg_stat_activity`, and a statement timeout so no query outlives its
/// purpose. Behind a transaction pooler (`DatabaseRoute`), the connection carries no session
/// setting — a pooler lends sessions set up by others, and PgBouncer refuses the startup
/// parameters `options` and `extra_float_digits` — and sqlx caches no statement: each
/// transaction sets its statement timeout itself (`calls.rs`).
pub fn connect_options(settings: &DatabaseSettings) -> anyhow::Result<PgConnectOptions> {
    let options = url_options(&settings.url, "DATABASE_URL")?;
    Ok(match settings.pooler {
        Pooler::None => with_statement_timeout(options, settings),
        Pooler::Transaction => options.statement_cache_capacity(0).extra_float_digits(None),
    })
}

/// The options of the direct connection (`--listen-database-url`), if one is given.
pub fn direct_options(settings: &DatabaseSettings) -> anyhow::Result<Option<PgConnectOptions>> {
    settings
        .listen_url
        .as_deref()
        .map(|url| {
            Ok(with_statement_timeout(
                url_options(url, "LISTEN_DATABASE_URL")?,
                settings,
            ))
        })
        .transpose()
}

fn with_statement_timeout(
    options: PgConnectOptions,
    settings: &DatabaseSettings,
) -> PgConnectOptions {
    let timeout_ms = settings.statement_timeout.as_millis().to_string();
    options.options([("statement_timeout", timeout_ms.as_str())])
}

/// The options of `url` (the setting `name`), with TLS read as libpq reads it.
fn url_options(url: &str, name: &str) -> anyhow::Result<PgConnectOptions> {
    let mut options = PgConnectOptions::from_str(url)
        .with_context(|| format!("{name} is not a valid PostgreSQL URL"))?
        .application_name(APPLICATION_NAME);
    // libpq verifies the server's chain under `require` when a root certificate is given (as
    // `verify-ca`); sqlx would accept any certificate.
    if matches!(options.get_ssl_mode(), PgSslMode::Require) && names_root_certificate(url) {
        options = options.ssl_mode(PgSslMode::VerifyCa);
    }
    Ok(options)
}

/// The `application_name` of every connection the service opens (`pg_stat_activity`).
pub const APPLICATION_NAME: &str = "observer-registry";

/// Whether a PostgreSQL URL names a root certificate (`sslrootcert` or sqlx's aliases).
fn names_root_certificate(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query.split('&').any(|pair| {
            let key = pair.split_once('=').map_or(pair, |(key, _)| key);
            matches!(key, "sslrootcert" | "ssl-root-cert" | "ssl-ca")
        })
    })
}

/// A pool of at most `max_connections` that connects on demand, so the service starts and
/// reports NOT_SERVING while the database is away instead of failing. It hands out no
/// connection opened before `availability` last lost the database.
pub fn pool(
    options: PgConnectOptions,
    settings: &DatabaseSettings,
    max_connections: u32,
    availability: Arc<Availability>,
) -> PgPool {
    ping_when_idle(PgPoolOptions::new(), availability)
        .max_connections(max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options)
}

/// A connection idle for this long is pinged before use; one in steady use is not.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Pings a connection before handing it out only when it sat idle (it may have died with a
/// restarted PostgreSQL meanwhile), not on every acquire as sqlx does by default: under load
/// that ping is a round trip per call. A connection that dies between two calls is caught
/// by the database watch, which then fails calls fast until PostgreSQL answers.
///
/// A connection that was open when the database was lost is closed instead (the pool opens
/// another): after a switchover it may be alive on the old primary, demoted to a read-only
/// standby, where every write would fail for as long as the connection lives.
pub fn ping_when_idle(options: PgPoolOptions, availability: Arc<Availability>) -> PgPoolOptions {
    options
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let stale = availability.predates_loss(meta.age);
            Box::pin(async move {
                if stale {
                    return Ok(false);
                }
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Creates the database named in `options` if it does not exist yet. It connects to the
/// maintenance database `postgres` only when the database is missing: a runtime or owner role
/// needs no access to it once the database exists.
pub async fn ensure_database(options: &PgConnectOptions) -> anyhow::Result<()> {
    match PgConnection::connect_with(options).await {
        Ok(connection) => {
            connection.close().await.ok();
            return Ok(());
        }
        // 3D000: no such database; anything else is not ours to fix by creating it.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {}
        Err(e) => return Err(e).context(cannot_connect(options)),
    }
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .context("cannot connect to PostgreSQL's maintenance database to create the database")?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
        .execute(&mut admin)
        .await
    {
        Ok(_) => tracing::info!(database = %name, "database created"),
        // Another replica created it at the same moment (42P04 once it is there, 23505
        // when both inserted into the catalog at once).
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {
        }
        Err(e) => return Err(e).context("cannot create the database"),
    }
    admin.close().await.ok();
    Ok(())
}

/// What start-up does to the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Create the database if needed and migrate it: DDL, under the owner role.
    Migrate,
    /// Only check that every migration of this binary has run: the runtime role's way,
    /// which may not run DDL.
    Check,
}

/// Prepares the database for the service and returns a pool of `max_connections`: creates
/// and migrates it, or checks it was migrated (see [`Schema`]). Retries while PostgreSQL is
/// not reachable yet (a pod may start before its database) until the start-up timeout.
pub async fn prepare(
    settings: &DatabaseSettings,
    max_connections: u32,
    schema: Schema,
    availability: &Arc<Availability>,
) -> anyhow::Result<PgPool> {
    let options = connect_options(settings)?;
    // The migrator holds a session advisory lock from the first migration to the last: behind
    // a transaction pooler it migrates over the direct connection, or not at all.
    let migrate_options = match (settings.pooler, direct_options(settings)?) {
        (Pooler::None, _) => options.clone(),
        (Pooler::Transaction, Some(direct)) => direct,
        (Pooler::Transaction, None) if schema == Schema::Migrate => anyhow::bail!(
            "migrations need a session of their own, which a transaction pooler does not \
             lend: give --listen-database-url (LISTEN_DATABASE_URL), a direct connection to \
             PostgreSQL, or run `observer-registry migrate` against PostgreSQL directly and \
             serve with --no-migrate"
        ),
        (Pooler::Transaction, None) => options.clone(),
    };
    let deadline = Instant::now() + settings.startup_timeout;
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = async {
            let pool = pool(
                options.clone(),
                settings,
                max_connections,
                availability.clone(),
            );
            match schema {
                Schema::Migrate if settings.pooler == Pooler::Transaction => {
                    ensure_database(&migrate_options).await?;
                    let direct =
                        self::pool(migrate_options.clone(), settings, 1, availability.clone());
                    let migrated = migrate(&direct).await;
                    direct.close().await;
                    migrated.map(|migrated| migrated.map(|()| pool))
                }
                Schema::Migrate => {
                    ensure_database(&options).await?;
                    migrate(&pool).await.map(|migrated| migrated.map(|()| pool))
                }
                Schema::Check => check_migrated(&pool).await.map(|()| Ok(pool)),
            }
        };
        match attempt.await {
            Ok(Err(fatal)) => return Err(fatal),
            Ok(Ok(pool)) => {
                match schema {
                    Schema::Migrate => tracing::info!("database ready and migrated"),
                    Schema::Check => tracing::info!("database ready; migrated by `migrate`"),
                }
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

/// Runs the migrations. The outer error is worth waiting for (the database is not reachable);
/// the inner one is fatal: a migration that fails is a bug to report at once.
async fn migrate(pool: &PgPool) -> anyhow::Result<anyhow::Result<()>> {
    match MIGRATOR.run(pool).await {
        Err(sqlx::migrate::MigrateError::Execute(error)) if !is_connection_error(&error) => {
            Ok(Err(anyhow::Error::new(error).context("migration failed")))
        }
        Err(error) => Err(anyhow::Error::new(error).context("migration failed")),
        Ok(()) => Ok(Ok(())),
    }
}

/// Checks that every migration this binary knows has run (newer ones, from a newer release
/// migrated ahead of a rolling update, are fine). Every failure is worth waiting for until
/// the start-up timeout: the migration Job may still be running.
async fn check_migrated(pool: &PgPool) -> anyhow::Result<()> {
    // One simple-protocol statement: it needs no session beyond itself, behind a pooler too.
    let applied: Vec<i64> =
        match sqlx::raw_sql("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(|row| row.try_get(0)).collect())
        {
            Ok(applied) => applied,
            Err(error) if is_connection_error(&error) => {
                return Err(
                    anyhow::Error::new(error).context(cannot_connect(&pool.connect_options()))
                );
            }
            // No such table (42P01): never migrated; no SELECT on it (42501): not by us.
            Err(error) => {
                return Err(anyhow::Error::new(error).context(
                    "cannot read which migrations have run: run `observer-registry migrate` \
                 as the owner role first",
                ));
            }
        };
    let missing: Vec<i64> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .filter(|version| applied.binary_search(version).is_err())
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "the database lacks migrations {missing:?} of this release: run \
         `observer-registry migrate` as the owner role first"
    );
    Ok(())
}

/// What a failed connection attempt was, with its TLS mode: sqlx reports a certificate that
/// does not verify as an I/O error that never says TLS.
fn cannot_connect(options: &PgConnectOptions) -> String {
    let how = match options.get_ssl_mode() {
        PgSslMode::Disable => "without TLS (sslmode=disable)",
        PgSslMode::Allow => "with TLS only if the server insists (sslmode=allow)",
        PgSslMode::Prefer => "with TLS if the server offers it (sslmode=prefer)",
        PgSslMode::Require => "over TLS (sslmode=require)",
        PgSslMode::VerifyCa => "over TLS, verifying the server's certificate (sslmode=verify-ca)",
        PgSslMode::VerifyFull => {
            "over TLS, verifying the server's certificate and name (sslmode=verify-full)"
        }
    };
    format!("cannot connect to PostgreSQL {how}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::defaults;

    fn options(url: &str) -> PgConnectOptions {
        let settings = DatabaseSettings {
            url: url.to_owned(),
            ..defaults()
        };
        connect_options(&settings).unwrap()
    }

    #[test]
    fn tls_is_read_from_the_url_as_libpq_reads_it() {
        let base = "postgres://app@db.example:5432/registry";
        // libpq's default: TLS when the server offers it.
        let mode = |url: &str| format!("{:?}", options(url).get_ssl_mode());
        assert_eq!(mode(base), "Prefer");
        for (sslmode, want) in [
            ("disable", "Disable"),
            ("prefer", "Prefer"),
            ("require", "Require"),
            ("verify-ca", "VerifyCa"),
            ("verify-full", "VerifyFull"),
        ] {
            let url = format!("{base}?sslmode={sslmode}");
            assert_eq!(mode(&url), want, "{url}");
        }
        // `require` with a root certificate verifies the chain, as libpq does.
        let url = format!("{base}?sslmode=require&sslrootcert=/etc/ca.crt");
        assert_eq!(mode(&url), "VerifyCa");
        let url = format!("{base}?sslrootcert=/etc/ca.crt&sslmode=verify-full");
        assert_eq!(mode(&url), "VerifyFull");
        assert_eq!(options(&url).get_application_name(), Some(APPLICATION_NAME));
    }
}
