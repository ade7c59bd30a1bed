//! PLACEHOLDER: being written.

use std::process::ExitCode;

use crate::config::ExportArgs;

pub async fn run(_args: &ExportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not written yet")
}
