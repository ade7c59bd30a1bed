//! The shipped client for partner systems: one connection, optional TLS with a client
//! certificate (mTLS), and a bearer token sent with every call.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use observer_registry::client::{Client, ClientOptions};
//! use observer_registry::pb::v1::ListObserversRequest;
//!
//! let options = ClientOptions { token: Some("the agency's token".into()), ..Default::default() };
//! let client = Client::connect("https://registry.cec.example:50051", options).await?;
//! let page = client
//!     .observers()
//!     .list_observers(ListObserversRequest { parent: "elections/kz-2023".into(), ..Default::default() })
//!     .await?;
//! # Ok(()) }
//! ```

use std::fmt;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use crate::pb::v1::audit_service_client::AuditServiceClient;
use crate::pb::v1::delegation_service_client::DelegationServiceClient;
use crate::pb::v1::election_service_client::ElectionServiceClient;
use crate::pb::v1::meeting_service_client::MeetingServiceClient;
use crate::pb::v1::observer_service_client::ObserverServiceClient;
use crate::pb::v1::organization_service_client::OrganizationServiceClient;

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
            ClientError::Transport(error) => write!(f, "cannot connect: {error}"),
            ClientError::InvalidToken => f.write_str("the token is not a valid header value"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<tonic::transport::Error> for ClientError {
    fn from(error: tonic::transport::Error) -> Self {
        ClientError::Transport(error)
    }
}

/// Adds the bearer token to every call.
#[derive(Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
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
                None => tls.with_native_roots(),
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

    pub fn elections(&self) -> ElectionServiceClient<AuthenticatedChannel> {
        ElectionServiceClient::new(self.authenticated())
    }

    pub fn organizations(&self) -> OrganizationServiceClient<AuthenticatedChannel> {
        OrganizationServiceClient::new(self.authenticated())
    }

    pub fn delegations(&self) -> DelegationServiceClient<AuthenticatedChannel> {
        DelegationServiceClient::new(self.authenticated())
    }

    pub fn observers(&self) -> ObserverServiceClient<AuthenticatedChannel> {
        ObserverServiceClient::new(self.authenticated())
    }

    pub fn meetings(&self) -> MeetingServiceClient<AuthenticatedChannel> {
        MeetingServiceClient::new(self.authenticated())
    }

    pub fn audit(&self) -> AuditServiceClient<AuthenticatedChannel> {
        AuditServiceClient::new(self.authenticated())
    }
}
