//! Prometheus metrics of one server: calls by method and code, latency, calls in flight,
//! calls shed, database errors and the connection pool. One registry per server (not a
//! global), so servers in one process — tests — keep their own counts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use sqlx::PgPool;

use crate::error::DatabaseFailure;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub grpc_service: String,
    pub grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandledLabels {
    pub grpc_service: String,
    pub grpc_method: String,
    pub grpc_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

/// Latency buckets from half a millisecond to ten seconds.
const LATENCY_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// The metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    handled: Family<HandledLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    in_flight: Gauge,
    shed: Family<MethodLabels, Counter>,
    database_errors: Family<KindLabels, Counter>,
    transaction_retries: Counter,
    pool_connections: Family<StateLabels, Gauge>,
    pool_waiting: Gauge,
    pool_max: Gauge,
    watch_reads: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// One registration per metric: as long as the list of metrics.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let handled = register(
            r,
            "grpc_server_handled",
            "Calls completed, by method and gRPC status code",
            Family::<HandledLabels, Counter>::default(),
        );
        let latency = register(
            r,
            "grpc_server_handling_seconds",
            "Time from the start of a call to its status, by method",
            Family::<MethodLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS)
            }),
        );
        let in_flight = register(
            r,
            "grpc_server_in_flight_requests",
            "Calls being handled now",
            Gauge::default(),
        );
        let shed = register(
            r,
            "grpc_server_shed",
            "Calls refused at once because the server was at its concurrency limit",
            Family::<MethodLabels, Counter>::default(),
        );
        let database_errors = register(
            r,
            "db_errors",
            "Database errors seen by calls, by kind",
            Family::<KindLabels, Counter>::default(),
        );
        let transaction_retries = register(
            r,
            "db_transaction_retries",
            "Transactions run again after a serialization failure or deadlock",
            Counter::default(),
        );
        let pool_connections = register(
            r,
            "db_pool_connections",
            "Database connections of the pool, by state (in_use, idle)",
            Family::<StateLabels, Gauge>::default(),
        );
        let pool_waiting = register(
            r,
            "db_pool_waiting",
            "Calls waiting for a database connection",
            Gauge::default(),
        );
        let pool_max = register(
            r,
            "db_pool_max_connections",
            "The pool's connection limit",
            Gauge::default(),
        );
        let watch_reads = register(
            r,
            "observer_registry_watch_reads",
            "Change-feed reads by watchers (one serves every watcher of a feed it covers)",
            Counter::default(),
        );
        Metrics {
            registry,
            handled,
            latency,
            in_flight,
            shed,
            database_errors,
            transaction_retries,
            pool_connections,
            pool_waiting,
            pool_max,
            watch_reads,
        }
    }

    /// A call started; the guard counts it in flight until dropped.
    pub fn call_started(&self) -> Counted {
        Counted::new(&self.in_flight)
    }

    pub fn call_finished(&self, path: &str, code: tonic::Code, seconds: f64) {
        let (grpc_service, grpc_method) = split_path(path);
        self.handled
            .get_or_create(&HandledLabels {
                grpc_service: grpc_service.clone(),
                grpc_method: grpc_method.clone(),
                grpc_code: format!("{code:?}"),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                grpc_service,
                grpc_method,
            })
            .observe(seconds);
    }

    pub fn call_shed(&self, path: &str) {
        let (grpc_service, grpc_method) = split_path(path);
        self.shed
            .get_or_create(&MethodLabels {
                grpc_service,
                grpc_method,
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

    /// A watcher read the change feed from the database.
    pub fn watch_read(&self) {
        self.watch_reads.inc();
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

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`); anything else is one label.
fn split_path(path: &str) -> (String, String) {
    match path.trim_start_matches('/').split_once('/') {
        Some((service, method)) => (service.to_owned(), method.to_owned()),
        None => (path.to_owned(), String::new()),
    }
}
