//! Where the load generator's calls go and what carries them: the shipped client, with its
//! retries and default deadline turned off so that each call is measured once as sent, over
//! either of its transports (`Client::connect`'s default, HTTP/2 driven by h2 directly, or
//! tonic's `Channel`).
//!
//! The generator shares the machine's cores with the service and PostgreSQL: what it costs
//! per call is taken from what it measures, so it uses the lighter transport unless told
//! otherwise (BENCHMARKS.md).

use std::path::PathBuf;

use anyhow::Context as _;

use observer_registry_client::{
    Client, ClientOptions, RegistryChannel, RetryPolicy, Transport as ClientTransport,
};

/// The service under load and the agency's credentials.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Target {
    /// The running service, e.g. http://127.0.0.1:50051 (https:// for TLS, which
    /// goes over tonic's `Channel` whatever `--transport` says); a bare host:port means http://.
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
    async fn channel(&self, transport: ClientTransport) -> anyhow::Result<RegistryChannel> {
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
            transport,
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
    /// The shipped client over tonic's `Channel` (a buffer task, hyper's client).
    Channel,
    /// The shipped client over its default transport: HTTP/2 driven by h2 directly (plain
    /// text; https:// goes over `Channel`).
    Http2,
}

/// One connection's channel: the shipped client's, with the bearer token added to every call.
pub type Transport = RegistryChannel;

/// Connects one of `--connections`.
pub async fn connect(kind: TransportKind, target: &Target) -> anyhow::Result<Transport> {
    target
        .channel(match kind {
            TransportKind::Channel => ClientTransport::Channel,
            TransportKind::Http2 => ClientTransport::Http2,
        })
        .await
}
