//! Where the load generator's calls go and what carries them under the shipped client's
//! generated stubs and bearer token: the channel `Client::connect` gives partners, with its
//! retries and default deadline turned off so that each call is measured once as sent, or
//! one HTTP/2 connection driven by h2 directly.
//!
//! The direct connection exists because the generator shares the machine's cores with the
//! service and PostgreSQL: what it costs per call is taken from what it measures. hyper's
//! client (under `Channel`) sends a request's HEADERS, waits for flow-control capacity, then
//! sends its DATA, so each burst of calls costs two writes here and two reads in the server;
//! `Channel` also passes each call through a buffer task. Driven directly, a burst leaves in
//! one write and the generator's CPU per call comes near h2load's (BENCHMARKS.md).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use http_body::Body as _;
use tonic::body::Body;
use tonic::service::interceptor::InterceptedService;

use observer_registry_client::{BearerToken, Client, ClientOptions, RegistryChannel, RetryPolicy};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service under load and the agency's credentials.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Target {
    /// The running service, e.g. http://127.0.0.1:50051 (https:// for TLS, with
    /// `--transport channel`); a bare host:port means http://.
    #[arg(
        long,
        visible_alias = "addr",
        env = "OBSERVER_REGISTRY_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// The agency's bearer token.
    #[arg(long, env = "OBSERVER_REGISTRY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificate of the server (https); the system roots when not given.
    #[arg(long, env = "OBSERVER_REGISTRY_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// PEM client certificate of the agency (mutual TLS).
    #[arg(long, env = "OBSERVER_REGISTRY_CLIENT_CERT")]
    client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, env = "OBSERVER_REGISTRY_CLIENT_KEY")]
    client_key: Option<PathBuf>,
}

impl Target {
    fn url(&self) -> String {
        if self.server.contains("://") {
            self.server.clone()
        } else {
            format!("http://{}", self.server)
        }
    }

    /// The shipped client's channel, with TLS material when given. One attempt per call and
    /// no deadline but the run's: a retried call would count twice in the latencies, and a
    /// timed-out one would hide how slow the service got.
    async fn channel(&self) -> anyhow::Result<RegistryChannel> {
        let read = |path: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
            path.as_ref()
                .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
                .transpose()
        };
        let client_identity_pem = match (read(&self.client_cert)?, read(&self.client_key)?) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => anyhow::bail!("--client-cert and --client-key go together"),
        };
        let options = ClientOptions {
            token: self.token.clone(),
            ca_certificate_pem: read(&self.ca_cert)?,
            client_identity_pem,
            retry: RetryPolicy::never(),
            timeout: None,
            // The service's operators can tell load from partners' calls in the logs.
            user_agent: format!("observer-registry-loadgen/{}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = Client::connect(self.url(), options)
            .await
            .with_context(|| format!("cannot connect to {}", self.server))?;
        Ok(client.channel())
    }
}

/// How the calls travel; see the module's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportKind {
    /// The shipped client's channel (tonic's `Channel`: TLS, reconnection), without retries
    /// or a default deadline.
    Channel,
    /// One plain-text HTTP/2 connection per `--connections`, driven by h2 directly.
    Http2,
}

/// One connection's transport, with the bearer token added to every call.
#[derive(Clone)]
pub enum Transport {
    Channel(RegistryChannel),
    Http2(InterceptedService<Http2Connection, BearerToken>),
}

impl Transport {
    pub async fn connect(kind: TransportKind, target: &Target) -> anyhow::Result<Self> {
        match kind {
            TransportKind::Channel => Ok(Transport::Channel(target.channel().await?)),
            TransportKind::Http2 => {
                let token = BearerToken::new(target.token.as_deref())?;
                let connection = Http2Connection::connect(&target.url()).await?;
                Ok(Transport::Http2(InterceptedService::new(connection, token)))
            }
        }
    }
}

impl tower::Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Transport::Channel(channel) => channel.poll_ready(cx).map_err(Into::into),
            Transport::Http2(connection) => connection.poll_ready(cx),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self {
            Transport::Channel(channel) => {
                let call = channel.call(request);
                Box::pin(async move { Ok(call.await?.map(Body::new)) })
            }
            Transport::Http2(connection) => {
                let call = connection.call(request);
                Box::pin(async move { Ok(call.await?.map(Body::new)) })
            }
        }
    }
}

/// One HTTP/2 connection driven by `h2` directly. Each call's HEADERS and DATA are queued
/// together before the connection task runs, so a burst of calls leaves in one write, as
/// h2load sends them; hyper's client waits for flow-control capacity between the two and so
/// writes them apart, which doubles the packets both sides handle.
#[derive(Clone)]
pub struct Http2Connection {
    sender: h2::client::SendRequest<Bytes>,
    /// Put in front of each method's path, as `Channel` does: HTTP/2 needs both.
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
}

impl Http2Connection {
    async fn connect(server: &str) -> anyhow::Result<Self> {
        let origin: http::Uri = server
            .parse()
            .with_context(|| format!("{server} is not a URL"))?;
        anyhow::ensure!(
            origin.scheme_str() == Some("http"),
            "--transport http2 speaks plain text only; use --transport channel for {server}"
        );
        let authority = origin
            .authority()
            .with_context(|| format!("{server} has no host"))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((authority.host(), port))
            .await
            .with_context(|| format!("cannot connect to {server}"))?;
        stream.set_nodelay(true)?;
        // hyper's window sizes (h2's own, 64 KiB, would stall pages of ~30 KB).
        let (sender, connection) = h2::client::Builder::new()
            .initial_window_size(2 << 20)
            .initial_connection_window_size(5 << 20)
            .handshake(stream)
            .await
            .with_context(|| format!("HTTP/2 handshake with {server} failed"))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "load-generator connection closed");
            }
        });
        Ok(Http2Connection {
            sender,
            scheme: http::uri::Scheme::HTTP,
            authority,
        })
    }
}

impl tower::Service<http::Request<Body>> for Http2Connection {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Each call waits on its own handle's readiness (the server's stream limit).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let sender = self.sender.clone();
        let (scheme, authority) = (self.scheme.clone(), self.authority.clone());
        Box::pin(async move {
            let (mut head, mut body) = request.into_parts();
            head.version = http::Version::HTTP_2;
            let mut uri = head.uri.into_parts();
            uri.scheme = Some(scheme);
            uri.authority = Some(authority);
            head.uri = http::Uri::from_parts(uri)?;
            // A unary request's body is its one encoded message, ready at once.
            let mut message = BytesMut::new();
            while let Some(frame) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {
                if let Ok(data) = frame?.into_data() {
                    message.extend_from_slice(&data);
                }
            }
            let mut sender = sender.ready().await?;
            let (response, mut send) =
                sender.send_request(http::Request::from_parts(head, ()), false)?;
            send.send_data(message.freeze(), true)?;
            let response = response.await?;
            Ok(response.map(|received| {
                Body::new(ReceivedBody {
                    received,
                    data_done: false,
                })
            }))
        })
    }
}

/// A response body read from `h2`, giving flow-control window back as it is read.
struct ReceivedBody {
    received: h2::RecvStream,
    data_done: bool,
}

impl http_body::Body for ReceivedBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match std::task::ready!(self.received.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.received.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => self.data_done = true,
            }
        }
        match std::task::ready!(self.received.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.received.is_end_stream()
    }
}
