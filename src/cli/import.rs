//! `import-observers`: registers the observers of a CSV file (format in `csv_format`) with
//! BatchCreateObservers, one atomic batch per `--batch-size` rows in file order.
//!
//! Safe to run again: a batch's `request_id` is derived from the election and the batch's
//! values, so a batch that was imported before is replayed by the server, not created twice.
//! A refused batch writes nothing; its bad rows are all named (line and column), found by
//! re-checking the rest of the batch with `validate_only` until it passes.
//!
//! Calls the service cannot take for the moment (UNAVAILABLE, a broken connection) are
//! repeated by the client, under the same request id (`--retries`, `--timeout`); a batch
//! that lost a race (ABORTED) is sent again here.
//!
//! Exit code: 0 all imported (or already present), 1 some rows refused, 2 the file or the
//! service could not be used.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Context;
use sha2::{Digest, Sha256};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::cli::csv_format::{self, Column, Row, line_range, report};
use crate::cli::progress::Progress;
use crate::cli::{ClientArgs, reason};
use crate::client::{AuthenticatedChannel, ErrorDetails, ErrorReason};
use crate::pb::v1 as pb;
use pb::observer_service_client::ObserverServiceClient;

/// `import-observers`: the file, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The election to import into, e.g. elections/kz-2023.
    #[arg(long)]
    pub election: String,
    /// Rows per atomic batch (1 to 1000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// The CSV file (UTF-8, header row; columns in the README).
    pub file: std::path::PathBuf,
}

/// The v5 namespace of import request ids (random, fixed forever: changing it would make
/// every earlier import run look new).
const REQUEST_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5d1c_8e0a_4f3b_4b7e_9a21_c6d0_e8f4_7a13);
/// Rounds of "check the rest of a refused batch" before checking its rows one by one.
const ALONE_AFTER_ROUNDS: usize = 4;
/// Rows checked at the same time when checking rows one by one.
const ALONE_IN_FLIGHT: usize = 8;

pub async fn run(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    // Usage, file and connection problems: exit 2, distinct from refused rows (1).
    Ok(import(args).await.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::from(2)
    }))
}

async fn import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let election = csv_format::election_name(&args.election);
    let file = args.file.display();
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {file}"))?;
    let parsed = csv_format::parse(&bytes).with_context(|| format!("{file} cannot be imported"))?;
    if let Some(warning) = csv_format::describe_ignored(&parsed.ignored_columns) {
        eprintln!("{warning}");
    }
    let channel = crate::cli::connect(&args.client).await?;
    ensure_election(&channel, &election).await?;

    let batches: Vec<&[Row]> = parsed.rows.chunks(usize::from(args.batch_size)).collect();
    let progress = Progress::new(parsed.rows.len(), "rows");
    let mut importer = Importer {
        client: ObserverServiceClient::new(channel),
        election,
        progress: progress.clone(),
        attempts: args.client.retries,
    };
    let mut tally = Tally {
        batches: batches.len(),
        ..Tally::default()
    };
    for (number, rows) in batches.iter().enumerate() {
        let label = format!(
            "batch {}/{} (lines {})",
            number + 1,
            batches.len(),
            line_range(rows)
        );
        let outcome = importer.batch(rows, &label).await.inspect_err(|_| {
            progress.finish();
            eprintln!("{}", tally.summary());
        });
        let outcome = outcome.with_context(|| format!("{label}: stopped"))?;
        let (text, refused) = tally.count(outcome, rows.len(), &progress);
        progress.advance(rows.len(), &format!("{label}: {text}"), refused);
    }
    progress.finish();
    eprintln!("{}", tally.summary());
    Ok(ExitCode::from(u8::from(tally.refused_batches > 0)))
}

/// Refuses to start when the election does not exist: every batch would be refused.
async fn ensure_election(channel: &AuthenticatedChannel, election: &str) -> anyhow::Result<()> {
    let mut elections = pb::election_service_client::ElectionServiceClient::new(channel.clone());
    let get = pb::GetElectionRequest {
        name: election.to_owned(),
    };
    match elections.get_election(get).await {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::NotFound => {
            anyhow::bail!("{election} does not exist")
        }
        Err(status) => anyhow::bail!(
            "cannot read {election}: {}",
            describe(&status, None, &[], &[])
        ),
    }
}

#[derive(Debug, Default)]
struct Tally {
    imported: usize,
    replayed: usize,
    refused: usize,
    refused_batches: usize,
    batches: usize,
    /// Good rows of refused batches.
    not_imported: usize,
}

