//! Builds the tonic router (contract services, health, reflection, layers) and serves it on
//! an injected listener until the shutdown future resolves. Tests bind `127.0.0.1:0`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http::HeaderMap;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;
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
use crate::api::point_reads::ObserverReads;
use crate::api::watch::Feeds;
use crate::auth::{AuthLayer, IdentityStore};
use crate::clock::Clock;
use crate::config::{LimitSettings, Settings};
use crate::database::Database;
use crate::health::{Availability, DatabaseWatch, Readiness};
use crate::layers::deadline::DeadlineLayer;
use crate::layers::observe::ObserveLayer;
use crate::layers::shed::ShedLayer;
use crate::listen::Listener;
use crate::metrics::Metrics;
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
    /// How long the change feed keeps changes (and resume tokens stay valid).
    pub change_retention: Duration,
    pub clock: Clock,
    /// The agencies; `IdentityStore::anonymous()` when none are configured.
    pub identities: Arc<IdentityStore>,
    /// Whether anonymous callers are accepted when no agencies are configured.
    pub allow_anonymous: bool,
    /// TLS (and mutual TLS) for the server, when configured.
    pub tls: Option<ServerTlsConfig>,
    pub limits: Limits,
    /// The server's metrics, also served by the admin port.
    pub metrics: Arc<Metrics>,
    /// Database reachability and shutdown, also read by the admin port's `/readyz`.
    pub availability: Arc<Availability>,
}

/// What one caller or connection may ask of the server (see `Settings` for each).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent_requests: usize,
    pub max_concurrent_streams: u32,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub default_deadline: Duration,
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    pub max_connection_age: Duration,
    /// Coalesced GetObserver batches running at once (see `api::point_reads`).
    pub point_read_batches: usize,
}

impl Default for Limits {
    /// The defaults of the command line.
    fn default() -> Self {
        Limits::from_settings(&LimitSettings::default())
    }
}

/// One batch in flight per two cores: fewer batches in flight make bigger batches, and on
/// a small machine PostgreSQL does less per call that way (BENCHMARKS.md).
pub fn default_point_read_batches() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl Limits {
    pub fn from_settings(settings: &LimitSettings) -> Self {
        let bytes = |size: bytesize::ByteSize| usize::try_from(size.as_u64()).unwrap_or(usize::MAX);
        Limits {
            max_concurrent_requests: usize::try_from(settings.max_concurrent_requests)
                .unwrap_or(usize::MAX),
            max_concurrent_streams: settings.max_concurrent_streams,
            max_request_bytes: bytes(settings.max_request_bytes),
            max_response_bytes: bytes(settings.max_response_bytes),
            default_deadline: settings.default_deadline,
            http2_keepalive_interval: settings.http2_keepalive_interval,
            http2_keepalive_timeout: settings.http2_keepalive_timeout,
            max_connection_age: settings.max_connection_age,
            point_read_batches: settings
                .point_read_batches
                .map_or_else(default_point_read_batches, |n| n.max(1)),
        }
    }
}

impl ServeOptions {
    /// The options of the settings: reads the agencies file and the TLS material, and
    /// refuses anonymous callers on a non-loopback address unless explicitly allowed.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let identities = match &settings.identities.identities {
            Some(path) => IdentityStore::load(path)?,
            None => IdentityStore::anonymous(),
        };
        let allow_anonymous = settings.identities.allow_anonymous;
        let loopback = settings.listen_addr.is_local();
        if !identities.is_configured() && !loopback && !allow_anonymous {
            anyhow::bail!(
                "refusing to serve on {} without an agencies file: give --identities FILE \
                 (IDENTITIES_FILE), or --allow-anonymous (ALLOW_ANONYMOUS=true) to let anyone \
                 call with every role",
                settings.listen_addr
            );
        }
        let tls = &settings.tls;
        let tls = match (&tls.tls_cert, &tls.tls_key) {
            (Some(cert), Some(key)) => {
                let read = |path: &std::path::Path| {
                    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
                };
                let mut tls =
                    ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
                if let Some(ca) = &settings.tls.tls_client_ca {
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
            request_id_retention: settings.retention.request_id_retention,
            change_retention: settings.retention.change_retention,
            clock: Clock::system(),
            identities: Arc::new(identities),
            allow_anonymous: allow_anonymous || loopback,
            tls,
            limits: Limits::from_settings(&settings.limits),
            metrics: Arc::new(Metrics::new()),
            availability: Arc::new(Availability::new()),
        })
    }
}

