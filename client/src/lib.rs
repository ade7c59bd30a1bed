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

pub mod badge;
mod channel;
mod erasure;
mod error_reason;
mod feed;
mod http2;
mod list_stream;
mod methods;
mod options;
mod request_id;
mod tls_failure;
mod trace_context;

pub use channel::RegistryChannel;
pub use error_reason::{ERROR_DOMAIN, ErrorDetails, ErrorReason};
pub use feed::Feed;
pub use list_stream::ListStream;
pub use options::{ClientOptions, Keepalive, RetryPolicy, Transport};
pub use tls_failure::TlsFailure;

// The versions this client is built with: a partner matches on `tonic::Code`, builds a
// `prost_types::Timestamp` or reads `tonic_types` details without pinning them by hand.
pub use prost_types;
pub use tonic;
pub use tonic_types;

use std::fmt;

use http::header::HeaderValue;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use crate::pb::v1::audit_service_client::AuditServiceClient;
use crate::pb::v1::delegation_service_client::DelegationServiceClient;
use crate::pb::v1::election_service_client::ElectionServiceClient;
use crate::pb::v1::invitation_service_client::InvitationServiceClient;
use crate::pb::v1::meeting_service_client::MeetingServiceClient;
use crate::pb::v1::observer_service_client::ObserverServiceClient;
use crate::pb::v1::organization_service_client::OrganizationServiceClient;
use crate::pb::v1::verification_service_client::VerificationServiceClient;
use crate::pb::v1::{
    DelegationEvent, InvitationEvent, MeetingEvent, ObserverEvent, WatchDelegationsRequest,
    WatchInvitationsRequest, WatchMeetingsRequest, WatchObserversRequest,
};

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ClientError {
    /// The endpoint or TLS settings are wrong, or the server cannot be reached.
    Transport(tonic::transport::Error),
    /// The token holds characters a header cannot carry.
    InvalidToken,
    /// An address is not a URL the client can connect to, or none was given.
    InvalidEndpoint(String),
    /// No address could be reached (with [`Transport::Http2`]): the last failure.
    Unreachable(tonic::codegen::StdError),
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
            ClientError::InvalidEndpoint(endpoint) => {
                write!(f, "{endpoint:?} is not an address of the service")
            }
            ClientError::Unreachable(error) => write!(f, "cannot connect: {error}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Transport(error) => Some(error),
            ClientError::Unreachable(error) => Some(error.as_ref()),
            ClientError::InvalidToken | ClientError::InvalidEndpoint(_) => None,
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

/// The channel the service clients of a [`Client`] run over (the name it had before it
/// retried).
pub type AuthenticatedChannel = RegistryChannel;

/// A connection to the service with a client per service, over a [`RegistryChannel`].
#[derive(Clone)]
pub struct Client {
    channel: RegistryChannel,
}

impl Client {
    /// Connects to `endpoint` (`http://…` or `https://…`), or only prepares to with
    /// [`ClientOptions::lazy_connect`], over [`ClientOptions::transport`].
    pub async fn connect(
        endpoint: impl Into<String>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        Self::connect_many([endpoint.into()], options).await
    }

    /// Connects to several addresses of the service (its instances) and spreads the calls
    /// over them: a connection to each, calls round robin (with [`Transport::Http2`]) or to
    /// the least loaded (`Channel`), and an address that is down is skipped until it is back.
    /// Connecting succeeds when one address answers (with `Channel`, it never waits: the
    /// connections open at the first calls).
    pub async fn connect_many(
        endpoints: impl IntoIterator<Item = impl Into<String>>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let endpoints: Vec<String> = endpoints.into_iter().map(Into::into).collect();
        if endpoints.is_empty() {
            return Err(ClientError::InvalidEndpoint(String::new()));
        }
        // TLS is `Channel`'s: the light transport speaks plain text only.
        let plain_text = endpoints.iter().all(|e| e.starts_with("http://"));
        if options.transport == Transport::Http2 && plain_text {
            return Self::connect_http2(&endpoints, &options).await;
        }
        let mut builders = Vec::with_capacity(endpoints.len());
        for endpoint in &endpoints {
            builders.push(endpoint_builder(endpoint, &options)?);
        }
        let channel = match builders.len() {
            1 => {
                let builder = builders.remove(0);
                if options.lazy_connect {
                    builder.connect_lazy()
                } else {
                    builder.connect().await?
                }
            }
            _ => Channel::balance_list(builders.into_iter()),
        };
        Self::with_options(channel, &options)
    }

    async fn connect_http2(
        endpoints: &[String],
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        // The URL and user agent are checked as `Channel` checks them, with the same errors.
        for endpoint in endpoints {
            endpoint_builder(endpoint, options)?;
        }
        let addresses = endpoints
            .iter()
            .map(|e| {
                http2::Address::parse(e).ok_or_else(|| ClientError::InvalidEndpoint(e.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // As `Channel` sends it: the partner's name, then the library's.
        let user_agent = format!("{} tonic/{TONIC_VERSION}", options.user_agent);
        let transport = http2::Http2Transport::new(
            addresses,
            http2::Settings {
                connect_timeout: options.connect_timeout,
                keepalive: options.keepalive,
                user_agent: HeaderValue::try_from(user_agent).ok(),
            },
        );
        if !options.lazy_connect {
            transport
                .connect_all()
                .await
                .map_err(ClientError::Unreachable)?;
        }
        Self::over(channel::Inner::Http2(transport), options)
    }

    /// Wraps an existing channel (e.g. one a test built) with the token and the default
    /// timeout and retries.
    pub fn from_channel(channel: Channel, token: Option<&str>) -> Result<Self, ClientError> {
        let options = ClientOptions {
            token: token.map(str::to_owned),
            ..Default::default()
        };
        Self::with_options(channel, &options)
    }

    /// Wraps an existing channel with `options`' token, timeout and retries (its connection
    /// settings are the channel's own).
    pub fn with_options(channel: Channel, options: &ClientOptions) -> Result<Self, ClientError> {
        Self::over(channel::Inner::Channel(channel), options)
    }

    fn over(inner: channel::Inner, options: &ClientOptions) -> Result<Self, ClientError> {
        let authorization = options
            .token
            .as_deref()
            .map(|token| {
                HeaderValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| ClientError::InvalidToken)
            })
            .transpose()?;
        Ok(Client {
            channel: RegistryChannel::new(inner, authorization, options.timeout, options.retry),
        })
    }

    /// The channel every service client of this connection uses.
    pub fn channel(&self) -> RegistryChannel {
        self.authenticated()
    }

    fn authenticated(&self) -> RegistryChannel {
        self.channel.clone()
    }

    /// `observer_registry.v1.ElectionService` on this connection.
    pub fn elections(&self) -> ElectionServiceClient<RegistryChannel> {
        ElectionServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.OrganizationService` on this connection.
    pub fn organizations(&self) -> OrganizationServiceClient<RegistryChannel> {
        OrganizationServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.DelegationService` on this connection.
    pub fn delegations(&self) -> DelegationServiceClient<RegistryChannel> {
        DelegationServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.ObserverService` on this connection.
    pub fn observers(&self) -> ObserverServiceClient<RegistryChannel> {
        ObserverServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.MeetingService` on this connection.
    pub fn meetings(&self) -> MeetingServiceClient<RegistryChannel> {
        MeetingServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.InvitationService` on this connection.
    pub fn invitations(&self) -> InvitationServiceClient<RegistryChannel> {
        InvitationServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.AuditService` on this connection.
    pub fn audit(&self) -> AuditServiceClient<RegistryChannel> {
        AuditServiceClient::new(self.authenticated())
    }

    /// `observer_registry.v1.VerificationService` on this connection: ListBadgeKeys for
    /// [`badge::verify_badge`] offline, VerifyAccreditation for the record's current state.
    pub fn verification(&self) -> VerificationServiceClient<RegistryChannel> {
        VerificationServiceClient::new(self.authenticated())
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

    /// Follows WatchInvitations; see [`Client::follow_observers`].
    pub fn follow_invitations(&self, parent: &str, resume_token: &str) -> Feed<InvitationEvent> {
        let (client, parent) = (self.invitations(), parent.to_owned());
        Feed::new(
            Box::new(move |resume_token| {
                let (mut client, parent) = (client.clone(), parent.clone());
                Box::pin(async move {
                    let request = WatchInvitationsRequest {
                        parent,
                        resume_token,
                    };
                    Ok(client.watch_invitations(request).await?.into_inner())
                })
            }),
            |event| &event.resume_token,
            resume_token,
        )
    }
}

/// The tonic this client is built with, for the user agent the light transport sends.
const TONIC_VERSION: &str = "0.14";

/// `endpoint` as tonic's `Channel` connects to it, with the TLS and connection settings of
/// `options`.
fn endpoint_builder(endpoint: &str, options: &ClientOptions) -> Result<Endpoint, ClientError> {
    let mut builder = Endpoint::from_shared(endpoint.to_owned())?
        .connect_timeout(options.connect_timeout)
        .user_agent(options.user_agent.clone())?;
    if let Some(keepalive) = options.keepalive {
        builder = builder
            .http2_keep_alive_interval(keepalive.interval)
            .keep_alive_timeout(keepalive.timeout)
            .keep_alive_while_idle(keepalive.while_idle);
    }
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
    Ok(builder)
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