impl Tally {
    /// Counts a batch of `rows` rows; its line for the report, and whether it was refused.
    fn count(&mut self, outcome: Outcome, rows: usize, progress: &Progress) -> (String, bool) {
        match outcome {
            Outcome::Imported => {
                self.imported += rows;
                (format!("{rows} rows imported"), false)
            }
            Outcome::Replayed => {
                self.replayed += rows;
                (format!("{rows} rows already present (replayed)"), false)
            }
            Outcome::Refused { problems, bad_rows } => {
                for (_, problem) in &problems {
                    progress.line(problem);
                }
                self.refused += bad_rows;
                self.refused_batches += 1;
                self.not_imported += rows - bad_rows;
                let text =
                    format!("refused: {bad_rows} bad row(s); none of its {rows} rows were written");
                (text, true)
            }
        }
    }

    fn summary(&self) -> String {
        let mut line = format!(
            "summary: {} rows imported, {} already present (replayed), {} rows refused, {} of {} batches refused",
            self.imported, self.replayed, self.refused, self.refused_batches, self.batches
        );
        if self.not_imported > 0 {
            line.push_str(&format!(
                "; the other {} rows of the refused batches were not imported either (a batch is \
                 all or nothing)",
                self.not_imported
            ));
        }
        if self.refused_batches > 0 {
            line.push_str(": fix the rows named above in place and run the same command again");
        }
        line
    }
}

enum Outcome {
    Imported,
    Replayed,
    /// Report lines with the file line they are about, in file order.
    Refused {
        problems: Vec<(u64, String)>,
        bad_rows: usize,
    },
}

/// Cheap to clone (the channel and the bar are shared), so row checks can run side by side.
#[derive(Clone)]
struct Importer {
    client: ObserverServiceClient<AuthenticatedChannel>,
    election: String,
    progress: Progress,
    /// Sends of a batch that lost a race, the first included (`--retries`).
    attempts: u32,
}

impl Importer {
    async fn batch(&mut self, rows: &[Row], label: &str) -> anyhow::Result<Outcome> {
        let mut problems = Vec::new();
        let mut bad = BTreeSet::new();
        let mut entries = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            let entry = row.to_request(&self.election).map_err(|(column, message)| {
                problems.push(report(row.line, column, message));
                bad.insert(index);
            });
            entries.push(entry.ok());
        }

        let mut refusal = None;
        if bad.is_empty() {
            let all: Vec<pb::CreateObserverRequest> = entries.iter().flatten().cloned().collect();
            // The dry run tells a replay from a first import: only a batch whose people are
            // not registered yet passes it. It writes nothing.
            let dry_run = self.send(all.clone(), None, label).await?;
            match self
                .send(all, Some(request_id(&self.election, rows)), label)
                .await?
            {
                Ok(()) if dry_run.is_ok() => return Ok(Outcome::Imported),
                Ok(()) => return Ok(Outcome::Replayed),
                Err(status) => refusal = Some(status),
            }
        }

