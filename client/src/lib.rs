//! The client for partner systems of the Observer Registry: the generated messages and
//! stubs of `observer_registry.v1`, one connection with optional TLS and a client
//! certificate (mTLS), and a bearer token sent with every call.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use observer_registry_client::pb::v1::ListObserversRequest;
//! use observer_registry_client::{Client, ClientOptions};
//!
//! let options = ClientOptions { token: Some("the agency's token".into()), ..Default::default() };
//! let client = Client::connect("https://registry.cec.example:50051", options).await?;
//! let page = client
//!     .observers()
//!     .list_observers(ListObserversRequest { parent: "elections/kz-2023".into(), ..Default::default() })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Features choose the TLS backend (`tls-ring`, the default, or `tls-aws-lc`) and the roots
//! a server certificate is checked against when no CA certificate is given
//! (`tls-native-roots`, the default, or `tls-webpki-roots`).

#![deny(missing_docs)]

// Without a backend tonic has no TLS at all, and the error would point into tonic.
#[cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc")))]
compile_error!("observer-registry-client needs a TLS backend: the feature tls-ring or tls-aws-lc");

// The README's examples compile as doctests, so the quick start cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;

/// The generated contract.
pub mod pb {
    /// `observer_registry.v1`: every message and enum, and a client per service.
    // The contract's comments document most items; prost adds some (oneof modules, enum
    // helpers) without a comment.
    #[allow(
        missing_docs,
        clippy::doc_lazy_continuation,
        clippy::large_enum_variant
    )]
    pub mod v1 {
        tonic::include_proto!("observer_registry.v1");
    }
}

mod error_reason;
mod tls_failure;

pub use error_reason::{ERROR_DOMAIN, ErrorDetails, ErrorReason};
pub use tls_failure::TlsFailure;

// The versions this client is built with: a partner matches on `tonic::Code`, builds a
// `prost_types::Timestamp` or reads `tonic_types` details without pinning them by hand.
pub use prost_types;
pub use tonic;
pub use tonic_types;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tonic::codec::Streaming;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::pb::v1::audit_service_client::AuditServiceClient;
use crate::pb::v1::delegation_service_client::DelegationServiceClient;
use crate::pb::v1::election_service_client::ElectionServiceClient;
use crate::pb::v1::meeting_service_client::MeetingServiceClient;
use crate::pb::v1::observer_service_client::ObserverServiceClient;
use crate::pb::v1::organization_service_client::OrganizationServiceClient;
use crate::pb::v1::{
    DelegationEvent, MeetingEvent, ObserverEvent, WatchDelegationsRequest, WatchMeetingsRequest,
    WatchObserversRequest,
};

/// How to reach the service.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// The agency's bearer token, sent as `authorization: Bearer …`.
    pub token: Option<String>,
    /// PEM of the CA that signed the server's certificate; the system roots when unset.
    pub ca_certificate_pem: Option<Vec<u8>>,
    /// PEM certificate and key of the agency, for mutual TLS.
    pub client_identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the server's certificate is checked against, when not the URL's host.
    pub tls_domain_name: Option<String>,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the token or the key.
        f.debug_struct("ClientOptions")
            .field("token", &self.token.as_ref().map(|_| "****"))
            .field("ca_certificate_pem", &self.ca_certificate_pem.is_some())
            .field("client_identity_pem", &self.client_identity_pem.is_some())
            .field("tls_domain_name", &self.tls_domain_name)
            .finish()
    }
}

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ClientError {
    /// The endpoint or TLS settings are wrong, or the server cannot be reached.
    Transport(tonic::transport::Error),
    /// The token holds characters a header cannot carry.
    InvalidToken,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // "transport error" alone does not tell a partner which certificate to fix.
            ClientError::Transport(error) => match TlsFailure::find(error) {
                Some(failure) => write!(f, "cannot connect: {failure}"),
                None => write!(f, "cannot connect: {error}"),
            },
            ClientError::InvalidToken => f.write_str("the token is not a valid header value"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Transport(error) => Some(error),
            ClientError::InvalidToken => None,
        }
    }
}

