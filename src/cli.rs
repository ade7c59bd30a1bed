//! The command line: the server's subcommands and the operator commands
//! (`import-observers`, `export-observers`, `badges`, `verify-badge`, `demo`, `health`),
//! which are clients of a running service, built on the shipped generated client, never on
//! the database. Each command's own arguments live in its module; the server's settings in
//! `config`.

pub mod badge_key;
pub mod badges;
pub mod csv_format;
pub mod demo;
pub mod export;
pub mod health;
pub mod import;
mod progress;
pub mod verify_badge;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tonic::Status;

use crate::client::{AuthenticatedChannel, Client, ClientOptions, ErrorDetails, RetryPolicy};
use crate::config::Settings;

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
    /// Create the database if missing, migrate it, and serve gRPC (the default); with
    /// `--no-migrate` only check that the database is migrated, and serve.
    Serve,
    /// Create the database if missing and run the migrations, then exit: the only command
    /// that runs DDL, under the role that owns the schema.
    Migrate,
    /// Import observers from a CSV list into an election of a running service.
    ImportObservers(import::ImportArgs),
    /// Export an election's observers from a running service as CSV on stdout.
    ExportObservers(export::ExportArgs),
    /// Write the printable badges of an election's accredited observers: one SVG card each,
    /// and A4 sheets of ten to print and cut.
    Badges(badges::BadgesArgs),
    /// Load the Astana 2023 story into a running service (idempotent).
    Demo(demo::DemoArgs),
    /// Print the SHA-256 of a bearer token read from stdin, for the agencies file.
    HashToken,
    /// Ask a running service's gRPC health check; exit 0 only if it is SERVING.
    Health(health::HealthArgs),
    /// Write a new Ed25519 badge signing key (PKCS#8 PEM) for --badge-signing-key; print
    /// its public key and key id.
    BadgeKey(badge_key::BadgeKeyArgs),
    /// Verify a badge's token or verification URL: offline against a keys file (--keys),
    /// else online with VerifyAccreditation; exit 0 only if it is VALID.
    VerifyBadge(verify_badge::VerifyBadgeArgs),
}

/// Where the operator commands find the service.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClientArgs {
    /// The running service, e.g. http://127.0.0.1:50051 (https:// for TLS); a bare
    /// host:port means http://.
    #[arg(
        long,
        visible_alias = "addr",
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
    /// Deadline of each call, its retries included (the service caps it at its
    /// DEFAULT_DEADLINE); default 30s, for `health` 5s, connecting included.
    #[arg(long, env = "OBSERVER_REGISTRY_TIMEOUT", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Attempts per call, the first included (1: no retries). Reads, and creates and batches
    /// under their request_id, are sent again after UNAVAILABLE, RESOURCE_EXHAUSTED or a
    /// broken connection, with growing waits, within `--timeout`.
    #[arg(
        long,
        env = "OBSERVER_REGISTRY_RETRIES",
        default_value_t = RetryPolicy::default().max_attempts,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub retries: u32,
}

/// Connects to the service named by `--server`, with the agency's token and TLS material
/// when given: every call then carries the credentials.
pub async fn connect(args: &ClientArgs) -> anyhow::Result<AuthenticatedChannel> {
    Ok(connect_client(args).await?.channel())
}

/// [`connect`], as the shipped client itself (for its list streams).
pub async fn connect_client(args: &ClientArgs) -> anyhow::Result<Client> {
    let read = |path: &Option<std::path::PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
        path.as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
            .transpose()
    };
    let client_identity_pem = match (read(&args.client_cert)?, read(&args.client_key)?) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => anyhow::bail!("--client-cert and --client-key go together"),
    };
    let options = ClientOptions {
        token: args.token.clone(),
        ca_certificate_pem: read(&args.ca_cert)?,
        client_identity_pem,
        timeout: args.timeout.or(ClientOptions::default().timeout),
        retry: RetryPolicy {
            max_attempts: args.retries,
            ..Default::default()
        },
        // The commission's operators can tell these calls from partners' in the logs.
        user_agent: format!(
            "observer-registry/{} (operator command)",
            env!("CARGO_PKG_VERSION")
        ),
        ..Default::default()
    };
    let server = if args.server.contains("://") {
        args.server.clone()
    } else {
        format!("http://{}", args.server)
    };
    Client::connect(server, options)
        .await
        .with_context(|| format!("cannot connect to {}", args.server))
}

/// The service's reason for refusing a call (e.g. `HOST_COUNTRY_CITIZEN`), else its gRPC code
/// (a status the transport or a proxy made has no reason).
fn reason(status: &Status) -> String {
    status.reason().map_or_else(
        || format!("{:?}", status.code()),
        |reason| reason.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listen::ListenAddr;

    #[test]
    fn defaults_parse() {
        let cli = Cli::try_parse_from(["observer-registry"]).unwrap();
        assert_eq!(cli.settings.listen_addr.to_string(), "127.0.0.1:50051");
        assert!(cli.command.is_none());
        assert!(cli.settings.database.acquire_timeout < cli.settings.limits.default_deadline);
        assert_eq!(
            cli.settings.limits.max_request_bytes.as_u64(),
            4 * 1024 * 1024
        );
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
        assert_eq!(cli.settings.database.pool_size, 3);
        assert!(cli.settings.database.migrates_at_start());
        for args in [
            &["observer-registry", "serve", "--no-migrate"][..],
            &["observer-registry", "--migrate", "false"],
            &["observer-registry", "serve", "--migrate=no"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert!(!cli.settings.database.migrates_at_start(), "{args:?}");
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from([&["observer-registry"], args].concat())
    }

    #[test]
    fn operator_commands_take_a_call_timeout_and_attempts() {
        let cli = parse(&["demo", "--timeout", "1m 30s", "--retries", "2"]).unwrap();
        let Some(Command::Demo(demo)) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(demo.client.timeout, Some(Duration::from_secs(90)));
        assert_eq!(demo.client.retries, 2);

        let cli = parse(&["export-observers", "--election", "elections/a"]).unwrap();
        let Some(Command::ExportObservers(export)) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(export.client.timeout, None, "the client's default");
        assert_eq!(export.client.retries, RetryPolicy::default().max_attempts);

        // At least the first attempt; `health` takes the same --timeout.
        assert!(parse(&["demo", "--retries", "0"]).is_err());
        assert!(parse(&["health", "--timeout", "3s"]).is_ok());
    }

    #[test]
    fn verify_badge_is_offline_with_keys_and_online_without() {
        let verify_badge = |args: &[&str]| match parse(args).map(|cli| cli.command) {
            Ok(Some(Command::VerifyBadge(verify))) => verify,
            other => panic!("{other:?}"),
        };
        let verify = verify_badge(&["verify-badge", "-", "--keys", "keys.pem", "--json"]);
        assert_eq!((verify.badge.as_str(), verify.json), ("-", true));
        assert_eq!(verify.keys, Some("keys.pem".into()));
        let verify = verify_badge(&["verify-badge", "eyJ.e30.AA", "--token", "secret"]);
        assert_eq!(verify.badge, "eyJ.e30.AA");
        assert_eq!(verify.client.token.as_deref(), Some("secret"));
        assert_eq!(verify.keys, None);
        assert!(parse(&["verify-badge"]).is_err(), "the token is required");
    }
}
