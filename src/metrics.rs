//! Prometheus metrics of one server. Calls are counted as grpc-ecosystem's Prometheus
//! middleware counts them (`grpc_server_started_total`, `grpc_server_handled_total`,
//! `grpc_server_handling_seconds`, with `grpc_type`, `grpc_service`, `grpc_method` and
//! `grpc_code` named as Go names them), so the usual gRPC dashboards and alerts work
//! unchanged; label values come only from the method table (`methods`). The service's own
//! metrics are named `observer_registry_*`; the standard `process_*` metrics come from
//! `/proc` (`process`). One registry per server (not a global), so servers in one process —
//! tests — keep their own counts.

pub mod methods;
mod process;

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use sqlx::PgPool;

use crate::error::DatabaseFailure;
use crate::layers::refusals::Refusal;
pub use methods::{Method, MethodLabels};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandledLabels {
    #[prometheus(flatten)]
    pub method: MethodLabels,
    pub grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

/// Latency buckets from half a millisecond to thirty seconds.
const LATENCY_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// The channels verification is counted by: gRPC (per agency) and HTTP (per address).
pub const VERIFICATION_GRPC: &str = "grpc";
pub const VERIFICATION_HTTP: &str = "http";
const VERIFICATION_CHANNELS: [&str; 2] = [VERIFICATION_GRPC, VERIFICATION_HTTP];

/// The commit the binary was built from (`build.rs`), `unknown` without git.
pub const COMMIT: &str = env!("OBSERVER_REGISTRY_COMMIT");

/// gRPC's status codes, 0 to 16.
const CODES: usize = 17;

/// A called method's metrics, taken from their families at its first call, so that later
/// calls count without hashing their labels (three lookups a call, a few per cent of a point
/// read's CPU).
#[derive(Debug)]
struct MethodMetrics {
    started: Counter,
    seconds: Histogram,
    /// By status code, each once seen.
    handled: [OnceLock<Counter>; CODES],
}

/// The metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// By the method table's slots.
    methods: Box<[OnceLock<MethodMetrics>]>,
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling_seconds: Family<MethodLabels, Histogram>,
    in_flight: Gauge,
    shed: Family<MethodLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    database_errors: Family<KindLabels, Counter>,
    transaction_retries: Counter,
    personal_data_erasures: Counter,
    pool_connections: Family<StateLabels, Gauge>,
    pool_waiting: Gauge,
    pool_max: Gauge,
    watch_reads: Counter,
    kept_observer_reads: Counter,
    kept_observers: Gauge,
    kept_observer_bytes: Gauge,
    point_read_batches: Counter,
    registrations_together: Counter,
    registration_batches: Counter,
    verifications: Family<StatusLabels, Counter>,
    probing: Family<ChannelLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// One registration per metric: as long as the list of metrics. prometheus-client adds
    /// `_total` to a counter's name in the exposition.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let started = register(
            r,
            "grpc_server_started",
            "Calls started on the server, by method",
            Family::<MethodLabels, Counter>::default(),
        );
        let handled = register(
            r,
            "grpc_server_handled",
            "Calls completed on the server, by method and gRPC status code",
            Family::<HandledLabels, Counter>::default(),
        );
        let handling_seconds = register(
            r,
            "grpc_server_handling_seconds",
            "Time from the start of a call to its status, by method",
            Family::<MethodLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS)
            }),
        );
        let in_flight = register(
            r,
            "observer_registry_calls_in_flight",
            "Calls being handled now",
            Gauge::default(),
        );
        let shed = register(
            r,
            "observer_registry_calls_shed",
            "Calls refused at once because the server was at its concurrency limit, by method",
            Family::<MethodLabels, Counter>::default(),
        );
        let refused = register(
            r,
            "observer_registry_calls_refused",
            "Calls refused before any handler ran, by reason (unauthenticated, \
             permission_denied, unknown_method, overloaded)",
            Family::<ReasonLabels, Counter>::default(),
        );
        let database_errors = register(
            r,
            "observer_registry_db_errors",
            "Database errors seen by calls, by kind",
            Family::<KindLabels, Counter>::default(),
        );
        let transaction_retries = register(
            r,
            "observer_registry_db_transaction_retries",
            "Transactions run again after a serialization failure or deadlock",
            Counter::default(),
        );
        let personal_data_erasures = register(
            r,
            "observer_registry_personal_data_erasures",
            "Elections whose personal data this server erased on its own (retention passed)",
            Counter::default(),
        );
        let pool_connections = register(
            r,
            "observer_registry_db_pool_connections",
            "Database connections of the pool, by state (in_use, idle)",
            Family::<StateLabels, Gauge>::default(),
        );
        let pool_waiting = register(
            r,
            "observer_registry_db_pool_waiting",
            "Calls waiting for a database connection",
            Gauge::default(),
        );
        let pool_max = register(
            r,
            "observer_registry_db_pool_max_connections",
            "The pool's connection limit",
            Gauge::default(),
        );
        let watch_reads = register(
            r,
            "observer_registry_watch_reads",
            "Change-feed reads by watchers (one serves every watcher of a feed it covers)",
            Counter::default(),
        );
        let kept_observer_reads = register(
            r,
            "observer_registry_point_reads_kept",
            "Observers GetObserver batches answered from those kept at their election's unchanged position",
            Counter::default(),
        );
        let kept_observers = register(
            r,
            "observer_registry_point_reads_kept_observers",
            "Observers (and ids known absent) GetObserver keeps now, at most POINT_READ_CACHE",
            Gauge::default(),
        );
        let kept_observer_bytes = register(
            r,
            "observer_registry_point_reads_kept_bytes",
            "Bytes of the kept observers, as their bound counts them (at most 256 times POINT_READ_CACHE)",
            Gauge::default(),
        );
        let point_read_batches = register(
            r,
            "observer_registry_point_read_batches",
            "Statements the coalesced point reads (GetObserver, VerifyAccreditation, list positions) ran: calls per batch is how much coalescing saves",
            Counter::default(),
        );
        let registrations_together = register(
            r,
            "observer_registry_registrations_together",
            "CreateObserver calls registered in a transaction shared with others",
            Counter::default(),
        );
        let registration_batches = register(
            r,
            "observer_registry_registration_batches",
            "Transactions that registered several CreateObserver calls at once: calls per transaction is how much coalescing saves",
            Counter::default(),
        );
        // Labels are the five verdicts and the two channels: never the agency or address,
        // which an attacker could multiply (the warning in the log names them).
        let verifications = register(
            r,
            "observer_registry_verifications",
            "Verifications of badges and accreditation numbers, by verdict",
            Family::<StatusLabels, Counter>::default(),
        );
        let probing = register(
            r,
            "observer_registry_verification_probing",
            "Callers (agencies over gRPC, addresses over HTTP) that passed the enumeration \
             threshold of unknown numbers and forged tokens within a minute, by channel",
            Family::<ChannelLabels, Counter>::default(),
        );
        let build = register(
            r,
            "observer_registry_build_info",
            "The version and commit of the running binary; always 1",
            Family::<BuildLabels, Gauge>::default(),
        );
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: COMMIT,
            })
            .set(1);
        // A labelled family shows no sample before its first count; the reasons are few and
        // a dashboard reads them as rates, so each starts at zero.
        for refusal in Refusal::ALL {
            drop(refused.get_or_create(&ReasonLabels {
                reason: refusal.as_str(),
            }));
        }
        for channel in VERIFICATION_CHANNELS {
            drop(probing.get_or_create(&ChannelLabels { channel }));
        }
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry,
            methods: (0..methods::count()).map(|_| OnceLock::new()).collect(),
            started,
            handled,
            handling_seconds,
            in_flight,
            shed,
            refused,
            database_errors,
            transaction_retries,
            personal_data_erasures,
            pool_connections,
            pool_waiting,
            pool_max,
            watch_reads,
            kept_observer_reads,
            kept_observers,
            kept_observer_bytes,
            point_read_batches,
            registrations_together,
            registration_batches,
            verifications,
            probing,
        }
    }

    /// A verification ended with `status` (`VALID`, `REVOKED`, ...).
    pub fn verified(&self, status: &'static str) {
        self.verifications
            .get_or_create(&StatusLabels { status })
            .inc();
    }

    /// A caller passed the enumeration threshold on `channel` (`grpc` or `http`).
    pub fn probing_seen(&self, channel: &'static str) {
        self.probing.get_or_create(&ChannelLabels { channel }).inc();
    }

    /// A call of `method` started; the guard counts it in flight until dropped.
    /// The method's metrics; `None` for unknown paths, which are counted through the families.
    fn of(&self, method: &'static Method) -> Option<&MethodMetrics> {
        let slot = self.methods.get(method.slot)?;
        Some(slot.get_or_init(|| MethodMetrics {
            started: self.started.get_or_create(&method.labels).clone(),
            seconds: self.handling_seconds.get_or_create(&method.labels).clone(),
            handled: Default::default(),
        }))
    }

    pub fn call_started(&self, method: &'static Method) -> Counted {
        match self.of(method) {
            Some(metrics) => metrics.started.inc(),
            None => self.started.get_or_create(&method.labels).inc(),
        };
        Counted::new(&self.in_flight)
    }

    pub fn call_finished(&self, method: &'static Method, code: tonic::Code, seconds: f64) {
        let handled = || {
            self.handled
                .get_or_create(&HandledLabels {
                    method: method.labels,
                    grpc_code: methods::code_name(code),
                })
                .clone()
        };
        let metrics = self.of(method);
        match metrics.and_then(|m| m.handled.get(code as usize)) {
            Some(counter) => counter.get_or_init(handled).inc(),
            None => handled().inc(),
        };
        match metrics {
            Some(metrics) => metrics.seconds.observe(seconds),
            None => self
                .handling_seconds
                .get_or_create(&method.labels)
                .observe(seconds),
        }
    }

    pub fn call_shed(&self, method: &'static Method) {
        self.shed.get_or_create(&method.labels).inc();
    }

    pub fn call_refused(&self, refusal: Refusal) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: refusal.as_str(),
            })
            .inc();
    }

    pub fn database_error(&self, failure: DatabaseFailure) {
        self.database_errors
            .get_or_create(&KindLabels {
                kind: failure.as_str(),
            })
            .inc();
    }

    pub fn transaction_retried(&self) {
        self.transaction_retries.inc();
    }

    /// The background erasure erased an election's personal data.
    pub fn personal_data_erased(&self) {
        self.personal_data_erasures.inc();
    }

    /// A watcher read the change feed from the database.
    pub fn watch_read(&self) {
        self.watch_reads.inc();
    }

    /// Point reads answered from kept observers, their election unchanged.
    pub fn kept_observers_read(&self, calls: usize) {
        self.kept_observer_reads.inc_by(calls as u64);
    }

    /// What GetObserver keeps now: observers (and ids known absent), and their bytes.
    pub fn observers_kept(&self, observers: usize, bytes: usize) {
        self.kept_observers.set(observers as i64);
        self.kept_observer_bytes.set(bytes as i64);
    }

    pub fn point_read_batch(&self) {
        self.point_read_batches.inc();
    }

    /// A transaction registered `calls` CreateObserver calls at once.
    pub fn registered_together(&self, calls: usize) {
        self.registration_batches.inc();
        self.registrations_together.inc_by(calls as u64);
    }

    /// Counts a call waiting for a connection until the guard is dropped.
    pub fn waiting_for_connection(&self) -> Counted {
        Counted::new(&self.pool_waiting)
    }

    /// The text exposition, with the pool's gauges read now.
    pub fn encode(&self, pool: &PgPool) -> String {
        let size = i64::from(pool.size());
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        self.pool_connections
            .get_or_create(&StateLabels { state: "idle" })
            .set(idle);
        self.pool_connections
            .get_or_create(&StateLabels { state: "in_use" })
            .set((size - idle).max(0));
        self.pool_max
            .set(i64::from(pool.options().get_max_connections()));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Registers `metric` and returns it: a metric is a shared handle, so the registry and the
/// server count into the same one.
fn register<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// One unit of a gauge (a call in flight, a call waiting for a connection) until dropped,
/// however the future holding it ends.
#[derive(Debug)]
pub struct Counted(Gauge);

impl Counted {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Counted(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}