        self.isolate(rows, &entries, label, refusal, &mut bad, &mut problems)
            .await?;
        problems.sort_by_key(|(line, _)| *line);
        Ok(Outcome::Refused {
            problems,
            bad_rows: bad.len(),
        })
    }

    /// Names every bad row of a refused batch: the server names every malformed field at
    /// once but only the first broken rule, so check what is left until it passes. Each
    /// round removes at least one row, or stops.
    async fn isolate(
        &mut self,
        rows: &[Row],
        entries: &[Option<pb::CreateObserverRequest>],
        label: &str,
        mut refusal: Option<Status>,
        bad: &mut BTreeSet<usize>,
        problems: &mut Vec<(u64, String)>,
    ) -> anyhow::Result<()> {
        for round in 1..=rows.len() + 1 {
            let sent: Vec<usize> = (0..rows.len()).filter(|i| !bad.contains(i)).collect();
            let status = match refusal.take() {
                Some(status) => status,
                None if sent.is_empty() => break,
                // Still failing after a few rounds: many rows may break a rule the server
                // reports one at a time (say the file was imported before), and a round per
                // row would cost batch-size squared. Checking each row alone is linear; the
                // rounds then go on with the survivors together, for rows that only clash
                // with each other (the same person twice).
                None if round == ALONE_AFTER_ROUNDS => {
                    for (row, problem) in self.check_alone(&sent, entries, rows, label).await? {
                        bad.insert(row);
                        problems.push(problem);
                    }
                    continue;
                }
                None => {
                    let rest = sent.iter().filter_map(|&i| entries[i].clone()).collect();
                    match self.send(rest, None, label).await? {
                        Ok(()) => break,
                        Err(status) => status,
                    }
                }
            };
            let (found, rows_found) = attribute(&status, &sent, rows);
            problems.extend(found);
            if rows_found.is_empty() {
                // Not about any one row (e.g. the batch as a whole): nothing left to isolate.
                let text = describe(&status, None, &sent, rows);
                problems.push((u64::MAX, format!("lines {}: {text}", line_range(rows))));
                break;
            }
            bad.extend(rows_found);
        }
        Ok(())
    }

    /// Dry-runs each row alone: (row, report) for each problem found.
    async fn check_alone(
        &mut self,
        sent: &[usize],
        entries: &[Option<pb::CreateObserverRequest>],
        rows: &[Row],
        label: &str,
    ) -> anyhow::Result<Vec<(usize, (u64, String))>> {
        let mut refused = Vec::new();
        let mut waiting = sent
            .iter()
            .filter_map(|&row| Some((row, entries[row].clone()?)));
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < ALONE_IN_FLIGHT
                && let Some((row, entry)) = waiting.next()
            {
                let (mut importer, label) = (self.clone(), label.to_owned());
                running.spawn(async move { (row, importer.send(vec![entry], None, &label).await) });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (row, result) = done.context("a row check stopped")?;
            if let Err(status) = result? {
                let (mut found, _) = attribute(&status, &[row], rows);
                if found.is_empty() {
                    found.push(report(
                        rows[row].line,
                        None,
                        describe(&status, None, &[row], rows),
                    ));
                }
                refused.extend(found.into_iter().map(|problem| (row, problem)));
            }
        }
        Ok(refused)
    }

    /// One BatchCreateObservers call: `Ok(Err)` when the server refused the rows (nothing
    /// written), `Err` when the call could not be made.
    async fn send(
        &mut self,
        requests: Vec<pb::CreateObserverRequest>,
        request_id: Option<Uuid>,
        label: &str,
    ) -> anyhow::Result<Result<(), Status>> {
        let message = pb::BatchCreateObserversRequest {
            parent: self.election.clone(),
            requests,
            request_id: request_id.map(|id| id.to_string()).unwrap_or_default(),
            validate_only: request_id.is_none(),
        };
        // The client repeats the call after UNAVAILABLE or a broken connection, but not after
        // ABORTED: the batch lost a race with a concurrent change, wrote nothing, and the
        // service already ran it again a few times with jittered waits. Sending it once more
        // is safe: a dry run writes nothing and a real one carries its request_id, so a batch
        // that did commit before its answer was lost is replayed, not doubled.
        let mut attempt = 1;
        let result = loop {
            match self.client.batch_create_observers(message.clone()).await {
                Err(status) if lost_a_race(&status) && attempt < self.attempts => {
                    let (text, reason) = (status.message(), reason(&status));
                    self.progress
                        .line(&format!("{label}: {text} ({reason}); sending it again"));
                    attempt += 1;
                }
                result => break result,
            }
        };
        match result {
            Ok(_) => Ok(Ok(())),
            Err(status) => match status.code() {
                Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists => {
                    Ok(Err(status))
                }
                _ => anyhow::bail!("{}", stopped(&status)),
            },
        }
    }
}

/// ABORTED because of a concurrent change (not a stale etag, which a create never sends).
fn lost_a_race(status: &Status) -> bool {
    status.code() == Code::Aborted && status.reason() == Some(ErrorReason::Aborted)
}

/// Why the import stopped, and, when the service or the connection failed for longer than
/// the retries lasted (a status without the service's reason is the transport's), that
/// running the command again is how to go on.
fn stopped(status: &Status) -> String {
    let text = describe(status, None, &[], &[]);
    let for_the_moment = matches!(
        status.code(),
        Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded | Code::Aborted
    );
    if for_the_moment || status.reason().is_none() {
        format!(
            "{text}; run the same command again to go on: the batches already imported are \
             replayed, not registered twice"
        )
    } else {
        text
    }
}

/// The request id of a batch: the same election and the same values give the same id, so
/// running a file again replays the batches that were imported instead of failing on them.
/// Only the values of the format's columns count (not line numbers, column order or
/// ignored columns), so reordering columns or fixing other rows leaves a batch's id alone.
fn request_id(election: &str, rows: &[Row]) -> Uuid {
    let mut hash = Sha256::new();
    for value in rows.iter().flat_map(|r| &r.values) {
        // Length-prefixed, so that moving text from one cell to the next changes the hash.
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value.as_bytes());
    }
    let name = format!("{election}\n{:x}", hash.finalize());
    Uuid::new_v5(&REQUEST_ID_NAMESPACE, name.as_bytes())
}

