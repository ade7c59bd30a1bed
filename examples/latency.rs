//! Latency of GetElectionSummary against a point read (GetObserver) on the same service, in
//! the same run: the ratio of their medians is what `bench/summary` reports.
//!
//! ```sh
//! cargo run --release --example latency -- http://127.0.0.1:50051 elections/bench 1000000 2000
//! ```

use std::time::{Duration, Instant};

use observer_registry::client::{Client, ClientOptions};
use observer_registry::pb::v1::{GetElectionSummaryRequest, GetObserverRequest};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let server = args
        .first()
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let election = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "elections/bench".into());
    let observers: u64 = args
        .get(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let calls: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(2000);
    let options = ClientOptions {
        token: std::env::var("OBSERVER_REGISTRY_TOKEN").ok(),
        ..Default::default()
    };
    let client = Client::connect(server, options).await?;

    // A cheap deterministic spread of keys over the loaded observers.
    let mut key: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut point = Vec::with_capacity(calls);
    let mut summary = Vec::with_capacity(calls);
    let mut headline = String::new();
    for round in 0..calls + calls / 10 {
        key ^= key << 13;
        key ^= key >> 7;
        key ^= key << 17;
        let name = format!("{election}/observers/o-{}", 1 + key % observers);
        let started = Instant::now();
        client
            .observers()
            .get_observer(GetObserverRequest { name })
            .await?;
        let point_latency = started.elapsed();
        let started = Instant::now();
        let figures = client
            .elections()
            .get_election_summary(GetElectionSummaryRequest {
                name: election.clone(),
            })
            .await?
            .into_inner();
        let summary_latency = started.elapsed();
        // The first tenth warms connections and caches up.
        if round >= calls / 10 {
            point.push(point_latency);
            summary.push(summary_latency);
        }
        headline = figures.headline;
    }
    let (p50_point, p99_point) = (percentile(&mut point, 0.5), percentile(&mut point, 0.99));
    let (p50_summary, p99_summary) = (
        percentile(&mut summary, 0.5),
        percentile(&mut summary, 0.99),
    );
    println!("summary headline: {headline}");
    println!("{:<22} {:>10} {:>10}", "call", "p50", "p99");
    println!(
        "{:<22} {:>10.3?} {:>10.3?}",
        "GetObserver", p50_point, p99_point
    );
    println!(
        "{:<22} {:>10.3?} {:>10.3?}",
        "GetElectionSummary", p50_summary, p99_summary
    );
    println!(
        "ratio GetElectionSummary p50 / GetObserver p50: {:.2} (target <= 5)",
        p50_summary.as_secs_f64() / p50_point.as_secs_f64()
    );
    Ok(())
}
