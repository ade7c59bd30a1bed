//! Configuration from flags and environment variables (flags win). Secrets are never printed.

use std::net::SocketAddr;
use std::time::Duration;

use bytesize::ByteSize;
use clap::{Args, Parser, Subcommand};

use crate::listen::ListenAddr;
use crate::telemetry::LogFormat;

/// Observer Registry: international election observation over gRPC.
#[derive(Debug, Parser)]
#[command(name = "observer-registry", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Create the database if missing, migrate it, and serve gRPC (the default).
    Serve,
    /// Create the database if missing and run the migrations, then exit.
    Migrate,
    /// Import observers from a CSV list into an election of a running service.
    ImportObservers(ImportArgs),
    /// Export an election's observers from a running service as CSV on stdout.
    ExportObservers(ExportArgs),
    /// Load the Astana 2023 story into a running service (idempotent).
    Demo(DemoArgs),
    /// Print the SHA-256 of a bearer token read from stdin, for the agencies file.
    HashToken,
    /// Load generator against a running service (the shipped client); prints one JSON line.
    Bench(BenchArgs),
}

/// What `bench` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// GetObserver of a random `o-N` of the loaded data set.
    GetObserver,
    /// ListObservers, first page of 100 with `citizenship = "CN"`.
    ListFirst,
    /// The same list, the page 90% deep.
    ListDeep,
    /// CreateObserver with a request id (checks, audit event, idempotency record).
    CreateObserver,
    /// BatchCreateObservers of `--batch-size` observers per call.
    Import,
    /// GetElectionSummary.
    Summary,
    /// grpc.health.v1.Health/Check: the transport's own cost, no database.
    Health,
    /// `--concurrency` idle WatchObservers streams held open for `--duration` (what idle
    /// watchers cost the service).
    Watchers,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// The election of the data set.
    #[arg(long, default_value = "elections/bench")]
    pub election: String,
    /// Observers `o-1` … `o-KEYS` of the data set (for GetObserver).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Callers at once (closed loop).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// HTTP/2 connections the calls spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Open loop: calls per second sent on schedule, instead of a closed loop.
    #[arg(long)]
    pub rate: Option<u32>,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured calls first, for as long as this.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// A fixed number of calls instead of a duration (closed loop), e.g. an import.
    #[arg(long)]
    pub total: Option<u64>,
    /// Observers per BatchCreateObservers call.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// What carries the calls: one HTTP/2 connection each, driven directly (lightest, plain
    /// text only), or tonic's `Channel` as `Client::connect` makes it.
    #[arg(long, value_enum, default_value = "http2")]
    pub transport: crate::cli::bench::TransportKind,
}

