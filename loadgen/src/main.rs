//! `observer-registry-loadgen`: the load generator of `bench/run`, built on the shipped client.
//! Closed loop (`--concurrency` callers, each sending its next call when the last one
//! answered) or open loop (`--rate` calls per second sent on schedule, latency measured from
//! the intended send time so a stalled server cannot hide its queueing). Calls spread over
//! `--connections` HTTP/2 connections; latencies go into an HDR histogram; status codes are
//! counted, and only OK calls count as throughput. Prints one JSON object on stdout for
//! `bench/run`.
//!
//! A binary of its own, not a subcommand of the service, so that the production image
//! carries no load generator.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use observer_registry_client::pb::v1 as pb;
use pb::observer_service_client::ObserverServiceClient;
use tokio::time::Instant;
use tonic::Code;
use tracing_subscriber::EnvFilter;

use report::{Report, RunShape, Totals};
use transport::{Target, Transport, TransportKind};
use workload::Workload;

mod report;
mod transport;
mod workload;

/// Its CPU per call is taken from what it measures; see Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the generator calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// GetObserver of a random `o-N` of the loaded data set.
    GetObserver,
    /// ListObservers, first page of 100 with `citizenship = "CN"`.
    ListFirst,
    /// The same list, the page 90% deep.
    ListDeep,
    /// CreateObserver with a request id (checks, audit event, idempotency record).
    CreateObserver,
    /// BatchCreateObservers of `--batch-size` observers per call.
    Import,
    /// GetElectionSummary.
    Summary,
    /// VerifyAccreditation with the token of a random badge of the loaded set (badges
    /// fetched first with GetObserverBadge: the service needs a signing key).
    VerifyAccreditation,
    /// grpc.health.v1.Health/Check: the transport's own cost, no database.
    Health,
    /// `--concurrency` idle WatchObservers streams held open for `--duration` (what idle
    /// watchers cost the service).
    Watchers,
}

/// Load generator for a running Observer Registry (the shipped client); prints one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "observer-registry-loadgen", version, about)]
struct Args {
    #[command(flatten)]
    target: Target,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// The election of the data set.
    #[arg(long, default_value = "elections/bench")]
    election: String,
    /// Observers `o-1` … `o-KEYS` of the data set (for GetObserver).
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Callers at once (closed loop).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// HTTP/2 connections the calls spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Open loop: calls per second sent on schedule, instead of a closed loop.
    #[arg(long)]
    rate: Option<u32>,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured calls first, for as long as this.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// A fixed number of calls instead of a duration (closed loop), e.g. an import.
    #[arg(long)]
    total: Option<u64>,
    /// The list scenarios' filter; empty lists every observer of the election (the Astana
    /// story's size is listed whole, in pages of 100).
    #[arg(long, default_value = "citizenship = \"CN\"")]
    filter: String,
    /// Observers per BatchCreateObservers call.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// What carries the calls of the shipped client (without retries or a default deadline):
    /// its default transport, one HTTP/2 connection each driven directly (lightest; plain
    /// text only), or tonic's `Channel`.
    #[arg(long, value_enum, default_value = "http2")]
    transport: TransportKind,
}

/// One thread, as h2load runs, so the generator takes as little of the machine it measures
/// as it can.
fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    // Logs on stderr, colored only on a terminal: stdout carries only the report.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .init();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(&args))
}

