//! Readiness and liveness through `grpc.health.v1.Health`.
//!
//! The overall status (`""`) and every contract service are SERVING only while the database
//! answers and until shutdown starts: that is readiness. `liveness` stays SERVING while the
//! process runs, so Kubernetes does not restart pods because PostgreSQL is away.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::{Notify, watch};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Health service name for liveness probes.
pub const LIVENESS: &str = "liveness";

/// Sets the readiness of the whole server and each of its services at once.
#[derive(Debug, Clone)]
pub struct Readiness {
    reporter: HealthReporter,
    services: Vec<&'static str>,
}

impl Readiness {
    /// Starts NOT_SERVING: nothing is ready before the database has answered once.
    pub async fn new(reporter: HealthReporter, services: Vec<&'static str>) -> Self {
        reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        let readiness = Readiness { reporter, services };
        readiness.set(false).await;
        readiness
    }

    pub async fn set(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        for service in &self.services {
            self.reporter.set_service_status(*service, status).await;
        }
    }
}

/// What calls and probes need to know at once, without asking PostgreSQL: whether the
/// database answered its last check, and whether shutdown has started.
#[derive(Debug, Default)]
pub struct Availability {
    database_up: AtomicBool,
    stopping: AtomicBool,
    recheck: Notify,
    /// When the database was last lost (a broken connection, a failed check, a read-only
    /// server): the pool hands out no connection opened before, since after a switchover it
    /// may lead to the old primary, dead or now a read-only standby.
    lost_at: Mutex<Option<Instant>>,
}

impl Availability {
    pub fn new() -> Self {
        Availability::default()
    }

    /// Whether calls should try the database; when false they fail fast with UNAVAILABLE.
    pub fn database_up(&self) -> bool {
        self.database_up.load(Ordering::Acquire)
    }

    /// Ready for traffic: the database is up and shutdown has not started.
    pub fn ready(&self) -> bool {
        self.database_up() && !self.stopping.load(Ordering::Acquire)
    }

    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// A call lost its database connection: stop sending calls to the database and check it
    /// now rather than at the next interval.
    pub fn database_failed(&self) {
        self.database_lost();
        if self.database_up.swap(false, Ordering::AcqRel) {
            tracing::warn!("a call lost the database: failing calls fast until it answers");
        }
        self.recheck.notify_one();
    }

    /// Marks every connection open now as not to be reused (see [`Availability::predates_loss`]).
    pub fn database_lost(&self) {
        if let Ok(mut lost_at) = self.lost_at.lock() {
            *lost_at = Some(Instant::now());
        }
    }

    /// Whether a connection opened `age` ago was already open when the database was last
    /// lost: the pool closes it instead of handing it out.
    pub fn predates_loss(&self, age: Duration) -> bool {
        let Ok(lost_at) = self.lost_at.lock() else {
            return false;
        };
        lost_at.is_some_and(|lost| {
            Instant::now()
                .checked_sub(age)
                .is_none_or(|opened| opened <= lost)
        })
    }

    /// Records the result of a database check (the watch does; tests may).
    pub fn set_database_up(&self, up: bool) {
        self.database_up.store(up, Ordering::Release);
    }
}

/// While the database is down it is checked at least this often, so the service recovers
/// within a second of its return.
const DOWN_RECHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Checks the database on a connection of its own (a pool busy with calls must not read as
/// a database that is down) and reports it to readiness and to calls.
pub struct DatabaseWatch {
    options: PgConnectOptions,
    connection: Option<PgConnection>,
    readiness: Readiness,
    availability: Arc<Availability>,
    interval: Duration,
    serving: Option<bool>,
}

impl DatabaseWatch {
    pub fn new(
        pool: &PgPool,
        readiness: Readiness,
        availability: Arc<Availability>,
        interval: Duration,
    ) -> Self {
        DatabaseWatch {
            options: (*pool.connect_options()).clone(),
            connection: None,
            readiness,
            availability,
            interval,
            serving: None,
        }
    }

    /// Checks once and reports the result: up when the database answers as a primary.
    pub async fn check(&mut self) {
        // A check that hangs (a half-open connection) counts as down.
        let limit = self.interval.max(Duration::from_secs(1));
        let result = match tokio::time::timeout(limit, self.ping()).await {
            Ok(result) => result,
            Err(_) => Err("the check timed out".to_owned()),
        };
        if result.is_err() {
            self.connection = None;
            self.availability.database_lost();
        }
        let up = result.is_ok();
        self.availability.set_database_up(up);
        if self.serving != Some(up) {
            match &result {
                Ok(()) => tracing::info!("database reachable: SERVING"),
                Err(error) => tracing::warn!(%error, "database unreachable: NOT_SERVING"),
            }
            self.readiness.set(up).await;
            self.serving = Some(up);
        }
    }

    async fn ping(&mut self) -> Result<(), String> {
        if self.connection.is_none() {
            let connection = PgConnection::connect_with(&self.options)
                .await
                .map_err(|e| e.to_string())?;
            self.connection = Some(connection);
        }
        let Some(connection) = &mut self.connection else {
            return Err("no connection".to_owned());
        };
        // A standby answers but refuses every write: after a switchover the address may still
        // lead to the old primary, demoted, or to a standby not yet promoted.
        // The simple query protocol: no prepared statement, which a transaction pooler
        // (PgBouncer 1.18) would hand to another client's session.
        let row = sqlx::raw_sql("SELECT pg_is_in_recovery()")
            .fetch_one(connection)
            .await
            .map_err(|e| e.to_string())?;
        let in_recovery: bool = row.try_get(0).map_err(|e| e.to_string())?;
        if in_recovery {
            return Err("the server is a standby (in recovery): it refuses writes".to_owned());
        }
        Ok(())
    }

    /// Checks every interval (more often while down, and at once when a call lost the
    /// database) until `shutdown` turns true; then reports NOT_SERVING for good.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let wait = if self.availability.database_up() {
                self.interval
            } else {
                self.interval.min(DOWN_RECHECK_INTERVAL)
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.availability.recheck.notified() => {}
                _ = shutdown.wait_for(|stopping| *stopping) => break,
            }
            self.check().await;
            if *shutdown.borrow() {
                break;
            }
        }
        self.readiness.set(false).await;
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
        tracing::info!("shutting down: NOT_SERVING");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_open_when_the_database_was_lost_are_not_reused() {
        let availability = Availability::new();
        assert!(!availability.predates_loss(Duration::from_secs(3600)));
        availability.set_database_up(true);
        availability.database_failed();
        assert!(!availability.database_up());
        // Opened a second ago: before the loss. Opened from now on: after it.
        assert!(availability.predates_loss(Duration::from_secs(1)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!availability.predates_loss(Duration::from_millis(1)));
    }
}
