//! `export-observers`: writes an election's observers as CSV (format in `csv_format`) on
//! stdout, paging through ListObservers in its default order. The output imports into
//! another election unchanged.
//!
//! Nothing is written on stdout unless every page was read: a failed export never leaves a
//! file that looks complete. Exit code: 0 written, 2 the service refused or could not be
//! reached (the server's message on stderr). A page that cannot be read for the moment is
//! read again by the client (`--retries`, `--timeout`); page tokens stay valid meanwhile.
//!
//! Once the election's personal data was erased (retention), its personal columns are empty,
//! and a `#` comment line before the header says when it was erased; `import-observers`
//! skips such lines.

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
        erased_at,
    } = written?;

    let mut bytes = Vec::new();
    if let Some(erased_at) = &erased_at {
        bytes.extend_from_slice(erasure_comment(erased_at).as_bytes());
    }
    bytes.extend(csv.into_inner().map_err(|e| e.into_error())?);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        // The reader stopped early (`| head`): not this command's failure.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Err(error) => return Err(anyhow::Error::new(error).context("cannot write to stdout")),
    }
    eprintln!("exported {count} observers of {election}");
    if erased_at.is_some() {
        eprintln!(
            "note: the personal data of {election} was erased (retention): the personal \
             columns are empty"
        );
    } else if without_document > 0 {
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
    /// When the election's personal data was erased, if it was (the latest erasure among its
    /// observers: an election is erased once, so they all carry the same time).
    erased_at: Option<prost_types::Timestamp>,
}

/// The comment line before the header of an export whose personal data was erased.
fn erasure_comment(erased_at: &prost_types::Timestamp) -> String {
    let nanos = u32::try_from(erased_at.nanos).unwrap_or(0);
    let when = chrono::DateTime::from_timestamp(erased_at.seconds, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| erased_at.to_string());
    format!(
        "# personal data erased at {when} (retention of personal data): \
         travel_document_number, date_of_birth, email and phone are empty\n"
    )
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
    let mut erased_at: Option<prost_types::Timestamp> = None;
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
            if let Some(time) = &observer.personal_data_erase_time
                && erased_at
                    .as_ref()
                    .is_none_or(|t| (t.seconds, t.nanos) < (time.seconds, time.nanos))
            {
                erased_at = Some(*time);
            }
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
        erased_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_erasure_comment_is_one_comment_line_naming_the_time() {
        let comment = erasure_comment(&prost_types::Timestamp {
            seconds: 1_686_960_000,
            nanos: 0,
        });
        assert!(comment.starts_with("# personal data erased at 2023-06-17T00:00:00Z"));
        assert_eq!(comment.matches('\n').count(), 1);
        assert!(comment.ends_with('\n'));
    }
}
