//! `bench`: a load generator built on the shipped client. Closed loop (`--concurrency`
//! callers, each sending its next call when the last one answered) or open loop (`--rate`
//! calls per second sent on schedule, latency measured from the intended send time so a
//! stalled server cannot hide its queueing). Calls spread over `--connections` HTTP/2
//! connections; latencies go into an HDR histogram; status codes are counted, and only OK
//! calls count as throughput. Prints one JSON object on stdout for `bench/run`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use rand::Rng;
use tokio::time::Instant;
use tonic::Code;

use crate::cli::ClientArgs;
use crate::pb::v1 as pb;
use pb::election_service_client::ElectionServiceClient;
use pb::observer_service_client::ObserverServiceClient;
use transport::Transport;
pub use transport::TransportKind;

mod transport;

/// What `bench` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
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
    /// grpc.health.v1.Health/Check: the transport's own cost, no database.
    Health,
    /// `--concurrency` idle WatchObservers streams held open for `--duration` (what idle
    /// watchers cost the service).
    Watchers,
}

/// `bench`: what to call, how hard, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// The election of the data set.
    #[arg(long, default_value = "elections/bench")]
    pub election: String,
    /// Observers `o-1` … `o-KEYS` of the data set (for GetObserver).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Callers at once (closed loop).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// HTTP/2 connections the calls spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Open loop: calls per second sent on schedule, instead of a closed loop.
    #[arg(long)]
    pub rate: Option<u32>,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured calls first, for as long as this.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// A fixed number of calls instead of a duration (closed loop), e.g. an import.
    #[arg(long)]
    pub total: Option<u64>,
    /// Observers per BatchCreateObservers call.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// What carries the calls: one HTTP/2 connection each, driven directly (lightest, plain
    /// text only), or tonic's `Channel` as `Client::connect` makes it.
    #[arg(long, value_enum, default_value = "http2")]
    pub transport: TransportKind,
}

/// Citizenships of generated observers: never the host country.
const CITIZENSHIPS: [&str; 41] = [
    "AZ", "MD", "MN", "TR", "TJ", "BY", "RU", "KG", "UZ", "CN", "IN", "PK", "IR", "AM", "GE", "UA",
    "DE", "FR", "IT", "ES", "PL", "CZ", "SK", "HU", "RO", "BG", "RS", "HR", "SI", "AT", "CH", "BE",
    "NL", "SE", "NO", "FI", "DK", "EE", "LV", "LT", "US",
];

/// What one run measured.
#[derive(Debug, serde::Serialize)]
struct Report {
    scenario: String,
    mode: String,
    concurrency: usize,
    connections: usize,
    seconds: f64,
    ok: u64,
    /// OK calls per second: errors are not throughput.
    ok_per_second: f64,
    /// Items per second for batch scenarios (observers imported).
    items_per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    codes: BTreeMap<String, u64>,
    /// The page token `list-deep` asked for, so other clients (h2load) can ask for it too.
    #[serde(skip_serializing_if = "String::is_empty")]
    page_token: String,
}

/// One scenario's calls: how to make the `n`-th call of a worker.
struct Workload {
    scenario: Scenario,
    election: String,
    keys: u64,
    /// The page token 90% into the filtered list, for `list-deep`.
    deep_token: String,
    /// Unique per run, so creates never collide with an earlier run.
    run: String,
    batch_size: usize,
}

