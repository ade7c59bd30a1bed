//! `export-observers`: writes an election's observers as CSV (format in `csv_format`) on
//! stdout, paging through ListObservers in its default order. The output imports into
//! another election unchanged.
//!
//! Nothing is written on stdout unless every page was read: a failed export never leaves a
//! file that looks complete. Exit code: 0 written, 2 the service refused or could not be
//! reached (the server's message on stderr).
//!
//! Also home to what both observer commands need as clients of the service: retries,
//! progress on stderr and reading an error's reason.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::cli::ClientArgs;
use crate::cli::csv_format::{self, Column};
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
/// Waits before calling again after UNAVAILABLE and the like.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

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
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(csv_format::header())?;

    let progress = Progress::new(0, "observers");
    let (mut count, mut without_document) = (0usize, 0usize);
    let mut page_token = String::new();
    loop {
        let request = pb::ListObserversRequest {
            parent: election.clone(),
            page_size: PAGE_SIZE,
            page_token: page_token.clone(),
            filter: args.filter.clone(),
            ..Default::default()
        };
        // Reads are safe to repeat; page tokens stay valid.
        let page = retrying(&progress, "export", || {
            let (mut client, request) = (client.clone(), request.clone());
            async move { client.list_observers(request).await }
        })
        .await;
        let page = match page {
            Ok(page) => page.into_inner(),
            Err(status) => {
                progress.finish();
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
    progress.finish();

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

// ---- shared by the observer commands ----

/// Makes a call, calling again after UNAVAILABLE, ABORTED or DEADLINE_EXCEEDED with
/// backoff. Only for calls that are safe to repeat: reads, dry runs, creates with a
/// `request_id`.
pub(crate) async fn retrying<T, F, Fut>(
    progress: &Progress,
    what: &str,
    mut call: F,
) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut waits = BACKOFF.iter();
    loop {
        match call().await {
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::Aborted | Code::DeadlineExceeded
                ) =>
            {
                let Some(wait) = waits.next() else {
                    return Err(status);
                };
                let (message, code) = (status.message(), status.code());
                let wait_text = humantime::format_duration(*wait);
                progress.line(&format!(
                    "{what}: {message} ({code:?}); retrying in {wait_text}"
                ));
                tokio::time::sleep(*wait).await;
            }
            result => return result,
        }
    }
}

/// The `ErrorInfo.reason` of a refusal (e.g. `HOST_COUNTRY_CITIZEN`), else its code.
pub(crate) fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_else(|| format!("{:?}", status.code()))
}

/// A progress bar when a person watches stderr; plain lines for logs and pipes.
#[derive(Clone)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(crate) fn new(len: usize, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(len as u64);
            if let Ok(style) = ProgressStyle::with_template(&format!(
                "{{bar:40}} {{pos}}/{{len}} {unit} {{elapsed}}"
            )) {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar }
    }

    /// A message that always shows (above the bar when there is one).
    pub(crate) fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Counts `done` more; `text` shows on a terminal only when `always`.
    pub(crate) fn advance(&self, done: usize, text: &str, always: bool) {
        match &self.bar {
            Some(bar) if always => {
                bar.println(text);
                bar.inc(done as u64);
            }
            Some(bar) => bar.inc(done as u64),
            None => eprintln!("{text}"),
        }
    }

    pub(crate) fn set(&self, position: u64, len: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(len);
            bar.set_position(position);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
