//! Metrics and logs that no caller can grow without bound, under the names the usual gRPC
//! dashboards query (grpc-ecosystem's Prometheus middleware): a flood of unknown paths
//! without credentials, canonical names and codes, build and process metrics.

use crate::common::binary::{self, Binary};
use crate::common::{self, agencies::Agencies};

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use observer_registry::pb::v1 as pb;
use sqlx::PgPool;
use tonic::Code;
use tonic::transport::Channel;

/// A unary call to any `path`, with an empty message and no credentials: what a scanner
/// sends. Returns the status it got.
async fn call_path(channel: Channel, path: String) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::try_from(path).unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc.unary(tonic::Request::new(()), path, codec).await {
        Ok(_) => panic!("an unknown path was answered"),
        Err(status) => status,
    }
}

/// A distinct path of about 1 KB that names no method (the flood sent 2 KB; half
/// keeps the test quick, and any length made a label set of its own before).
fn random_path() -> String {
    let part = || uuid::Uuid::new_v4().simple().to_string().repeat(16);
    format!("/{}.Service/{}", part(), part())
}

/// Sends `paths` calls to distinct unknown paths, 32 at a time over `channel`.
async fn flood(channel: &Channel, paths: usize) {
    futures::stream::iter(0..paths)
        .for_each_concurrent(32, |_| {
            let channel = channel.clone();
            async move {
                let path = random_path();
                let status = call_path(channel, path.clone()).await;
                assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
                // The answer is small whatever the path: it is not echoed back.
                assert!(status.message().len() < 64, "{status:?}");
                assert!(!format!("{status:?}").contains(&path[1..33]), "{status:?}");
            }
        })
        .await;
}

