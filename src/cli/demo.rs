//! PLACEHOLDER: being written.

use std::process::ExitCode;

use crate::config::DemoArgs;

pub async fn run(_args: &DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not written yet")
}
