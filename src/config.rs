//! The server's configuration from flags and environment variables (flags win), grouped by
//! the part of the server that owns it. Each default is written once, in its `#[arg]`;
//! `Default` impls and tests take them from there ([`defaults`]). Secrets are never printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use clap::{Args, FromArgMatches};

use crate::listen::ListenAddr;
use crate::telemetry::LogFormat;

/// Settings shared by every subcommand (the operator commands use only the telemetry).
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

    #[command(flatten)]
    pub limits: LimitSettings,

    #[command(flatten)]
    pub database: DatabaseSettings,

    /// How often readiness checks the database.
    #[arg(long, env = "HEALTH_CHECK_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub health_check_interval: Duration,

    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "SHUTDOWN_GRACE_PERIOD", default_value = "25s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_grace_period: Duration,

    #[command(flatten)]
    pub retention: RetentionSettings,

    #[command(flatten)]
    pub identities: IdentitySettings,

    #[command(flatten)]
    pub tls: TlsSettings,

    #[command(flatten)]
    pub badges: BadgeSettings,

    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

/// What one caller or connection may ask of the server (`server::Limits` in use).
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Calls handled at once by the whole server; more are refused at once with
    /// RESOURCE_EXHAUSTED instead of queueing. Health checks are never refused.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_concurrent_requests: u32,

    /// Threads that run the calls (tokio's workers); default one fewer than the cores, at
    /// least one. The service shares its machine with PostgreSQL and its callers: with a
    /// worker per core, workers park and wake each other between calls, which on 2 cores
    /// cost GetObserver a third of its CPU time (BENCHMARKS.md).
    #[arg(long, env = "WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..), global = true)]
    pub worker_threads: Option<u16>,

    /// Coalesced GetObserver batches in flight at once (each one statement for every call
    /// queued); default one per two cores, at least two.
    #[arg(long, env = "POINT_READ_BATCHES", global = true)]
    pub point_read_batches: Option<usize>,

    /// Observers GetObserver keeps between calls, each with its election's change-feed
    /// position; a call is answered from them only when its batch's statement finds the
    /// election unchanged, and forgotten when it changes. 0 keeps none. About 150-300 bytes
    /// each (`api::point_reads::kept`), so the default is 15-30 MiB when full.
    #[arg(
        long,
        env = "POINT_READ_CACHE",
        default_value_t = 100_000,
        global = true
    )]
    pub point_read_cache: usize,

    /// Rows of ListObservers pages kept between calls, each page with its election's
    /// change-feed position; a page is answered from them only when its statement finds the
    /// election unchanged. 0 keeps none. About a kilobyte per row.
    #[arg(long, env = "LIST_CACHE_ROWS", default_value_t = 5_000, global = true)]
    pub list_cache_rows: usize,

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

    /// After a connection's maximum age, how long its calls in flight may take to finish
    /// before it is closed; without it, one endless stream would keep it open for good.
    #[arg(long, env = "MAX_CONNECTION_AGE_GRACE", default_value = "1m", value_parser = humantime::parse_duration, global = true)]
    pub max_connection_age_grace: Duration,

    /// Longest life of a stream (Watch, health Watch, reflection); a watch then ends with
    /// UNAVAILABLE / STREAM_MAX_AGE, and its client resumes with its last token.
    #[arg(long, env = "MAX_STREAM_AGE", default_value = "30m", value_parser = humantime::parse_duration, global = true)]
    pub max_stream_age: Duration,

    /// Watch streams one agency may have open at once; more are RESOURCE_EXHAUSTED /
    /// WATCH_LIMIT.
    #[arg(long, env = "MAX_WATCHES_PER_AGENCY", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_watches_per_agency: u32,

    /// Health Watch and reflection streams open at once across the server (they need no
    /// credentials); more are RESOURCE_EXHAUSTED / WATCH_LIMIT.
    #[arg(long, env = "MAX_INFRA_STREAMS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_infra_streams: u32,

    /// Of those, how many one peer address may hold, so that one outsider cannot take them
    /// all; more are RESOURCE_EXHAUSTED / WATCH_LIMIT.
    #[arg(long, env = "MAX_INFRA_STREAMS_PER_PEER", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_infra_streams_per_peer: u32,
}

