//! `badges --election ID --out DIR`: the printable badges of an election's accredited
//! observers, as the service makes them (GetObserverBadge): one SVG card per observer, named
//! after its accreditation number (`KZ-2023-000001.svg`), and A4 sheets of ten cards to print
//! and cut (`sheet-01.svg`, …). The agency needs the roles `reader` (to list the observers)
//! and `accreditor` (for the badges).
//!
//! Exit code: 0 written, 2 the service refused or could not be reached, or DIR could not be
//! written (the reason on stderr). Files already written stay: running it again rewrites them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tonic::{Code, Status};

use crate::badge::card;
use crate::cli::csv_format::election_name;
use crate::cli::progress::Progress;
use crate::cli::{ClientArgs, reason};
use crate::pb::v1 as pb;

/// `badges`: which election's badges, from which service, and where to write them.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BadgesArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The election, e.g. kz-2023 or elections/kz-2023.
    #[arg(long)]
    pub election: String,
    /// The folder for the cards and sheets; created if missing.
    #[arg(long)]
    pub out: PathBuf,
}

/// The largest page ListObservers serves.
const PAGE_SIZE: i32 = 1000;

pub async fn run(args: &BadgesArgs) -> anyhow::Result<ExitCode> {
    // The convention of import-observers and export-observers: 2 when the job is not done.
    Ok(match write_badges(args).await {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    })
}

async fn write_badges(args: &BadgesArgs) -> anyhow::Result<String> {
    let election = election_name(&args.election);
    let client = crate::cli::connect_client(&args.client).await?;
    let accredited = accredited_observers(&client, &election).await?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let progress = Progress::new(accredited.len(), "badges");
    let mut cards = Vec::with_capacity(accredited.len());
    for (done, name) in (1u64..).zip(&accredited) {
        let request = pb::GetObserverBadgeRequest { name: name.clone() };
        let badge = match client.observers().get_observer_badge(request).await {
            Ok(badge) => badge.into_inner(),
            Err(status) => {
                progress.finish();
                return Err(refused(
                    &status,
                    &format!("cannot make the badge of {name}"),
                ));
            }
        };
        let file = args.out.join(card_file_name(&badge.accreditation_number));
        write(&file, &badge.svg)?;
        cards.push(badge.svg);
        progress.set(done, accredited.len() as u64);
    }
    progress.finish();

    let sheets = cards.chunks(card::CARDS_PER_SHEET).count();
    let digits = sheets.to_string().len().max(2);
    for (index, chunk) in cards.chunks(card::CARDS_PER_SHEET).enumerate() {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let file = args.out.join(format!("sheet-{:0digits$}.svg", index + 1));
        write(&file, &card::sheet(&chunk))?;
    }
    Ok(format!(
        "wrote {} badges of {election} and {sheets} A4 sheets to {}",
        cards.len(),
        args.out.display()
    ))
}

/// The names of the election's ACCREDITED observers, every page, in the service's order.
async fn accredited_observers(
    client: &crate::client::Client,
    election: &str,
) -> anyhow::Result<Vec<String>> {
    let mut observers = client.list_observers_stream(pb::ListObserversRequest {
        parent: election.to_owned(),
        page_size: PAGE_SIZE,
        filter: "accreditation.state = ACCREDITED".to_owned(),
        ..Default::default()
    });
    let mut names = Vec::new();
    while let Some(observer) = observers.next().await {
        let observer = observer.map_err(|status| {
            refused(&status, &format!("cannot list the observers of {election}"))
        })?;
        names.push(observer.name);
    }
    Ok(names)
}

/// The service's refusal, with a hint where the operator can act on it.
fn refused(status: &Status, what: &str) -> anyhow::Error {
    let hint = match status.code() {
        Code::PermissionDenied => {
            " — the agency needs the roles reader (to list) and accreditor (for badges)"
        }
        Code::FailedPrecondition if reason(status) == "BADGE_SIGNING_DISABLED" => {
            " — start the service with --badge-signing-key (see `observer-registry badge-key`)"
        }
        _ => "",
    };
    anyhow::anyhow!("{what}: {} ({}){hint}", status.message(), reason(status))
}

/// A card's file name: its accreditation number, with anything a file system might take
/// for a path (or choke on) replaced.
fn card_file_name(accreditation_number: &str) -> String {
    let safe: String = accreditation_number
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.svg")
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_takes_an_election_and_a_folder() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "observer-registry",
            "badges",
            "--election",
            "kz-2023",
            "--out",
            "cards",
        ])
        .unwrap();
        let Some(crate::cli::Command::Badges(args)) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(
            (args.election.as_str(), args.out.as_path()),
            ("kz-2023", Path::new("cards"))
        );
        let missing_out = ["observer-registry", "badges", "--election", "kz-2023"];
        assert!(crate::cli::Cli::try_parse_from(missing_out).is_err());
    }

    #[test]
    fn a_badge_file_is_named_after_its_number_and_never_a_path() {
        assert_eq!(card_file_name("KZ-2023-000001"), "KZ-2023-000001.svg");
        assert_eq!(card_file_name("../x/y"), "___x_y.svg");
    }
}
