//! `observer-registry health`: asks a running service's `grpc.health.v1.Health/Check` and
//! exits 0 only when the answer is SERVING — a container health check (docker-compose, the
//! Dockerfile's HEALTHCHECK) with no grpcurl or probe binary in the image.

use std::process::ExitCode;
use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::ClientArgs;

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct HealthArgs {
    /// The service (`--addr` or `--server`: `host:port`, `http://…`, `https://…`), the
    /// credentials and `--timeout` (here the longest wait for the answer, connecting
    /// included; default 5s), as the other commands take them.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The health service name: "" (readiness: the database answers, no shutdown under
    /// way), `liveness` (the process runs) or a contract service.
    #[arg(long, default_value = "")]
    pub service: String,
}

/// The wait without `--timeout`: shorter than a container health check's interval.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Prints the status; exits 0 when SERVING, 1 when the service answers anything else, 2 when
/// no answer came (refused, unreachable, timed out), as the other commands do.
pub async fn run(args: &HealthArgs) -> anyhow::Result<ExitCode> {
    let timeout = args.client.timeout.unwrap_or(DEFAULT_TIMEOUT);
    Ok(match tokio::time::timeout(timeout, check(args)).await {
        Ok(Ok(ServingStatus::Serving)) => {
            println!("SERVING");
            ExitCode::SUCCESS
        }
        Ok(Ok(status)) => {
            println!("{}", status.as_str_name());
            ExitCode::from(1)
        }
        Ok(Err(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
        Err(_) => {
            eprintln!("error: no answer within {timeout:?}");
            ExitCode::from(2)
        }
    })
}

async fn check(args: &HealthArgs) -> anyhow::Result<ServingStatus> {
    let channel = crate::cli::connect(&args.client).await?;
    let request = HealthCheckRequest {
        service: args.service.clone(),
    };
    match HealthClient::new(channel).check(request).await {
        Ok(response) => Ok(response.into_inner().status()),
        // The health service's answer for a name it does not know.
        Err(status) if status.code() == tonic::Code::NotFound => Ok(ServingStatus::ServiceUnknown),
        Err(status) => anyhow::bail!("health check failed: {}", status.message()),
    }
}
