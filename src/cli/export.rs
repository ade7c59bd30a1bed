//! `export-observers`: writes an election's observers as CSV (format in `csv_format`) on
//! stdout, paging through ListObservers in its default order. The output imports into
//! another election unchanged.
//!
//! Nothing is written on stdout unless every page was read: a failed export never leaves a
//! file that looks complete. Exit code: 0 written, 2 the service refused or could not be
//! reached (the server's message on stderr). A page that cannot be read for the moment is
//! read again by the client (`--retries`, `--timeout`); page tokens stay valid meanwhile.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::ClientArgs;
use crate::cli::csv_format::{self, Column};
use crate::cli::progress::Progress;
use crate::cli::reason;
use crate::client::AuthenticatedChannel;
use crate::pb::v1 as pb;
use pb::observer_service_client::ObserverServiceClient;

/// `export-observers`: what to export, and from which service.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The election to export, e.g. elections/kz-2023.
    #[arg(long)]
    pub election: String,
    /// An AIP-160 filter, as ListObservers takes it.
    #[arg(long, default_value = "")]
    pub filter: String,
}

/// The largest page ListObservers serves.
const PAGE_SIZE: i32 = 1000;

pub async fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    // Same convention as import-observers: 2 when the command could not do its job.
    Ok(match export(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    })
}

async fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let election = csv_format::election_name(&args.election);
    let channel = crate::cli::connect(&args.client).await?;
    let client = ObserverServiceClient::new(channel);
    let progress = Progress::new(0, "observers");
    let written = write_csv(&client, &election, &args.filter, &progress).await;
    progress.finish();
    let Written {
        csv,
        count,
        without_document,
    } = written?;

    let bytes = csv.into_inner().map_err(|e| e.into_error())?;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        // The reader stopped early (`| head`): not this command's failure.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Err(error) => return Err(anyhow::Error::new(error).context("cannot write to stdout")),
    }
    eprintln!("exported {count} observers of {election}");
    if without_document > 0 {
        // Without the personal-data-reader role the service blanks personal data.
        eprintln!(
            "warning: {without_document} observers have no travel_document_number (personal \
             data the service only returns to personal-data-readers): those rows will not \
             import elsewhere"
        );
    }
    Ok(())
}

/// The CSV of every page of the election's observers, as the service lists them.
struct Written {
    csv: csv::Writer<Vec<u8>>,
    count: usize,
    /// Rows without the personal data a caller without the role does not get.
    without_document: usize,
}

async fn write_csv(
    client: &ObserverServiceClient<AuthenticatedChannel>,
    election: &str,
    filter: &str,
    progress: &Progress,
) -> anyhow::Result<Written> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(csv_format::header())?;

    let (mut count, mut without_document) = (0usize, 0usize);
    let mut page_token = String::new();
    loop {
        let request = pb::ListObserversRequest {
            parent: election.to_owned(),
            page_size: PAGE_SIZE,
            page_token: page_token.clone(),
            filter: filter.to_owned(),
            ..Default::default()
        };
        let page = match client.clone().list_observers(request).await {
            Ok(page) => page.into_inner(),
            Err(status) => {
                let message = status.message();
                anyhow::bail!(
                    "cannot list the observers of {election}: {message} ({})",
                    reason(&status)
                );
            }
        };
        for observer in &page.observers {
            let record = csv_format::record(observer);
            if record[Column::TravelDocumentNumber as usize].is_empty() {
                without_document += 1;
            }
            csv.write_record(&record)?;
        }
        count += page.observers.len();
        let total = u64::try_from(page.total_size).unwrap_or(0);
        progress.set(count as u64, total.max(count as u64));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(Written {
        csv,
        count,
        without_document,
    })
}
