//! The router: the contract's services with their message-size limits, health and
//! reflection, behind the layers every call passes (trace, metrics, load shedding, the
//! bounds of health and reflection streams, authorization, deadline), served on a TCP or
//! Unix listener.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::{Limits, ServeOptions};
use crate::api::AppState;
use crate::api::audit::AuditApi;
use crate::api::delegations::DelegationApi;
use crate::api::elections::ElectionApi;
use crate::api::invitations::InvitationApi;
use crate::api::meetings::MeetingApi;
use crate::api::observers::ObserverApi;
use crate::api::organizations::OrganizationApi;
use crate::api::verification::VerificationApi;
use crate::auth::AuthLayer;
use crate::layers::deadline::DeadlineLayer;
use crate::layers::infra_streams::InfraStreamsLayer;
use crate::layers::observe::ObserveLayer;
use crate::layers::refusals::RefusalLog;
use crate::layers::shed::ShedLayer;
use crate::listen::Listener;
use crate::metrics::methods;
use crate::pb;
use crate::pb::v1::audit_service_server::AuditServiceServer;
use crate::pb::v1::delegation_service_server::DelegationServiceServer;
use crate::pb::v1::election_service_server::ElectionServiceServer;
use crate::pb::v1::invitation_service_server::InvitationServiceServer;
use crate::pb::v1::meeting_service_server::MeetingServiceServer;
use crate::pb::v1::observer_service_server::ObserverServiceServer;
use crate::pb::v1::organization_service_server::OrganizationServiceServer;
use crate::pb::v1::verification_service_server::VerificationServiceServer;

/// The contract's services. Only complete services are served, and reflection lists only
/// what is served.
pub(super) fn services() -> Vec<&'static str> {
    vec![
        <ElectionServiceServer<ElectionApi> as NamedService>::NAME,
        <OrganizationServiceServer<OrganizationApi> as NamedService>::NAME,
        <DelegationServiceServer<DelegationApi> as NamedService>::NAME,
        <ObserverServiceServer<ObserverApi> as NamedService>::NAME,
        <MeetingServiceServer<MeetingApi> as NamedService>::NAME,
        <InvitationServiceServer<InvitationApi> as NamedService>::NAME,
        <AuditServiceServer<AuditApi> as NamedService>::NAME,
        <VerificationServiceServer<VerificationApi> as NamedService>::NAME,
    ]
}

/// Serves every service behind the layers on `listener` until `stopping` resolves and the
/// calls in flight have finished. Building and serving stay in one function: the router's
/// type, with the trace layer's closures in it, cannot be named to pass it elsewhere.
pub(super) async fn run<H>(
    options: &ServeOptions,
    state: AppState,
    health_service: H,
    services: &[&'static str],
    listener: Listener,
    stopping: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    H: tower::Service<http::Request<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    H::Response: axum::response::IntoResponse,
    H::Future: Send + 'static,
{
    let limits = &options.limits;
    // The span of each call: named after the RPC as OpenTelemetry's RPC conventions say,
    // joined to the caller's trace. The auth layer records the agency into it, and the
    // observe layer the status code and the per-call log line, at the end of the body.
    let trace = TraceLayer::new_for_grpc()
        .make_span_with(call_span)
        .on_request(())
        .on_response(())
        .on_eos(())
        .on_failure(());

    let router = Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(limits.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        .max_connection_age(limits.max_connection_age)
        .max_connection_age_grace(limits.max_connection_age_grace)
        .layer(trace)
        .layer(ObserveLayer::new(
            options.metrics.clone(),
            Arc::new(RefusalLog::start()),
        ))
        .layer(InfraStreamsLayer::new(
            limits.max_infra_streams,
            limits.max_infra_streams_per_peer,
            limits.max_stream_age,
        ))
        .layer(AuthLayer::new(
            options.identities.clone(),
            options.allow_anonymous,
        ))
        .layer(ShedLayer::new(
            limits.max_concurrent_requests,
            options.metrics.clone(),
        ))
        .layer(DeadlineLayer::new(limits.default_deadline))
        .add_routes(contract_services(state, limits))
        .add_service(health_service)
        .add_service(reflection(services).build_v1().context("reflection v1")?)
        .add_service(
            reflection(services)
                .build_v1alpha()
                .context("reflection v1alpha")?,
        );
    // TLS is ours, not tonic's, so that a rotated certificate is served without a restart
    // (`server/tls.rs`).
    let served = match (listener, &options.tls) {
        (Listener::Tcp(listener), tls) => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            match tls {
                None => {
                    router
                        .serve_with_incoming_shutdown(incoming, stopping)
                        .await
                }
                Some(tls) => {
                    router
                        .serve_with_incoming_shutdown(tls.incoming(incoming), stopping)
                        .await
                }
            }
        }
        (Listener::Unix(listener, path), tls) => {
            let incoming = UnixListenerStream::new(listener);
            let served = match tls {
                None => {
                    router
                        .serve_with_incoming_shutdown(incoming, stopping)
                        .await
                }
                Some(tls) => {
                    router
                        .serve_with_incoming_shutdown(tls.incoming(incoming), stopping)
                        .await
                }
            };
            let _ = std::fs::remove_file(&path);
            served
        }
    };
    served.context("gRPC server failed")?;
    Ok(())
}

/// The contract's services, each with the message-size limits.
fn contract_services(state: AppState, limits: &Limits) -> Routes {
    let (request_bytes, response_bytes) = (limits.max_request_bytes, limits.max_response_bytes);
    // The generated servers share no trait for their size limits; a macro says it once.
    macro_rules! limited {
        ($server:ident, $api:ident) => {
            $server::new($api::new(state.clone()))
                .max_decoding_message_size(request_bytes)
                .max_encoding_message_size(response_bytes)
        };
    }
    Routes::new(limited!(ElectionServiceServer, ElectionApi))
        .add_service(limited!(OrganizationServiceServer, OrganizationApi))
        .add_service(limited!(DelegationServiceServer, DelegationApi))
        .add_service(limited!(ObserverServiceServer, ObserverApi))
        .add_service(limited!(MeetingServiceServer, MeetingApi))
        .add_service(limited!(InvitationServiceServer, InvitationApi))
        .add_service(limited!(AuditServiceServer, AuditApi))
        .add_service(limited!(VerificationServiceServer, VerificationApi))
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

/// The span of one call. The method comes from the table, never the raw path a caller chose.
/// Calls of the contract are traced at info; health checks, reflection and unknown paths,
/// which need no credentials, only at debug.
fn call_span<B>(request: &http::Request<B>) -> Span {
    let method = methods::lookup(request.uri().path());
    // `unknown` stays `unknown`; a known path loses its leading slash, as the conventions
    // name a span `package.Service/Method`.
    let name = method.path.strip_prefix('/').unwrap_or(method.path);
    macro_rules! call_span {
        ($level:ident) => {
            tracing::$level!(
                "grpc",
                method = method.path,
                otel.name = name,
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = method.labels.grpc_service,
                rpc.method = method.labels.grpc_method,
                rpc.grpc.status_code = tracing::field::Empty,
                agency = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
            )
        };
    }
    let span = if method.contract {
        call_span!(info_span)
    } else {
        call_span!(debug_span)
    };
    crate::telemetry::join_trace(&span, request.headers());
    span
}
