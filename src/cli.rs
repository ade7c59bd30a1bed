//! Operator commands (`import-observers`, `export-observers`, `demo`): clients of a running
//! service, built on the shipped generated client, never on the database.

pub mod demo;
pub mod export;
pub mod import;

use tonic::transport::Channel;

/// Connects to the service named by `--server`.
pub async fn connect(server: &str) -> anyhow::Result<Channel> {
    use anyhow::Context;
    Channel::from_shared(server.to_owned())
        .with_context(|| {
            format!("`{server}` is not a server address (e.g. http://127.0.0.1:50051)")
        })?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {server}"))
}