/// How the service reaches PostgreSQL (`--database-url`, `--db-*`).
#[derive(Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL, read as libpq reads it (`sslmode`, `sslrootcert`, …); the
    /// database is created if it does not exist, unless start-up does not migrate.
    #[arg(
        long = "database-url",
        value_name = "DATABASE_URL",
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@localhost:5432/observer_registry",
        hide_env_values = true,
        hide_default_value = true,
        global = true
    )]
    pub url: String,

    /// The most database connections the service opens: the calls' pool, the point-read
    /// batches, the change-feed listener and the health check together.
    #[arg(
        long = "db-pool-size",
        value_name = "DB_POOL_SIZE",
        env = "DB_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub pool_size: u32,

    /// How long a request waits for a free database connection before UNAVAILABLE (kept
    /// below the default deadline, so an exhausted pool answers UNAVAILABLE, not a timeout).
    #[arg(long = "db-acquire-timeout", value_name = "DB_ACQUIRE_TIMEOUT", env = "DB_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub acquire_timeout: Duration,

    /// Upper bound on any one SQL statement.
    #[arg(long = "db-statement-timeout", value_name = "DB_STATEMENT_TIMEOUT", env = "DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub statement_timeout: Duration,

    /// How long start-up keeps retrying an unreachable database before giving up.
    #[arg(long = "db-startup-timeout", value_name = "DB_STARTUP_TIMEOUT", env = "DB_STARTUP_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub startup_timeout: Duration,

    /// Whether `serve` creates and migrates the database at start (`MIGRATE=false`: it only
    /// checks that `observer-registry migrate` has run, and needs no DDL privileges).
    #[arg(long = "migrate", value_name = "MIGRATE", env = "MIGRATE", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub migrate: bool,

    /// The same as `--migrate=false`: serve under a runtime role that may not run DDL.
    #[arg(long = "no-migrate", global = true)]
    pub no_migrate: bool,

    /// What DATABASE_URL reaches: PostgreSQL itself (`none`), or a pooler in transaction
    /// mode such as PgBouncer's `pool_mode = transaction` (`transaction`): then nothing the
    /// service relies on outlives a transaction (HA.md, "Behind PgBouncer").
    #[arg(
        long = "database-pooler",
        value_name = "DATABASE_POOLER",
        env = "DATABASE_POOLER",
        value_enum,
        default_value = "none",
        global = true
    )]
    pub pooler: Pooler,

    /// A direct connection to PostgreSQL, past any pooler, for the change feed's LISTEN and,
    /// behind a transaction pooler, for migrations (both need a session of their own).
    /// Unset: DATABASE_URL.
    #[arg(
        long = "listen-database-url",
        value_name = "LISTEN_DATABASE_URL",
        env = "LISTEN_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub listen_url: Option<String>,
}

/// What sits between the service and PostgreSQL (`--database-pooler`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Pooler {
    /// Nothing, or a pooler in session mode: a connection is one PostgreSQL session.
    #[default]
    None,
    /// A pooler in transaction mode: consecutive transactions of one connection may run in
    /// different PostgreSQL sessions.
    Transaction,
}

impl DatabaseSettings {
    /// Whether `serve` migrates at start.
    pub fn migrates_at_start(&self) -> bool {
        self.migrate && !self.no_migrate
    }
}

/// By hand, so that the URL's password never reaches a log or a panic message.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &mask_password(&self.url))
            .field("pool_size", &self.pool_size)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("startup_timeout", &self.startup_timeout)
            .field("migrate", &self.migrates_at_start())
            .field("pooler", &self.pooler)
            .field("listen_url", &self.listen_url.as_deref().map(mask_password))
            .finish()
    }
}

/// How long the server remembers what it must, and no longer.
#[derive(Debug, Clone, Args)]
pub struct RetentionSettings {
    /// How long a create's request_id is remembered (AIP-155; at least 24h).
    #[arg(long, env = "REQUEST_ID_RETENTION", default_value = "48h", value_parser = parse_retention, global = true)]
    pub request_id_retention: Duration,

    /// How long the change feed keeps changes; a resume token older than this is refused.
    #[arg(long, env = "CHANGE_RETENTION", default_value = "7d", value_parser = humantime::parse_duration, global = true)]
    pub change_retention: Duration,

    /// How often the service looks for elections whose personal data is due for erasure
    /// (`personal_data_retention_days` after voting day) and erases it; every replica may
    /// look, each election is erased once. 0s turns it off on this replica.
    #[arg(long, env = "PERSONAL_DATA_ERASE_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub personal_data_erase_interval: Duration,
}

/// Who may call: the agencies file, and whether anonymous callers are accepted.
#[derive(Debug, Clone, Args)]
pub struct IdentitySettings {
    /// The agencies file (identities, roles, credentials); reloaded on SIGHUP and when it
    /// changes, and refused whole (the previous one stays) when it has a mistake. Without it,
    /// callers are anonymous with every role, which is allowed only on a loopback address.
    #[arg(long, env = "IDENTITIES_FILE", global = true)]
    pub identities: Option<PathBuf>,