/// Where the operator commands find the service.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClientArgs {
    /// The running service, e.g. http://127.0.0.1:50051 (https:// for TLS).
    #[arg(
        long,
        env = "OBSERVER_REGISTRY_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// The agency's bearer token.
    #[arg(long, env = "OBSERVER_REGISTRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA certificate of the server (https); the system roots when not given.
    #[arg(long, env = "OBSERVER_REGISTRY_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// PEM client certificate of the agency (mutual TLS).
    #[arg(long, env = "OBSERVER_REGISTRY_CLIENT_CERT")]
    pub client_cert: Option<std::path::PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, env = "OBSERVER_REGISTRY_CLIENT_KEY")]
    pub client_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The election to import into, e.g. elections/kz-2023.
    #[arg(long)]
    pub election: String,
    /// Rows per atomic batch (1 to 1000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// The CSV file (UTF-8, header row; columns in the README).
    pub file: std::path::PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The election to export, e.g. elections/kz-2023.
    #[arg(long)]
    pub election: String,
    /// An AIP-160 filter, as ListObservers takes it.
    #[arg(long, default_value = "")]
    pub filter: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Where the gRPC server listens: `host:port`, or `unix:///path/to.sock` for a Unix
    /// domain socket (a sidecar's neighbours).
    #[arg(
        long,
        env = "LISTEN_ADDR",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    pub listen_addr: ListenAddr,

    /// Plain-HTTP admin port: `/metrics` (Prometheus), `/livez`, `/readyz`.
    #[arg(
        long,
        env = "METRICS_ADDR",
        default_value = "127.0.0.1:9464",
        global = true
    )]
    pub metrics_addr: SocketAddr,

    /// Calls handled at once by the whole server; more are refused at once with
    /// RESOURCE_EXHAUSTED instead of queueing. Health checks are never refused.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_concurrent_requests: u32,

    /// Coalesced GetObserver batches in flight at once (each one statement for every call
    /// queued); default one per two cores.
    #[arg(long, env = "POINT_READ_BATCHES", global = true)]
    pub point_read_batches: Option<usize>,

    /// HTTP/2 streams one connection may have open at once.
    #[arg(
        long,
        env = "MAX_CONCURRENT_STREAMS",
        default_value_t = 128,
        global = true
    )]
    pub max_concurrent_streams: u32,

    /// Largest request message; larger ones get OUT_OF_RANGE (the connection stays).
    #[arg(long, env = "MAX_REQUEST_BYTES", default_value = "4MiB", global = true)]
    pub max_request_bytes: ByteSize,

    /// Largest response message.
    #[arg(
        long,
        env = "MAX_RESPONSE_BYTES",
        default_value = "16MiB",
        global = true
    )]
    pub max_response_bytes: ByteSize,

    /// Deadline of calls that bring none (and the cap of those that do); the database
    /// work of a call never outlives it.
    #[arg(long, env = "DEFAULT_DEADLINE", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub default_deadline: Duration,

    /// How often an idle HTTP/2 connection is pinged to detect dead peers.
    #[arg(long, env = "HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub http2_keepalive_interval: Duration,

    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[arg(long, env = "HTTP2_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub http2_keepalive_timeout: Duration,

    /// Connections are closed gracefully after this age, so clients spread over new replicas.
    #[arg(long, env = "MAX_CONNECTION_AGE", default_value = "30m", value_parser = humantime::parse_duration, global = true)]
    pub max_connection_age: Duration,

    /// OTLP/gRPC endpoint for trace export (e.g. http://otel-collector:4317); off when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,

    /// PostgreSQL connection URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@localhost:5432/observer_registry",
        hide_env_values = true,
        hide_default_value = true,
        global = true
    )]
    pub database_url: String,

    /// Maximum number of database connections.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 16, global = true)]
    pub db_pool_size: u32,

    /// How long a request waits for a free database connection before UNAVAILABLE (kept
    /// below the default deadline, so an exhausted pool answers UNAVAILABLE, not a timeout).
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub db_acquire_timeout: Duration,

    /// Upper bound on any one SQL statement.
    #[arg(long, env = "DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub db_statement_timeout: Duration,

    /// How long start-up keeps retrying an unreachable database before giving up.
    #[arg(long, env = "DB_STARTUP_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub db_startup_timeout: Duration,

    /// How often readiness checks the database.
    #[arg(long, env = "HEALTH_CHECK_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub health_check_interval: Duration,

    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "SHUTDOWN_GRACE_PERIOD", default_value = "25s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_grace_period: Duration,

    /// How long a create's request_id is remembered (AIP-155; at least 24h).
    #[arg(long, env = "REQUEST_ID_RETENTION", default_value = "48h", value_parser = parse_retention, global = true)]
    pub request_id_retention: Duration,

    /// How long the change feed keeps changes; a resume token older than this is refused.
    #[arg(long, env = "CHANGE_RETENTION", default_value = "7d", value_parser = humantime::parse_duration, global = true)]
    pub change_retention: Duration,

    /// The agencies file (identities, roles, credentials); reloaded on SIGHUP. Without it,
    /// callers are anonymous with every role, which is allowed only on a loopback address.
    #[arg(long, env = "IDENTITIES_FILE", global = true)]
    pub identities: Option<std::path::PathBuf>,

    /// How often the agencies file is checked for changes (besides SIGHUP).
    #[arg(long, env = "IDENTITIES_RELOAD_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub identities_reload_interval: Duration,

    /// Accept anonymous callers (every role) on a non-loopback address without an agencies
    /// file. For trusted networks only.
    #[arg(long, env = "ALLOW_ANONYMOUS", global = true)]
    pub allow_anonymous: bool,

    /// PEM certificate chain of the server; with --tls-key, the service speaks TLS.
    #[arg(long, env = "TLS_CERT_FILE", requires = "tls_key", global = true)]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of the server.
    #[arg(long, env = "TLS_KEY_FILE", requires = "tls_cert", global = true)]
    pub tls_key: Option<std::path::PathBuf>,

    /// PEM CA certificate(s) that sign agencies' client certificates (mutual TLS); clients
    /// without a certificate may still present a bearer token.
    #[arg(long, env = "TLS_CLIENT_CA_FILE", requires = "tls_cert", global = true)]
    pub tls_client_ca: Option<std::path::PathBuf>,

    /// Log line format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,
}