/// The resident memory of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// The number after `field=` in a log line.
fn field(line: &str, field: &str) -> u64 {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{field}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

const UNKNOWN_HANDLED: &str = "grpc_server_handled_total{grpc_type=\"unknown\",grpc_service=\"unknown\",grpc_method=\"unknown\",grpc_code=\"Unimplemented\"}";

#[sqlx::test]
async fn ten_thousand_unknown_paths_leave_metrics_and_logs_bounded(pool: PgPool) {
    let agencies = Agencies::standard("flood");
    let (app, logs) = spawn_app_logging(pool, agencies.options()).await;
    // Warm up, so that what is made once (the method table, the unknown label set, the
    // connection's buffers) is made before the first measure.
    flood(&app.channel, 200).await;
    for _ in 0..20 {
        let error = app
            .elections()
            .get_election(pb::GetElectionRequest {
                name: "elections/kz-2023".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated);
    }
    let metrics_before = app.metrics_text();
    let started = Instant::now();
    flood(&app.channel, 10_000).await;
    let metrics_after = app.metrics_text();
    assert_eq!(sample(&metrics_after, UNKNOWN_HANDLED), 10_200.0);
    assert_eq!(
        sample(
            &metrics_after,
            "observer_registry_calls_refused_total{reason=\"unknown_method\"}"
        ),
        10_200.0
    );
    assert_eq!(
        sample(
            &metrics_after,
            "observer_registry_calls_refused_total{reason=\"unauthenticated\"}"
        ),
        20.0
    );
    // The same series as before the flood: only their numbers moved.
    assert!(
        metrics_after.len() < 64 * 1024 && metrics_after.len() <= metrics_before.len() + 512,
        "/metrics grew from {} to {} bytes",
        metrics_before.len(),
        metrics_after.len()
    );
    assert_eq!(
        metrics_before.lines().count(),
        metrics_after.lines().count()
    );
    assert!(!metrics_after.contains(".Service"), "a path became a label");
    // Refused calls are summed up once a second at most, never a line each.
    let summaries = || -> Vec<String> {
        logs.lines()
            .into_iter()
            .filter(|line| line.contains("calls refused"))
            .collect()
    };
    wait_until(Duration::from_secs(5), "every refusal summed up", || {
        let total: u64 = summaries()
            .iter()
            .map(|line| field(line, "unknown_method"))
            .sum();
        async move { total == 10_200 }
    })
    .await;
    let summaries = summaries();
    let unauthenticated: u64 = summaries
        .iter()
        .map(|line| field(line, "unauthenticated"))
        .sum();
    assert_eq!(unauthenticated, 20);
    let seconds = started.elapsed().as_secs() + 3;
    assert!(
        summaries.len() as u64 <= seconds,
        "{} summary lines in about {seconds} s",
        summaries.len()
    );
    let lines = logs.lines();
    assert!(
        lines.len() < 100,
        "{} log lines, e.g. {:?}",
        lines.len(),
        lines.last()
    );
    assert!(
        lines.iter().all(|line| line.len() < 500),
        "a log line holds a caller's path: {:?}",
        lines.iter().find(|line| line.len() >= 500)
    );
}

/// The memory side of the flood, on the real binary: its own process, so that no other test
/// of this binary moves the figure.
#[sqlx::test]
async fn ten_thousand_unknown_paths_leave_the_services_memory_bounded(pool: PgPool) {
    let agencies = Agencies::standard("flood-memory");
    let identities = agencies.path().to_str().unwrap().to_owned();
    let binary = Binary::start(
        &binary::database_url(&pool),
        &[("IDENTITIES_FILE", &identities)],
    )
    .await;
    let pid = binary.child.id().unwrap();
    let channel = binary.channel().await;
    flood(&channel, 200).await;
    let before = resident_bytes(pid);
    let started = Instant::now();
    flood(&channel, 10_000).await;
    let took = started.elapsed();
    let after = resident_bytes(pid);
    // The figures for the record (`--nocapture`), beside the bound asserted.
    eprintln!(
        "10,000 unknown paths in {took:?}: the service's resident memory {} -> {} KiB",
        before / 1024,
        after / 1024
    );
    assert!(
        after.saturating_sub(before) < 32 * 1024 * 1024,
        "resident memory grew from {} to {} MiB",
        before / (1024 * 1024),
        after / (1024 * 1024)
    );
    binary.stop().await;
}

#[sqlx::test]
async fn calls_are_counted_under_the_canonical_grpc_names_and_codes(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_election(&app, "kz-2023").await;
    app.elections()
        .get_election(pb::GetElectionRequest {
            name: "elections/kz-2023".into(),
        })
        .await
        .unwrap();
    let error = app
        .elections()
        .get_election(pb::GetElectionRequest {
            name: "elections/nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    app.wait_for_health("", SERVING).await;

    let metrics = app.metrics_text();
    let get = "grpc_type=\"unary\",grpc_service=\"observer_registry.v1.ElectionService\",grpc_method=\"GetElection\"";
    for line in [
        format!("grpc_server_handled_total{{{get},grpc_code=\"OK\"}} 1"),
        format!("grpc_server_handled_total{{{get},grpc_code=\"NotFound\"}} 1"),
        format!("grpc_server_started_total{{{get}}} 2"),
        format!("grpc_server_handling_seconds_count{{{get}}} 2"),
        format!("grpc_server_handling_seconds_bucket{{le=\"+Inf\",{get}}} 2"),
        "# TYPE grpc_server_handling_seconds histogram".to_owned(),
        "# TYPE grpc_server_started counter".to_owned(),
        "# TYPE grpc_server_handled counter".to_owned(),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no line {line}:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"grpc.health.v1.Health\",grpc_method=\"Check\",grpc_code=\"OK\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("grpc_code=\"Ok\""), "{metrics}");

    let build = format!(
        "observer_registry_build_info{{version=\"{}\",commit=\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(&build) && l.ends_with("\"} 1")),
        "{metrics}"
    );
    assert!(sample(&metrics, "process_resident_memory_bytes ") > 1e6);
    assert!(sample(&metrics, "process_open_fds ") >= 3.0);
    assert!(sample(&metrics, "process_max_fds ") >= 3.0);
    assert!(sample(&metrics, "process_threads ") >= 1.0);
    assert!(sample(&metrics, "process_virtual_memory_bytes ") > 1e6);
    assert!(sample(&metrics, "process_start_time_seconds ") > 1.6e9);
    assert!(metrics.contains("# TYPE process_cpu_seconds counter"));
    assert!(sample(&metrics, "process_cpu_seconds_total ") > 0.0);
    for reason in [
        "unauthenticated",
        "permission_denied",
        "unknown_method",
        "overloaded",
    ] {
        assert!(
            metrics.contains(&format!(
                "observer_registry_calls_refused_total{{reason=\"{reason}\"}} 0"
            )),
            "{metrics}"
        );
    }
}