/// How often forgotten request ids are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Serves until `shutdown` resolves; then readiness goes NOT_SERVING at once, new calls
/// are refused and the calls in flight finish.
pub async fn serve(
    listener: impl Into<Listener>,
    pool: PgPool,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let page_tokens = PageTokens::new(
        &store::secrets::page_token_key(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the page-token key: {e}"))?,
    );
    let limits = options.limits.clone();
    let db = Database {
        pool: pool.clone(),
        availability: options.availability.clone(),
        metrics: options.metrics.clone(),
    };
    let (stopping_tx, stopping) = watch::channel(false);
    let state = AppState {
        observer_reads: ObserverReads::start(db.clone(), limits.point_read_batches),
        feeds: Feeds::start(pool.clone(), stopping.clone(), options.change_retention),
        db,
        page_tokens,
        clock: options.clock.clone(),
        list_counts: Default::default(),
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
    let mut database_watch = DatabaseWatch::new(
        &pool,
        readiness.clone(),
        options.availability.clone(),
        options.health_check_interval,
    );
    // The first check before the first call, so no call is refused for want of one.
    database_watch.check().await;
    tokio::spawn(database_watch.run(stopping.clone()));
    tokio::spawn(purge_expired(
        pool.clone(),
        options.request_id_retention,
        options.change_retention,
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

    let mut builder = Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(limits.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        .max_connection_age(limits.max_connection_age);
    if let Some(tls) = options.tls.clone() {
        builder = builder.tls_config(tls).context("TLS configuration")?;
    }
    let request_bytes = limits.max_request_bytes;
    let response_bytes = limits.max_response_bytes;
    let router = builder
        .layer(trace)
        .layer(ObserveLayer::new(options.metrics.clone()))
        .layer(ShedLayer::new(
            limits.max_concurrent_requests,
            options.metrics.clone(),
        ))
        .layer(AuthLayer::new(
            options.identities.clone(),
            options.allow_anonymous,
        ))
        .layer(DeadlineLayer::new(limits.default_deadline))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            ElectionServiceServer::new(ElectionApi::new(state.clone()))
                .max_decoding_message_size(request_bytes)
                .max_encoding_message_size(response_bytes),
        )
        .add_service(
            OrganizationServiceServer::new(OrganizationApi::new(state.clone()))
                .max_decoding_message_size(request_bytes)
                .max_encoding_message_size(response_bytes),
        )
        .add_service(
            DelegationServiceServer::new(DelegationApi::new(state.clone()))
                .max_decoding_message_size(request_bytes)
                .max_encoding_message_size(response_bytes),
        )
        .add_service(
            ObserverServiceServer::new(ObserverApi::new(state.clone()))
                .max_decoding_message_size(request_bytes)
                .max_encoding_message_size(response_bytes),
        )
        .add_service(
            MeetingServiceServer::new(MeetingApi::new(state.clone()))
                .max_decoding_message_size(request_bytes)
                .max_encoding_message_size(response_bytes),
        )
        .add_service(
            AuditServiceServer::new(AuditApi::new(state))
                .max_decoding_message_size(request_bytes)
                .max_encoding_message_size(response_bytes),
        );

    let availability = options.availability.clone();
    let stopping = async move {
        shutdown.await;
        availability.set_stopping();
        let _ = stopping_tx.send(true);
        readiness.set(false).await;
        tracing::info!("shutdown started: refusing new calls, finishing calls in flight");
    };
    match listener.into() {
        Listener::Tcp(listener) => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, stopping)
                .await
                .context("gRPC server failed")?;
        }
        Listener::Unix(listener, path) => {
            let served = router
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stopping)
                .await;
            let _ = std::fs::remove_file(&path);
            served.context("gRPC server failed")?;
        }
    }
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

/// Forgets request ids and change-feed entries past their retention, hourly, until shutdown.
async fn purge_expired(
    pool: PgPool,
    retention: Duration,
    change_retention: Duration,
    mut stopping: watch::Receiver<bool>,
) {
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
        match store::changes::purge(&pool, change_retention).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "forgot change-feed entries past retention"),
            Err(error) => tracing::warn!(%error, "could not purge the change feed"),
        }
    }
}
