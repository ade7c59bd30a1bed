//! The command line: the server's subcommands and the operator commands
//! (`import-observers`, `export-observers`, `demo`, `health`), which are clients of a running
//! service, built on the shipped generated client, never on the database. Each command's
//! own arguments live in its module; the server's settings in `config`.

pub mod csv_format;
pub mod demo;
pub mod export;
pub mod health;
pub mod import;
mod progress;
mod retrying;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::client::{AuthenticatedChannel, Client, ClientOptions};
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
    /// Load the Astana 2023 story into a running service (idempotent).
    Demo(demo::DemoArgs),
    /// Print the SHA-256 of a bearer token read from stdin, for the agencies file.
    HashToken,
    /// Ask a running service's gRPC health check; exit 0 only if it is SERVING.
    Health(health::HealthArgs),
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
}

/// Connects to the service named by `--server`, with the agency's token and TLS material
/// when given: every call then carries the credentials.
pub async fn connect(args: &ClientArgs) -> anyhow::Result<AuthenticatedChannel> {
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
    let client = Client::connect(server, options)
        .await
        .with_context(|| format!("cannot connect to {}", args.server))?;
    Ok(client.channel())
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
}
