//! The admin port, plain HTTP beside gRPC: `/metrics` for Prometheus, `/livez` and
//! `/readyz` for probes that cannot speak gRPC (a sidecar that listens only on a Unix socket),
//! and the verification routes (`verify_http`) when they have no port of their own.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::health::Availability;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub availability: Arc<Availability>,
    pub pool: PgPool,
}

/// Serves the admin port, with `beside` (more routes, or an empty router), until `shutdown`
/// resolves.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    beside: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(beside);
    // The verification routes limit by the peer's address.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("admin HTTP server failed")
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(&state.pool),
    )
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if state.availability.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database is unreachable or the server is stopping\n",
        )
    }
}