/// Connects, warms up, measures in a closed or open loop, and prints the report.
async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let connections = args.connections.max(1);
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(transport::connect(args.transport, &args.target).await?);
    }
    let mut workload = Workload::new(args);
    if matches!(args.scenario, Scenario::ListDeep) {
        workload.find_deep_token(channels[0].clone()).await?;
    }
    if matches!(args.scenario, Scenario::VerifyAccreditation) {
        workload.fetch_badges(channels[0].clone()).await?;
    }
    if matches!(args.scenario, Scenario::Watchers) {
        return hold_watchers(args, &channels).await;
    }
    let workload = Arc::new(workload);
    let totals = Arc::new(Totals::new()?);

    // Warm-up: connections, prepared statements and caches; not measured.
    if !args.warmup.is_zero() {
        let warm = Arc::new(Totals::new()?);
        closed_loop(
            &workload,
            &channels,
            &warm,
            args.concurrency,
            args.warmup,
            None,
        )
        .await;
    }

    let started = Instant::now();
    let mode = match args.rate {
        Some(rate) => {
            open_loop(&workload, &channels, &totals, rate, args.duration).await;
            format!("open, {rate}/s")
        }
        None => {
            closed_loop(
                &workload,
                &channels,
                &totals,
                args.concurrency,
                args.duration,
                args.total,
            )
            .await;
            "closed".to_owned()
        }
    };
    let shape = RunShape {
        scenario: format!("{:?}", args.scenario),
        mode,
        concurrency: args.concurrency,
        connections,
        page_token: workload.deep_token.clone(),
    };
    let report = totals.report(shape, started.elapsed().as_secs_f64())?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// Opens `--concurrency` watches of the election's observers and holds them, idle, for
/// `--duration`; `bench/run` reads the service's memory meanwhile.
async fn hold_watchers(args: &Args, channels: &[Transport]) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut streams = Vec::with_capacity(args.concurrency);
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for n in 0..args.concurrency {
        let mut client = ObserverServiceClient::new(channels[n % channels.len()].clone());
        let opened = client
            .watch_observers(pb::WatchObserversRequest {
                parent: args.election.clone(),
                resume_token: String::new(),
            })
            .await;
        let code = match opened {
            Ok(stream) => {
                streams.push(stream.into_inner());
                Code::Ok
            }
            Err(status) => status.code(),
        };
        *codes.entry(format!("{code:?}")).or_default() += 1;
    }
    let opened_in = started.elapsed().as_secs_f64();
    tracing::info!(open = streams.len(), seconds = opened_in, "watchers open");
    tokio::time::sleep(args.duration).await;
    let shape = RunShape {
        scenario: "Watchers".into(),
        mode: "idle streams".into(),
        concurrency: args.concurrency,
        connections: channels.len(),
        page_token: String::new(),
    };
    let report = Report::opened(shape, opened_in, streams.len() as u64, codes);
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// `concurrency` workers call back to back until `duration` passes (or `total` calls were
/// made, for a fixed amount of work such as an import).
async fn closed_loop(
    workload: &Arc<Workload>,
    channels: &[Transport],
    totals: &Arc<Totals>,
    concurrency: usize,
    duration: Duration,
    total: Option<u64>,
) {
    let until = Instant::now() + duration;
    let issued = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|worker| {
            let (workload, totals, issued) = (workload.clone(), totals.clone(), issued.clone());
            let channel = channels[worker % channels.len()].clone();
            tokio::spawn(async move {
                loop {
                    let n = issued.fetch_add(1, Ordering::Relaxed);
                    if total.is_some_and(|total| n >= total)
                        || (total.is_none() && Instant::now() >= until)
                    {
                        return;
                    }
                    let sent = Instant::now();
                    let result = workload.call(channel.clone(), worker, n).await;
                    totals.record(sent.elapsed(), result);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}

/// Sends `rate` calls per second on schedule for `duration`; each call's latency counts from
/// when it should have been sent.
async fn open_loop(
    workload: &Arc<Workload>,
    channels: &[Transport],
    totals: &Arc<Totals>,
    rate: u32,
    duration: Duration,
) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let start = Instant::now();
    let mut calls = Vec::new();
    let mut n: u64 = 0;
    loop {
        let intended = start + interval.mul_f64(n as f64);
        if intended >= start + duration {
            break;
        }
        tokio::time::sleep_until(intended).await;
        let (workload, totals) = (workload.clone(), totals.clone());
        let channel = channels[(n as usize) % channels.len()].clone();
        calls.push(tokio::spawn(async move {
            let result = workload.call(channel, 0, n).await;
            totals.record(intended.elapsed(), result);
        }));
        n += 1;
    }
    for call in calls {
        let _ = call.await;
    }
}