/// Maps a refusal's `BadRequest` violations (`requests[i].observer.citizenship`) to lines and
/// columns of the file: the reports and the rows they name. `sent[i]` is the row of entry `i`.
fn attribute(
    status: &Status,
    sent: &[usize],
    rows: &[Row],
) -> (Vec<(u64, String)>, BTreeSet<usize>) {
    let (mut found, mut named) = (Vec::new(), BTreeSet::new());
    let violations = status.field_violations();
    // One broken rule (not a malformed field): the status message says more than the
    // violation, e.g. which other line is the same person.
    let single_rule = status.code() != Code::InvalidArgument && violations.len() == 1;
    for violation in &violations {
        let Some((entry, column)) = Column::of_entry_field(&violation.field) else {
            continue;
        };
        let Some(&row) = sent.get(entry) else {
            continue;
        };
        let description = (!single_rule).then_some(violation.description.as_str());
        let mut text = describe(status, description, sent, rows);
        if column.is_none() {
            // About the entry as a whole (`requests[3].observer`): say which part.
            let (_, part) = violation.field.split_once(']').unwrap_or_default();
            text = format!("{}: {text}", part.trim_start_matches('.'));
        }
        found.push(report(rows[row].line, column, text));
        named.insert(row);
    }
    // "Observer id taken" names the observer, not the entry.
    if violations.is_empty() && status.code() == Code::AlreadyExists {
        let taken = status
            .get_details_error_info()
            .and_then(|info| info.metadata.get("resource").cloned());
        let taken = taken.as_deref().and_then(|name| name.rsplit('/').next());
        if let Some(row) = sent
            .iter()
            .copied()
            .find(|&i| taken == Some(rows[i].get(Column::ObserverId).trim()))
        {
            let text = describe(status, None, sent, rows);
            found.push(report(rows[row].line, Some(Column::ObserverId), text));
            named.insert(row);
        }
    }
    (found, named)
}

/// `description (REASON)`, the description defaulting to the status message with entry
/// references (`requests[3]`) replaced by the line they stand for.
fn describe(status: &Status, description: Option<&str>, sent: &[usize], rows: &[Row]) -> String {
    let text = match description {
        Some(text) => text.to_owned(),
        None => {
            let lines: Vec<u64> = sent.iter().map(|&i| rows[i].line).collect();
            csv_format::entries_as_lines(status.message(), &lines)
        }
    };
    format!("{text} ({})", reason(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_follow_the_values_not_the_lines() {
        let row = |line, document: &str| Row {
            line,
            values: Column::ALL.map(|c| match c {
                Column::TravelDocumentNumber => document.to_owned(),
                _ => String::new(),
            }),
            malformed: None,
        };
        let id = request_id("elections/a", &[row(2, "N1"), row(3, "N2")]);
        assert_eq!(id, request_id("elections/a", &[row(7, "N1"), row(9, "N2")]));
        assert_ne!(id, request_id("elections/a", &[row(2, "N1"), row(3, "N3")]));
        assert_ne!(id, request_id("elections/b", &[row(2, "N1"), row(3, "N2")]));
        assert_eq!(id.get_version_num(), 5);
    }

    fn refusal(code: Code, reason: &str) -> Status {
        let details = tonic_types::ErrorDetails::with_error_info(
            reason,
            crate::client::ERROR_DOMAIN,
            std::collections::HashMap::new(),
        );
        Status::with_error_details(code, "refused", details)
    }

    #[test]
    fn only_a_lost_race_is_sent_again() {
        assert!(lost_a_race(&refusal(Code::Aborted, "ABORTED")));
        assert!(!lost_a_race(&refusal(Code::Aborted, "ETAG_MISMATCH")));
        assert!(!lost_a_race(&Status::aborted("from a proxy")));
        assert!(!lost_a_race(&refusal(Code::Unavailable, "UNAVAILABLE")));
    }

    #[test]
    fn a_stop_says_to_run_again_when_the_service_was_only_away() {
        let again = "run the same command again";
        let unreachable = stopped(&Status::unavailable("no answer from the service"));
        assert!(unreachable.contains("(Unavailable)") && unreachable.contains(again));
        let transport = stopped(&Status::unknown("transport error"));
        assert!(transport.contains(again), "{transport}");
        let denied = stopped(&refusal(Code::PermissionDenied, "PERMISSION_DENIED"));
        assert!(denied.contains("(PERMISSION_DENIED)") && !denied.contains(again));
    }
}