    /// How often the agencies file is checked for changes (besides SIGHUP).
    #[arg(long, env = "IDENTITIES_RELOAD_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub identities_reload_interval: Duration,

    /// Accept anonymous callers (every role) on a non-loopback address without an agencies
    /// file. For trusted networks only.
    #[arg(long, env = "ALLOW_ANONYMOUS", global = true)]
    pub allow_anonymous: bool,
}

/// The server's TLS material (mutual TLS with a client CA).
#[derive(Debug, Clone, Args)]
pub struct TlsSettings {
    /// PEM certificate chain of the server; with --tls-key, the service speaks TLS. The pair
    /// is re-read at the next handshake after either file changes (a rotated Secret).
    #[arg(long, env = "TLS_CERT_FILE", requires = "tls_key", global = true)]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of the server.
    #[arg(long, env = "TLS_KEY_FILE", requires = "tls_cert", global = true)]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate(s) that sign agencies' client certificates (mutual TLS); clients
    /// without a certificate may still present a bearer token.
    #[arg(long, env = "TLS_CLIENT_CA_FILE", requires = "tls_cert", global = true)]
    pub tls_client_ca: Option<PathBuf>,
}

/// Badges: the signing key, older keys that still verify, and verification by phones.
#[derive(Debug, Clone, Args)]
pub struct BadgeSettings {
    /// Ed25519 private key (PKCS#8 PEM, from `observer-registry badge-key`) that badges are
    /// signed with; without it GetObserverBadge is refused with BADGE_SIGNING_DISABLED.
    #[arg(long, env = "BADGE_SIGNING_KEY", global = true)]
    pub badge_signing_key: Option<PathBuf>,

    /// Files of older keys (public keys, or the old private key files) that badges printed
    /// before a rotation verify with; comma-separated.
    #[arg(
        long,
        env = "BADGE_VERIFICATION_KEYS",
        value_delimiter = ',',
        global = true
    )]
    pub badge_verification_keys: Vec<PathBuf>,

    /// The public verification page, e.g. `https://verify.cec.example/v`: the QR code then
    /// holds this URL with the token after `#`, and the service serves the page at this
    /// URL's path. Without it the QR code holds the bare token.
    #[arg(long, env = "BADGE_VERIFY_URL", global = true)]
    pub badge_verify_url: Option<String>,

    /// Plain-HTTP port for the public verification page and `GET /v1/verify`, without
    /// credentials. Unset: they are served on the admin port (--metrics-addr).
    #[arg(long, env = "VERIFY_ADDR", global = true)]
    pub verify_addr: Option<SocketAddr>,

    /// VerifyAccreditation calls one agency may make per second, sustained (bursts up to
    /// ten seconds' worth); more get RESOURCE_EXHAUSTED / RATE_LIMITED.
    #[arg(long, env = "VERIFY_RATE_PER_AGENCY", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub verify_rate_per_agency: u32,

    /// Verifications one client address may make per second over HTTP, sustained (bursts
    /// up to ten seconds' worth); more get HTTP 429.
    #[arg(long, env = "VERIFY_RATE_PER_ADDRESS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub verify_rate_per_address: u32,

    /// Reverse proxies in front of the verification port (addresses or networks,
    /// comma-separated, e.g. an Ingress's pod network): from them, the client address the
    /// per-address limit counts is taken from `X-Forwarded-For`.
    #[arg(
        long,
        env = "VERIFY_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub verify_trusted_proxies: Vec<String>,

    /// Verifications of unknown numbers or forged tokens by one agency or address within a
    /// minute above which it is logged as a possible enumeration and counted in metrics.
    #[arg(long, env = "VERIFY_ENUMERATION_THRESHOLD", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub verify_enumeration_threshold: u32,
}

impl Default for BadgeSettings {
    fn default() -> Self {
        defaults()
    }
}

/// Logs and traces.
#[derive(Debug, Clone, Args)]
pub struct TelemetrySettings {
    /// Log line format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,

    /// OTLP/gRPC endpoint for trace export (e.g. http://otel-collector:4317); off when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
}

/// The defaults of a group of flags: what the command line gives when no flag and no
/// environment variable is set. `Default` impls and tests take their defaults from here, so
/// that each is written once, in its `#[arg]`.
pub fn defaults<T: Args + FromArgMatches>() -> T {
    let command =
        T::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None::<&str>));
    // The built-in defaults always parse (`every_group_has_defaults` tries them all): a
    // failure here is a mistake in an `#[arg]`, caught like any other argument error.
    let parsed = command
        .try_get_matches_from(["defaults"])
        .and_then(|matches| T::from_arg_matches(&matches));
    match parsed {
        Ok(defaults) => defaults,
        Err(error) => error.exit(),
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        defaults()
    }
}

