//! Builds the tonic router (contract services, health, reflection, layers) and serves it on
//! an injected listener until the shutdown future resolves. Tests bind `127.0.0.1:0`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http::HeaderMap;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::aip::paging::PageTokens;
use crate::api::AppState;
use crate::api::audit::AuditApi;
use crate::api::delegations::DelegationApi;
use crate::api::elections::ElectionApi;
use crate::api::meetings::MeetingApi;
use crate::api::observers::ObserverApi;
use crate::api::organizations::OrganizationApi;
use crate::auth::{AuthLayer, IdentityStore};
use crate::clock::Clock;
use crate::config::Settings;
use crate::health::{self, Readiness};
use crate::pb;
use crate::pb::v1::audit_service_server::AuditServiceServer;
use crate::pb::v1::delegation_service_server::DelegationServiceServer;
use crate::pb::v1::election_service_server::ElectionServiceServer;
use crate::pb::v1::meeting_service_server::MeetingServiceServer;
use crate::pb::v1::observer_service_server::ObserverServiceServer;
use crate::pb::v1::organization_service_server::OrganizationServiceServer;
use crate::store;

/// What the server needs beyond the listener and the pool.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub health_check_interval: Duration,
    pub request_id_retention: Duration,
    pub clock: Clock,
    /// The agencies; `IdentityStore::anonymous()` when none are configured.
    pub identities: Arc<IdentityStore>,
    /// Whether anonymous callers are accepted when no agencies are configured.
    pub allow_anonymous: bool,
    /// TLS (and mutual TLS) for the server, when configured.
    pub tls: Option<ServerTlsConfig>,
}

impl ServeOptions {
    /// The options of the settings: reads the agencies file and the TLS material, and
    /// refuses anonymous callers on a non-loopback address unless explicitly allowed.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let identities = match &settings.identities {
            Some(path) => IdentityStore::load(path)?,
            None => IdentityStore::anonymous(),
        };
        let loopback = settings.listen_addr.ip().is_loopback();
        if !identities.is_configured() && !loopback && !settings.allow_anonymous {
            anyhow::bail!(
                "refusing to serve on {} without an agencies file: give --identities FILE \
                 (IDENTITIES_FILE), or --allow-anonymous (ALLOW_ANONYMOUS=true) to let anyone \
                 call with every role",
                settings.listen_addr
            );
        }
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => {
                let read = |path: &std::path::Path| {
                    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
                };
                let mut tls =
                    ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
                if let Some(ca) = &settings.tls_client_ca {
                    tls = tls
                        .client_ca_root(Certificate::from_pem(read(ca)?))
                        .client_auth_optional(true);
                }
                Some(tls)
            }
            _ => None,
        };
        Ok(ServeOptions {
            health_check_interval: settings.health_check_interval,
            request_id_retention: settings.request_id_retention,
            clock: Clock::system(),
            identities: Arc::new(identities),
            allow_anonymous: settings.allow_anonymous || loopback,
            tls,
        })
    }
}

/// How often forgotten request ids are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Serves until `shutdown` resolves; then readiness goes NOT_SERVING at once, new calls
/// are refused and the calls in flight finish.
pub async fn serve(
    listener: TcpListener,
    pool: PgPool,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let page_tokens = PageTokens::new(
        &store::secrets::page_token_key(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the page-token key: {e}"))?,
    );
    let state = AppState {
        pool: pool.clone(),
        page_tokens,
        clock: options.clock.clone(),
    };

    // Only complete services are served, and reflection lists only what is served.
    let services = vec![
        <ElectionServiceServer<ElectionApi> as NamedService>::NAME,
        <OrganizationServiceServer<OrganizationApi> as NamedService>::NAME,
        <DelegationServiceServer<DelegationApi> as NamedService>::NAME,
        <ObserverServiceServer<ObserverApi> as NamedService>::NAME,
        <MeetingServiceServer<MeetingApi> as NamedService>::NAME,
        <AuditServiceServer<AuditApi> as NamedService>::NAME,
    ];
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let readiness = Readiness::new(reporter, services.clone()).await;
    let (stopping_tx, stopping) = watch::channel(false);
    tokio::spawn(health::watch_database(
        pool.clone(),
        readiness.clone(),
        options.health_check_interval,
        stopping.clone(),
    ));
    tokio::spawn(purge_request_ids(
        pool.clone(),
        options.request_id_retention,
        stopping,
    ));

    let reflection_v1 = reflection(&services).build_v1().context("reflection v1")?;
    let reflection_v1alpha = reflection(&services)
        .build_v1alpha()
        .context("reflection v1alpha")?;

    let trace = TraceLayer::new_for_grpc()
        .make_span_with(|request: &http::Request<_>| {
            tracing::info_span!("grpc", method = %request.uri().path())
        })
        .on_request(())
        .on_response(|response: &http::Response<_>, latency: Duration, span: &Span| {
            // Errors come as trailers-only responses: the status is in the headers.
            if response.headers().contains_key("grpc-status") {
                log_request(Some(response.headers()), latency, span);
            }
        })
        .on_eos(|trailers: Option<&HeaderMap>, latency: Duration, span: &Span| {
            log_request(trailers, latency, span);
        })
        .on_failure(());

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = Server::builder();
    if let Some(tls) = options.tls.clone() {
        builder = builder.tls_config(tls).context("TLS configuration")?;
    }
    builder
        .layer(trace)
        .layer(AuthLayer::new(
            options.identities.clone(),
            options.allow_anonymous,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ElectionServiceServer::new(ElectionApi::new(state.clone())))
        .add_service(OrganizationServiceServer::new(OrganizationApi::new(
            state.clone(),
        )))
        .add_service(DelegationServiceServer::new(DelegationApi::new(
            state.clone(),
        )))
        .add_service(ObserverServiceServer::new(ObserverApi::new(state.clone())))
        .add_service(MeetingServiceServer::new(MeetingApi::new(state.clone())))
        .add_service(AuditServiceServer::new(AuditApi::new(state)))
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            let _ = stopping_tx.send(true);
            readiness.set(false).await;
            tracing::info!("shutdown started: refusing new calls, finishing calls in flight");
        })
        .await
        .context("gRPC server failed")?;
    tracing::info!("all calls finished");
    Ok(())
}

/// Reflection with the contract, health and `google.rpc` error types, so grpcurl can list,
/// describe and print error details readably.
fn reflection(services: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    services.iter().fold(builder, |builder, service| {
        builder.with_service_name(*service)
    })
}

/// One line per call: method (from the span), gRPC status code and latency.
fn log_request(headers: Option<&HeaderMap>, latency: Duration, span: &Span) {
    let code = headers
        .and_then(|h| h.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or(tonic::Code::Unknown);
    let latency_ms = latency.as_micros() as f64 / 1000.0;
    tracing::info!(parent: span, code = ?code, latency_ms, "request finished");
}

/// Forgets request ids past their retention, hourly, until shutdown.
async fn purge_request_ids(pool: PgPool, retention: Duration, mut stopping: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
        match store::request_ids::purge(&pool, retention).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "forgot expired request ids"),
            Err(error) => tracing::warn!(%error, "could not purge expired request ids"),
        }
    }
}
