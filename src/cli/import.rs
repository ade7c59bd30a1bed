//! PLACEHOLDER: being written.

use std::process::ExitCode;

use crate::config::ImportArgs;

pub async fn run(_args: &ImportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not written yet")
}