fn parse_retention(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration < Duration::from_secs(24 * 3600) {
        return Err("must be at least 24h".to_owned());
    }
    Ok(duration)
}

impl Settings {
    /// Logs the effective configuration, with the database password masked.
    pub fn log(&self) {
        tracing::info!(
            listen_addr = %self.listen_addr,
            metrics_addr = %self.metrics_addr,
            max_concurrent_requests = self.max_concurrent_requests,
            max_concurrent_streams = self.max_concurrent_streams,
            point_read_batches = ?self.point_read_batches,
            max_request_bytes = %self.max_request_bytes,
            max_response_bytes = %self.max_response_bytes,
            default_deadline = %humantime::format_duration(self.default_deadline),
            http2_keepalive_interval = %humantime::format_duration(self.http2_keepalive_interval),
            http2_keepalive_timeout = %humantime::format_duration(self.http2_keepalive_timeout),
            max_connection_age = %humantime::format_duration(self.max_connection_age),
            otlp_endpoint = ?self.otlp_endpoint,
            database_url = %mask_password(&self.database_url),
            db_pool_size = self.db_pool_size,
            db_acquire_timeout = %humantime::format_duration(self.db_acquire_timeout),
            db_statement_timeout = %humantime::format_duration(self.db_statement_timeout),
            db_startup_timeout = %humantime::format_duration(self.db_startup_timeout),
            health_check_interval = %humantime::format_duration(self.health_check_interval),
            shutdown_grace_period = %humantime::format_duration(self.shutdown_grace_period),
            request_id_retention = %humantime::format_duration(self.request_id_retention),
            change_retention = %humantime::format_duration(self.change_retention),
            identities = ?self.identities,
            allow_anonymous = self.allow_anonymous,
            tls = self.tls_cert.is_some(),
            mutual_tls = self.tls_client_ca.is_some(),
            log_format = ?self.log_format,
            "configuration"
        );
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`; also masks a
/// `password=` query parameter.
pub fn mask_password(url: &str) -> String {
    let mut masked = url.to_owned();
    if let Some(scheme_end) = masked.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = masked[authority_start..]
            .find(['/', '?'])
            .map_or(masked.len(), |i| authority_start + i);
        if let Some(at) = masked[authority_start..authority_end].rfind('@') {
            let userinfo = &masked[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = authority_start + colon + 1;
                masked.replace_range(start..authority_start + at, "****");
            }
        }
    }
    if let Some(query_start) = masked.find('?') {
        let (base, query) = masked.split_at(query_start + 1);
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=****"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        masked = format!("{base}{query}");
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("postgres://postgres:s3cr@t@localhost:5432/db"),
            "postgres://postgres:****@localhost:5432/db"
        );
        assert_eq!(
            mask_password("postgres://localhost/db"),
            "postgres://localhost/db"
        );
        assert_eq!(
            mask_password("postgres://u@h/db?sslmode=require&password=x"),
            "postgres://u@h/db?sslmode=require&password=****"
        );
    }

    #[test]
    fn defaults_parse() {
        let cli = Cli::try_parse_from(["observer-registry"]).unwrap();
        assert_eq!(cli.settings.listen_addr.to_string(), "127.0.0.1:50051");
        assert!(cli.command.is_none());
        assert!(cli.settings.db_acquire_timeout < cli.settings.default_deadline);
        assert_eq!(cli.settings.max_request_bytes.as_u64(), 4 * 1024 * 1024);
        let cli = Cli::try_parse_from([
            "observer-registry",
            "--listen-addr",
            "unix:///run/registry.sock",
        ])
        .unwrap();
        assert_eq!(
            cli.settings.listen_addr,
            ListenAddr::Unix("/run/registry.sock".into())
        );
        let cli =
            Cli::try_parse_from(["observer-registry", "migrate", "--db-pool-size", "3"]).unwrap();
        assert_eq!(cli.command, Some(Command::Migrate));
        assert_eq!(cli.settings.db_pool_size, 3);
    }
}
