//! What a run measured: latencies in an HDR histogram, status codes, and the one JSON
//! line `bench/run` reads.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tonic::Code;

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub(super) struct Report {
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

impl Report {
    /// The report of `ok` calls in `seconds`, without latencies: for streams opened and
    /// then held, and the base of a measured run's report.
    pub(super) fn opened(
        run: RunShape,
        seconds: f64,
        ok: u64,
        codes: BTreeMap<String, u64>,
    ) -> Report {
        Report {
            scenario: run.scenario,
            mode: run.mode,
            concurrency: run.concurrency,
            connections: run.connections,
            seconds,
            ok,
            // A measured run takes time; only opening streams may take (nearly) none.
            ok_per_second: ok as f64 / seconds.max(f64::EPSILON),
            items_per_second: 0.0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            codes,
            page_token: run.page_token,
        }
    }
}

/// How a run was shaped, for its report.
pub(super) struct RunShape {
    pub(super) scenario: String,
    pub(super) mode: String,
    pub(super) concurrency: usize,
    pub(super) connections: usize,
    pub(super) page_token: String,
}

pub(super) struct Totals {
    histogram: Mutex<Histogram<u64>>,
    codes: Mutex<BTreeMap<String, u64>>,
    ok: AtomicU64,
    items: AtomicU64,
}

impl Totals {
    pub(super) fn new() -> anyhow::Result<Self> {
        Ok(Totals {
            histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            codes: Mutex::new(BTreeMap::new()),
            ok: AtomicU64::new(0),
            items: AtomicU64::new(0),
        })
    }

    pub(super) fn record(&self, latency: Duration, result: Result<u64, Code>) {
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

    /// The report of a measured run of `seconds`.
    pub(super) fn report(&self, run: RunShape, seconds: f64) -> anyhow::Result<Report> {
        let poisoned = || anyhow::anyhow!("a worker panicked");
        let histogram = self.histogram.lock().map_err(|_| poisoned())?.clone();
        let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
        let codes = self.codes.lock().map_err(|_| poisoned())?.clone();
        Ok(Report {
            items_per_second: self.items.load(Ordering::Relaxed) as f64 / seconds,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            max_ms: histogram.max() as f64 / 1000.0,
            ..Report::opened(run, seconds, self.ok.load(Ordering::Relaxed), codes)
        })
    }
}
