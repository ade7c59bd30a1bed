//! Readiness and liveness through `grpc.health.v1.Health`.
//!
//! The overall status (`""`) and every contract service are SERVING only while the database
//! answers and until shutdown starts: that is readiness. `liveness` stays SERVING while the
//! process runs, so Kubernetes does not restart pods because PostgreSQL is away.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
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

/// Pings the database every `interval` and reports readiness, until `shutdown` turns true;
/// then reports NOT_SERVING for good.
pub async fn watch_database(
    pool: PgPool,
    readiness: Readiness,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut serving: Option<bool> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stopping| *stopping) => break,
        }
        // A ping that hangs (a half-open connection) counts as down.
        let ping = tokio::time::timeout(
            interval.max(Duration::from_secs(1)),
            sqlx::query("SELECT 1").execute(&pool),
        )
        .await;
        if *shutdown.borrow() {
            break;
        }
        let up = matches!(ping, Ok(Ok(_)));
        if serving != Some(up) {
            if up {
                tracing::info!("database reachable: SERVING");
            } else {
                let error = match ping {
                    Ok(Err(e)) => e.to_string(),
                    _ => "ping timed out".to_owned(),
                };
                tracing::warn!(%error, "database unreachable: NOT_SERVING");
            }
            readiness.set(up).await;
            serving = Some(up);
        }
    }
    readiness.set(false).await;
    tracing::info!("shutting down: NOT_SERVING");
}
