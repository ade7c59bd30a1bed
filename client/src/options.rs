//! How the client connects and calls: TLS, token, timeouts, keepalive, retries and
//! transport.

use std::fmt;
use std::time::Duration;

/// How to reach the service and how to call it. Every field has a default; set the ones you
/// need:
///
/// ```
/// use std::time::Duration;
/// use observer_registry_client::{ClientOptions, RetryPolicy};
///
/// let options = ClientOptions {
///     token: Some("the agency's token".into()),
///     timeout: Some(Duration::from_secs(5)),
///     retry: RetryPolicy { max_attempts: 3, ..Default::default() },
///     ..Default::default()
/// };
/// ```
#[derive(Clone)]
pub struct ClientOptions {
    /// The agency's bearer token, sent as `authorization: Bearer …`.
    pub token: Option<String>,
    /// PEM of the CA that signed the server's certificate; the system roots when unset.
    pub ca_certificate_pem: Option<Vec<u8>>,
    /// PEM certificate and key of the agency, for mutual TLS.
    pub client_identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the server's certificate is checked against, when not the URL's host.
    pub tls_domain_name: Option<String>,
    /// How long a connection (TCP and TLS) may take to set up. Default 10 s.
    pub connect_timeout: Duration,
    /// The deadline of a unary call that was given none of its own
    /// (`Request::set_timeout`), retries included; sent to the service as `grpc-timeout`, so
    /// it stops working on a call nobody waits for. Streams (Watch) get none. Default 30 s.
    pub timeout: Option<Duration>,
    /// HTTP/2 pings that find a dead connection (a peer gone without a FIN, a NAT that forgot
    /// the flow) before a call waits on it. Default: every 30 s, 10 s to answer, only while
    /// calls are open.
    pub keepalive: Option<Keepalive>,
    /// Connect at the first call instead of in [`Client::connect`](crate::Client::connect):
    /// a program can start while the service is down. Default false.
    pub lazy_connect: bool,
    /// Sent as `user-agent`, before tonic's own. Default `observer-registry-client/VERSION`;
    /// name your system here so the commission's operators can tell its calls apart.
    pub user_agent: String,
    /// When calls are repeated; see [`RetryPolicy`].
    pub retry: RetryPolicy,
    /// What carries the calls of [`Client::connect`](crate::Client::connect); see
    /// [`Transport`]. Default [`Transport::Http2`].
    pub transport: Transport,
}

/// What carries a [`Client`](crate::Client)'s calls. Both reconnect after a broken or closed
/// connection, keep the deadlines and retries of [`ClientOptions`], and spread calls over the
/// addresses of [`Client::connect_many`](crate::Client::connect_many).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/2 connections driven by `h2` directly, one per address, calls spread round
    /// robin: about 40 % less CPU per call than tonic's `Channel` (BENCHMARKS.md). Plain
    /// text only: an `https://` address is served by [`Transport::Channel`].
    #[default]
    Http2,
    /// tonic's `Channel` (hyper's client behind a buffer task): TLS, and the transport this
    /// client had before.
    Channel,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            token: None,
            ca_certificate_pem: None,
            client_identity_pem: None,
            tls_domain_name: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Some(Duration::from_secs(30)),
            keepalive: Some(Keepalive::default()),
            lazy_connect: false,
            user_agent: concat!("observer-registry-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryPolicy::default(),
            transport: Transport::default(),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the token or the key.
        f.debug_struct("ClientOptions")
            .field("token", &self.token.as_ref().map(|_| "****"))
            .field("ca_certificate_pem", &self.ca_certificate_pem.is_some())
            .field("client_identity_pem", &self.client_identity_pem.is_some())
            .field("tls_domain_name", &self.tls_domain_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("keepalive", &self.keepalive)
            .field("lazy_connect", &self.lazy_connect)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field("transport", &self.transport)
            .finish()
    }
}

/// HTTP/2 keepalive pings.
#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    /// Time between pings.
    pub interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    pub timeout: Duration,
    /// Ping also while no call is open, to find a dead connection before the next call.
    pub while_idle: bool,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            while_idle: false,
        }
    }
}

/// When a failed call is made again.
///
/// - Reads (Get, List, and opening a Watch) are repeated after UNAVAILABLE,
///   RESOURCE_EXHAUSTED or a broken connection.
/// - Creates and batches are repeated only with a `request_id`, with which the service
///   returns the first result instead of creating twice. The client fills in a fresh UUID
///   when the request's `request_id` is empty. Set your own to repeat a create safely across
///   restarts of your program.
/// - Other writes (updates, state changes, deletes) run at most once.
///
/// Waits grow exponentially with jitter, from `initial_backoff` up to `max_backoff`. No wait
/// reaches past the call's deadline: the call then ends with the last failure.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off. Default 5.
    pub max_attempts: u32,
    /// The wait before the second attempt. Default 100 ms.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts. Default 5 s.
    pub max_backoff: Duration,
    /// Random extra wait, as a fraction of the wait (0 to 100): 1.0 waits up to twice as long,
    /// so that clients refused together do not come back together. Default 1.0.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            jitter: 1.0,
        }
    }
}

impl RetryPolicy {
    /// One attempt per call.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }
}