impl From<tonic::transport::Error> for ClientError {
    fn from(error: tonic::transport::Error) -> Self {
        ClientError::Transport(error)
    }
}

/// Adds the bearer token to every call.
#[derive(Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// The interceptor for `token` (none: calls go without `authorization`).
    pub fn new(token: Option<&str>) -> Result<Self, ClientError> {
        token
            .map(|token| {
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| ClientError::InvalidToken)
            })
            .transpose()
            .map(BearerToken)
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel that authenticates every call.
pub type AuthenticatedChannel = InterceptedService<Channel, BearerToken>;

/// A connection to the service with a client per service.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    token: BearerToken,
}

impl Client {
    /// Connects to `endpoint` (`http://…` or `https://…`).
    pub async fn connect(
        endpoint: impl Into<String>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let token = BearerToken::new(options.token.as_deref())?;
        let endpoint: String = endpoint.into();
        let mut builder = Endpoint::from_shared(endpoint.clone())?;
        if endpoint.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            tls = match &options.ca_certificate_pem {
                Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
                None => with_roots(tls),
            };
            if let Some((cert, key)) = &options.client_identity_pem {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            if let Some(domain) = &options.tls_domain_name {
                tls = tls.domain_name(domain.clone());
            }
            builder = builder.tls_config(tls)?;
        }
        Ok(Client {
            channel: builder.connect().await?,
            token,
        })
    }

    /// Wraps an existing channel (e.g. one a test built).
    pub fn from_channel(channel: Channel, token: Option<&str>) -> Result<Self, ClientError> {
        Ok(Client {
            channel,
            token: BearerToken::new(token)?,
        })
    }

    /// The channel every service client of this connection uses.
    pub fn channel(&self) -> AuthenticatedChannel {
        self.authenticated()
    }

    fn authenticated(&self) -> AuthenticatedChannel {
        InterceptedService::new(self.channel.clone(), self.token.clone())
    }

