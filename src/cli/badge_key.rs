//! `observer-registry badge-key --out FILE`: a new Ed25519 badge signing key in PKCS#8 PEM,
//! for `--badge-signing-key`. The file is created readable by its owner only and never
//! overwritten (a lost key cannot be recovered, and badges signed with it verify only
//! while its public key is listed). The public key and its id go to stdout, to publish.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::badge::BadgeSigner;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BadgeKeyArgs {
    /// Where to write the private key; an existing file is never overwritten.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &BadgeKeyArgs) -> anyhow::Result<ExitCode> {
    let signer = BadgeSigner::generate()?;
    let pem = signer.to_pkcs8_pem()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&args.out).with_context(|| {
        format!(
            "cannot create {} (an existing key is never overwritten)",
            args.out.display()
        )
    })?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let public = signer.public();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "# badge key {}", public.key_id)?;
    write!(stdout, "{}", public.public_key_pem())?;
    Ok(ExitCode::SUCCESS)
}