impl LimitSettings {
    /// `WORKER_THREADS`, or one fewer than the cores this process may use, at least one.
    pub fn worker_threads(&self) -> usize {
        self.worker_threads.map_or_else(
            || {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                default_worker_threads(cores)
            },
            usize::from,
        )
    }
}

/// A core left to PostgreSQL and the callers where there are two or more.
fn default_worker_threads(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

impl Default for RetentionSettings {
    fn default() -> Self {
        defaults()
    }
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
        let (limits, database) = (&self.limits, &self.database);
        let duration = humantime::format_duration;
        tracing::info!(
            listen_addr = %self.listen_addr,
            metrics_addr = %self.metrics_addr,
            max_concurrent_requests = limits.max_concurrent_requests,
            worker_threads = limits.worker_threads(),
            max_concurrent_streams = limits.max_concurrent_streams,
            point_read_batches = ?limits.point_read_batches,
            point_read_cache = limits.point_read_cache,
            list_cache_rows = limits.list_cache_rows,
            max_request_bytes = %limits.max_request_bytes,
            max_response_bytes = %limits.max_response_bytes,
            default_deadline = %duration(limits.default_deadline),
            http2_keepalive_interval = %duration(limits.http2_keepalive_interval),
            http2_keepalive_timeout = %duration(limits.http2_keepalive_timeout),
            max_connection_age = %duration(limits.max_connection_age),
            max_connection_age_grace = %duration(limits.max_connection_age_grace),
            max_stream_age = %duration(limits.max_stream_age),
            max_watches_per_agency = limits.max_watches_per_agency,
            max_infra_streams = limits.max_infra_streams,
            max_infra_streams_per_peer = limits.max_infra_streams_per_peer,
            otlp_endpoint = ?self.telemetry.otlp_endpoint,
            database_url = %mask_password(&database.url),
            db_pool_size = database.pool_size,
            db_acquire_timeout = %duration(database.acquire_timeout),
            db_statement_timeout = %duration(database.statement_timeout),
            db_startup_timeout = %duration(database.startup_timeout),
            migrate = database.migrates_at_start(),
            database_pooler = ?database.pooler,
            listen_database_url = ?database.listen_url.as_deref().map(mask_password),
            health_check_interval = %duration(self.health_check_interval),
            shutdown_grace_period = %duration(self.shutdown_grace_period),
            request_id_retention = %duration(self.retention.request_id_retention),
            change_retention = %duration(self.retention.change_retention),
            personal_data_erase_interval = %duration(self.retention.personal_data_erase_interval),
            identities = ?self.identities.identities,
            allow_anonymous = self.identities.allow_anonymous,
            tls = self.tls.tls_cert.is_some(),
            mutual_tls = self.tls.tls_client_ca.is_some(),
            log_format = ?self.telemetry.log_format,
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
    fn workers_leave_a_core_to_the_database_where_there_is_one_to_spare() {
        assert_eq!(default_worker_threads(1), 1);
        assert_eq!(default_worker_threads(2), 1);
        assert_eq!(default_worker_threads(8), 7);
        let mut limits = LimitSettings::default();
        assert!(limits.worker_threads() >= 1);
        limits.worker_threads = Some(3);
        assert_eq!(limits.worker_threads(), 3);
    }

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
    fn every_group_has_defaults() {
        let limits = LimitSettings::default();
        let database: DatabaseSettings = defaults();
        assert!(database.acquire_timeout < limits.default_deadline);
        assert_eq!(limits.max_request_bytes.as_u64(), 4 * 1024 * 1024);
        let retention = RetentionSettings::default();
        assert!(retention.request_id_retention >= Duration::from_secs(24 * 3600));
        // Personal data is erased in production unless an operator turns it off.
        assert_eq!(
            retention.personal_data_erase_interval,
            Duration::from_secs(300)
        );
        let _: Settings = defaults();
    }

    #[test]
    fn settings_never_print_the_password() {
        let settings = DatabaseSettings {
            url: "postgres://u:hunter2@h/db".to_owned(),
            pool_size: 1,
            acquire_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
            startup_timeout: Duration::from_secs(1),
            migrate: true,
            no_migrate: false,
            pooler: Pooler::Transaction,
            listen_url: Some("postgres://u:hunter3@direct/db".to_owned()),
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("hunter3"));
    }
}
