//! Operator commands (`import-observers`, `export-observers`, `demo`, `bench`): clients of a running
//! service, built on the shipped generated client, never on the database.

pub mod bench;
pub mod csv_format;
pub mod demo;
pub mod export;
pub mod import;

use anyhow::Context;

use crate::client::{AuthenticatedChannel, Client, ClientOptions};
use crate::config::ClientArgs;

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
        tls_domain_name: None,
    };
    let client = Client::connect(args.server.clone(), options)
        .await
        .with_context(|| format!("cannot connect to {}", args.server))?;
    Ok(client.channel())
}