    /// `observer_registry.v1.ElectionService` on this connection.
    pub fn elections(&self) -> ElectionServiceClient<AuthenticatedChannel> {
        ElectionServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.OrganizationService` on this connection.
    pub fn organizations(&self) -> OrganizationServiceClient<AuthenticatedChannel> {
        OrganizationServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.DelegationService` on this connection.
    pub fn delegations(&self) -> DelegationServiceClient<AuthenticatedChannel> {
        DelegationServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.ObserverService` on this connection.
    pub fn observers(&self) -> ObserverServiceClient<AuthenticatedChannel> {
        ObserverServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.MeetingService` on this connection.
    pub fn meetings(&self) -> MeetingServiceClient<AuthenticatedChannel> {
        MeetingServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.AuditService` on this connection.
    pub fn audit(&self) -> AuditServiceClient<AuthenticatedChannel> {
        AuditServiceClient::new(self.authenticated())
    }

    /// Follows WatchObservers of `parent` (e.g. `elections/kz-2023`) after `resume_token`
    /// (empty: changes from now on), reconnecting by itself; see [`Feed`].
    pub fn follow_observers(&self, parent: &str, resume_token: &str) -> Feed<ObserverEvent> {
        let (client, parent) = (self.observers(), parent.to_owned());
        Feed::new(
            Box::new(move |resume_token| {
                let (mut client, parent) = (client.clone(), parent.clone());
                Box::pin(async move {
                    let request = WatchObserversRequest {
                        parent,
                        resume_token,
                    };
                    Ok(client.watch_observers(request).await?.into_inner())
                })
            }),
            |event| &event.resume_token,
            resume_token,
        )
    }

    /// Follows WatchDelegations; see [`Client::follow_observers`].
    pub fn follow_delegations(&self, parent: &str, resume_token: &str) -> Feed<DelegationEvent> {
        let (client, parent) = (self.delegations(), parent.to_owned());
        Feed::new(
            Box::new(move |resume_token| {
                let (mut client, parent) = (client.clone(), parent.clone());
                Box::pin(async move {
                    let request = WatchDelegationsRequest {
                        parent,
                        resume_token,
                    };
                    Ok(client.watch_delegations(request).await?.into_inner())
                })
            }),
            |event| &event.resume_token,
            resume_token,
        )
    }

    /// Follows WatchMeetings; see [`Client::follow_observers`].
    pub fn follow_meetings(&self, parent: &str, resume_token: &str) -> Feed<MeetingEvent> {
        let (client, parent) = (self.meetings(), parent.to_owned());
        Feed::new(
            Box::new(move |resume_token| {
                let (mut client, parent) = (client.clone(), parent.clone());
                Box::pin(async move {
                    let request = WatchMeetingsRequest {
                        parent,
                        resume_token,
                    };
                    Ok(client.watch_meetings(request).await?.into_inner())
                })
            }),
            |event| &event.resume_token,
            resume_token,
        )
    }
}

/// The roots a server certificate is checked against when no CA certificate is given, as the
/// features chose them; with neither, only a given CA certificate is trusted.
fn with_roots(tls: ClientTlsConfig) -> ClientTlsConfig {
    #[cfg(feature = "tls-native-roots")]
    let tls = tls.with_native_roots();
    #[cfg(feature = "tls-webpki-roots")]
    let tls = tls.with_webpki_roots();
    tls
}

/// Opens a feed's stream after a resume token.
type OpenFeed<E> = Box<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Streaming<E>, Status>> + Send>>
        + Send
        + Sync,
>;

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A change feed followed across disconnections, server restarts and shutdowns: when the
/// stream breaks or ends, [`Feed::next`] reconnects with the last event's resume token
/// (backing off up to 5 s; at once when the stream reached the server's maximum age), so
/// every change arrives exactly once and in commit order.
/// Errors that a reconnection cannot fix (an invalid or expired token, a missing election,
/// missing credentials) are returned.
pub struct Feed<E> {
    open: OpenFeed<E>,
    token_of: fn(&E) -> &str,
    resume_token: String,
    stream: Option<Streaming<E>>,
    backoff: Duration,
}

impl<E> Feed<E> {
    fn new(open: OpenFeed<E>, token_of: fn(&E) -> &str, resume_token: &str) -> Self {
        Feed {
            open,
            token_of,
            resume_token: resume_token.to_owned(),
            stream: None,
            backoff: Duration::from_millis(100),
        }
    }

    /// The token of the last event returned: keep it to resume after a restart of your own.
    pub fn resume_token(&self) -> &str {
        &self.resume_token
    }

    /// Opens the stream now rather than at the first [`Feed::next`]: a feed without a resume
    /// token reports the changes committed after it opened, so open it before taking a
    /// snapshot with List.
    pub async fn open(&mut self) -> Result<(), Status> {
        if self.stream.is_none() {
            self.stream = Some((self.open)(self.resume_token.clone()).await?);
        }
        Ok(())
    }

    /// The next change.
    pub async fn next(&mut self) -> Result<E, Status> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => match (self.open)(self.resume_token.clone()).await {
                    Ok(stream) => self.stream.insert(stream),
                    Err(status) if transient(&status) => {
                        self.wait().await;
                        continue;
                    }
                    Err(status) => return Err(status),
                },
            };
            match stream.message().await {
                Ok(Some(event)) => {
                    self.resume_token = (self.token_of)(&event).to_owned();
                    self.backoff = Duration::from_millis(100);
                    return Ok(event);
                }
                // The server ended the stream (it is shutting down) or it broke: resume.
                Ok(None) => {
                    self.stream = None;
                    self.wait().await;
                }
                // The stream reached the server's maximum age: nothing is wrong, so resume
                // at once.
                Err(status) if reached_max_age(&status) => self.stream = None,
                Err(status) if transient(&status) => {
                    self.stream = None;
                    self.wait().await;
                }
                Err(status) => return Err(status),
            }
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

/// The server ended a stream at its maximum age (UNAVAILABLE / STREAM_MAX_AGE).
fn reached_max_age(status: &Status) -> bool {
    status.code() == Code::Unavailable
        && status
            .get_details_error_info()
            .is_some_and(|info| info.reason == "STREAM_MAX_AGE")
}

/// Failures a reconnection can fix.
fn transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::ResourceExhausted
    )
}