impl Workload {
    /// Makes one call; Ok(items) or the status code.
    async fn call(&self, channel: Transport, worker: usize, n: u64) -> Result<u64, Code> {
        let observers = || ObserverServiceClient::new(channel.clone());
        let result = match self.scenario {
            Scenario::GetObserver => {
                let key = rand::rng().random_range(1..=self.keys);
                observers()
                    .get_observer(pb::GetObserverRequest {
                        name: format!("{}/observers/o-{key}", self.election),
                    })
                    .await
                    .map(|_| 1)
            }
            Scenario::ListFirst | Scenario::ListDeep => observers()
                .list_observers(pb::ListObserversRequest {
                    parent: self.election.clone(),
                    page_size: 100,
                    filter: "citizenship = \"CN\"".into(),
                    page_token: if matches!(self.scenario, Scenario::ListDeep) {
                        self.deep_token.clone()
                    } else {
                        String::new()
                    },
                    ..Default::default()
                })
                .await
                .map(|page| page.into_inner().observers.len() as u64),
            Scenario::CreateObserver => observers()
                .create_observer(self.create_request(worker, n, 0))
                .await
                .map(|_| 1),
            Scenario::Import => {
                let requests = (0..self.batch_size)
                    .map(|i| self.create_request(worker, n, i))
                    .collect();
                observers()
                    .batch_create_observers(pb::BatchCreateObserversRequest {
                        parent: self.election.clone(),
                        requests,
                        request_id: uuid::Uuid::new_v4().to_string(),
                        validate_only: false,
                    })
                    .await
                    .map(|created| created.into_inner().observers.len() as u64)
            }
            Scenario::Watchers => return Err(Code::Unimplemented),
            Scenario::Health => tonic_health::pb::health_client::HealthClient::new(channel.clone())
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|_| 1),
            Scenario::Summary => ElectionServiceClient::new(channel.clone())
                .get_election_summary(pb::GetElectionSummaryRequest {
                    name: self.election.clone(),
                })
                .await
                .map(|_| 1),
        };
        result.map_err(|status| status.code())
    }

    fn create_request(&self, worker: usize, n: u64, i: usize) -> pb::CreateObserverRequest {
        let mut rng = rand::rng();
        // Unique across phases (warm-up, measurement) and runs.
        let id = format!(
            "b{}-{worker}-{n}-{i}-{}",
            self.run,
            rand::rng().random::<u32>()
        );
        pb::CreateObserverRequest {
            parent: self.election.clone(),
            observer_id: id.clone(),
            observer: Some(pb::Observer {
                given_name: "Bench".into(),
                family_name: format!("Observer {id}"),
                citizenship: CITIZENSHIPS[rng.random_range(0..CITIZENSHIPS.len())].into(),
                organization: format!("organizations/org-{}", rng.random_range(1..=12)),
                travel_document_number: format!("BN{id}"),
                ..Default::default()
            }),
            request_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Walks the filtered list once to find the token of the page 90% deep.
    async fn find_deep_token(&mut self, channel: Transport) -> anyhow::Result<()> {
        let mut tokens = Vec::new();
        let mut token = String::new();
        loop {
            let page = ObserverServiceClient::new(channel.clone())
                .list_observers(pb::ListObserversRequest {
                    parent: self.election.clone(),
                    page_size: 100,
                    filter: "citizenship = \"CN\"".into(),
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .context("walking the list for the deep page")?
                .into_inner();
            tokens.push(token);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        self.deep_token = tokens[(tokens.len() * 9) / 10].clone();
        tracing::info!(pages = tokens.len(), "deep page found");
        Ok(())
    }
}

struct Totals {
    histogram: Mutex<Histogram<u64>>,
    codes: Mutex<BTreeMap<String, u64>>,
    ok: AtomicU64,
    items: AtomicU64,
}

impl Totals {
    fn new() -> anyhow::Result<Self> {
        Ok(Totals {
            histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            codes: Mutex::new(BTreeMap::new()),
            ok: AtomicU64::new(0),
            items: AtomicU64::new(0),
        })
    }

    fn record(&self, latency: Duration, result: Result<u64, Code>) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let code = match result {
            Ok(items) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.items.fetch_add(items, Ordering::Relaxed);
                if let Ok(mut histogram) = self.histogram.lock() {
                    histogram.saturating_record(micros);
                }
                Code::Ok
            }
            Err(code) => code,
        };
        if let Ok(mut codes) = self.codes.lock() {
            *codes.entry(format!("{code:?}")).or_default() += 1;
        }
    }
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let connections = args.connections.max(1);
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(Transport::connect(args.transport, &args.client).await?);
    }
    let mut workload = Workload {
        scenario: args.scenario,
        election: args.election.clone(),
        keys: args.keys.max(1),
        deep_token: String::new(),
        run: format!("{:x}", rand::rng().random::<u32>()),
        batch_size: args.batch_size,
    };
    if matches!(args.scenario, Scenario::ListDeep) {
        workload.find_deep_token(channels[0].clone()).await?;
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
    let seconds = started.elapsed().as_secs_f64();
    let histogram = totals
        .histogram
        .lock()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?
        .clone();
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    let ok = totals.ok.load(Ordering::Relaxed);
    let report = Report {
        scenario: format!("{:?}", args.scenario),
        mode,
        concurrency: args.concurrency,
        connections,
        seconds,
        ok,
        ok_per_second: ok as f64 / seconds,
        items_per_second: totals.items.load(Ordering::Relaxed) as f64 / seconds,
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        max_ms: histogram.max() as f64 / 1000.0,
        codes: totals
            .codes
            .lock()
            .map_err(|_| anyhow::anyhow!("a worker panicked"))?
            .clone(),
        page_token: workload.deep_token.clone(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(std::process::ExitCode::SUCCESS)
}

/// Opens `--concurrency` watches of the election's observers and holds them, idle, for
/// `--duration`; `bench/run` reads the service's memory meanwhile.
async fn hold_watchers(
    args: &BenchArgs,
    channels: &[Transport],
) -> anyhow::Result<std::process::ExitCode> {
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
    let report = Report {
        scenario: "Watchers".into(),
        mode: "idle streams".into(),
        concurrency: args.concurrency,
        connections: channels.len(),
        seconds: opened_in,
        ok: streams.len() as u64,
        ok_per_second: streams.len() as f64 / opened_in.max(f64::EPSILON),
        items_per_second: 0.0,
        p50_ms: 0.0,
        p90_ms: 0.0,
        p99_ms: 0.0,
        max_ms: 0.0,
        codes,
        page_token: String::new(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(std::process::ExitCode::SUCCESS)
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
