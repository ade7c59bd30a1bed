//! Test harness: a real server on `127.0.0.1:0` over a fresh PostgreSQL database (from
//! `#[sqlx::test]`), reached through the shipped generated client.
#![allow(dead_code)]

pub mod agencies;
pub mod badges;
pub mod binary;
pub mod operator;
pub mod proxy;
pub mod registry;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use observer_registry::admin::{self, AdminState};
use observer_registry::api::verification::Verifier;
use observer_registry::auth::IdentityStore;
use observer_registry::badge::Badges;
use observer_registry::clock::Clock;
use observer_registry::database::Database;
use observer_registry::health::Availability;
use observer_registry::metrics::Metrics;
use observer_registry::pb::v1 as pb;
use observer_registry::server::{self, Limits, ServeOptions};
use observer_registry::verify_http::{self, VerifyHttp};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub use pb::delegation_service_client::DelegationServiceClient;
pub use pb::election_service_client::ElectionServiceClient;
pub use pb::invitation_service_client::InvitationServiceClient;
pub use pb::observer_service_client::ObserverServiceClient;
pub use pb::organization_service_client::OrganizationServiceClient;
pub use tonic_health::pb::health_client::HealthClient;

/// A running server and a connected channel. The server runs on a multi-threaded runtime of
/// its own (not the test's single thread), so concurrent calls really run in parallel.
pub struct TestApp {
    pub addr: SocketAddr,
    pub channel: Channel,
    pub pool: PgPool,
    /// The server's metrics and availability, as its admin port would serve them.
    pub metrics: Arc<Metrics>,
    pub availability: Arc<Availability>,
    /// The server's badges and clock, for the HTTP routes beside it.
    pub badges: Arc<Badges>,
    pub clock: Clock,
    server_pool: PgPool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Dropping a runtime blocks, which panics inside the test's async context.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

pub fn test_options() -> ServeOptions {
    ServeOptions {
        health_check_interval: Duration::from_millis(100),
        request_id_retention: Duration::from_secs(48 * 3600),
        change_retention: Duration::from_secs(7 * 24 * 3600),
        // Many tests keep elections of past years with the default retention: no erasure
        // behind their backs. Retention tests turn it on with a clock of their own.
        personal_data_erase_interval: None,
        clock: Clock::system(),
        identities: Arc::new(IdentityStore::anonymous()),
        allow_anonymous: true,
        tls: None,
        limits: Limits::default(),
        metrics: Arc::new(Metrics::new()),
        availability: Arc::new(Availability::new()),
        badges: Arc::new(Badges::none()),
        database_route: Default::default(),
    }
}

/// A clock the test sets; it starts at `start` and stays there until changed.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap() = now;
    }

    pub fn clock(&self) -> Clock {
        let now = self.0.clone();
        Clock::from_fn(move || *now.lock().unwrap())
    }
}

/// Starts the server on a fresh port with `pool` (the test's own database).
pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool.clone(), pool).await
}

/// Starts the server with a pool of its own like `server_pool` (e.g. through a proxy, or with
/// fewer connections) while the test keeps `pool` for direct inspection.
pub async fn spawn_app_with(pool: PgPool, server_pool: PgPool) -> TestApp {
    spawn_app_with_options(pool, server_pool, test_options()).await
}

/// Starts the server whose "now" is the test's `clock`.
pub async fn spawn_app_at(pool: PgPool, clock: &ManualClock) -> TestApp {
    let options = ServeOptions {
        clock: clock.clock(),
        ..test_options()
    };
    spawn_app_with_options(pool.clone(), pool, options).await
}

pub async fn spawn_app_with_options(
    pool: PgPool,
    server_pool: PgPool,
    options: ServeOptions,
) -> TestApp {
    spawn(pool, server_pool, options, None).await
}

/// Starts the server with `options` and collects the log lines its threads write (at `info`
/// and above, without colours), as the service's own subscriber would write them.
pub async fn spawn_app_logging(pool: PgPool, options: ServeOptions) -> (TestApp, Logs) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    let app = spawn(pool.clone(), pool, options, Some(dispatch)).await;
    (app, logs)
}

/// Log lines written by one server's threads.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn spawn(
    pool: PgPool,
    server_pool: PgPool,
    options: ServeOptions,
    logs: Option<tracing::Dispatch>,
) -> TestApp {
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = options.metrics.clone();
    let availability = options.availability.clone();
    let (badges, clock) = (options.badges.clone(), options.clock.clone());
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime
        .worker_threads(2)
        .thread_name("test-server")
        .enable_all();
    if let Some(dispatch) = logs {
        // The server's threads, and only they, write to the test's subscriber: a global one
        // would collect the lines of every test of the binary. The guard lives as long as
        // the thread, so it is leaked on purpose.
        runtime.on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        });
    }
    let runtime = runtime.build().unwrap();
    // The listener, the server's pool (its connections) and its tasks belong to its runtime.
    let (addr, server_pool, task) = {
        let _server = runtime.enter();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let server_pool = server_pool
            .options()
            .clone()
            .connect_lazy_with(server_pool.connect_options().as_ref().clone());
        let task = tokio::spawn(server::serve(
            listener,
            server_pool.clone(),
            options,
            async {
                let _ = stopped.await;
            },
        ));
        (addr, server_pool, task)
    };
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    TestApp {
        addr,
        channel,
        pool,
        metrics,
        availability,
        badges,
        clock,
        server_pool,
        stop: Some(stop),
        task: Some(task),
        runtime: Some(runtime),
    }
}

impl TestApp {
    /// A test app over a server that runs elsewhere (the real binary): the registry's
    /// helpers work through `channel`, and `pool` is the test's own connection.
    pub fn attached(addr: SocketAddr, channel: Channel, pool: PgPool) -> TestApp {
        TestApp {
            addr,
            channel,
            pool: pool.clone(),
            metrics: Arc::new(Metrics::new()),
            availability: Arc::new(Availability::new()),
            badges: Arc::new(Badges::none()),
            clock: Clock::system(),
            server_pool: pool,
            stop: None,
            task: None,
            runtime: None,
        }
    }

    pub fn elections(&self) -> ElectionServiceClient<Channel> {
        ElectionServiceClient::new(self.channel.clone())
    }

    pub fn organizations(&self) -> OrganizationServiceClient<Channel> {
        OrganizationServiceClient::new(self.channel.clone())
    }

    pub fn invitations(&self) -> InvitationServiceClient<Channel> {
        InvitationServiceClient::new(self.channel.clone())
    }

    pub fn delegations(&self) -> DelegationServiceClient<Channel> {
        DelegationServiceClient::new(self.channel.clone())
    }

    pub fn observers(&self) -> ObserverServiceClient<Channel> {
        ObserverServiceClient::new(self.channel.clone())
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// The Prometheus text the admin port serves now.
    pub fn metrics_text(&self) -> String {
        self.metrics.encode(&self.server_pool)
    }

    /// Serves the admin port with the verification routes beside it, as the binary does
    /// without `--verify-addr`, on the server's runtime; with `database_up` false the
    /// routes take the database for unreachable (their own availability, which the health
    /// watch does not reset). Returns the port's address.
    pub async fn serve_http(&self, database_up: bool) -> SocketAddr {
        self.serve_verification(database_up, Port::Admin).await
    }

    /// Serves only the verification routes on a port of their own, as with `--verify-addr`.
    pub async fn serve_verify_port(&self) -> SocketAddr {
        self.serve_verification(true, Port::OwnPort).await
    }

    async fn serve_verification(&self, database_up: bool, port: Port) -> SocketAddr {
        // The server's first health check, which takes the database for reachable.
        let availability = self.availability.clone();
        wait_until(Duration::from_secs(10), "the database to be up", || {
            let availability = availability.clone();
            async move { availability.database_up() }
        })
        .await;
        let runtime = self.runtime.as_ref().expect("a server of this test");
        let _server = runtime.enter();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let availability = if database_up {
            self.availability.clone()
        } else {
            let down = Arc::new(Availability::new());
            down.set_database_up(false);
            down
        };
        let routes = VerifyHttp::new(Verifier::new(
            Database {
                pool: self.server_pool.clone(),
                availability,
                metrics: self.metrics.clone(),
                route: Default::default(),
            },
            self.clock.clone(),
            self.badges.clone(),
        ))
        .routes();
        if port == Port::OwnPort {
            runtime.spawn(verify_http::serve(listener, routes, std::future::pending()));
            return addr;
        }
        let state = AdminState {
            metrics: self.metrics.clone(),
            availability: self.availability.clone(),
            pool: self.server_pool.clone(),
        };
        runtime.spawn(admin::serve(
            listener,
            state,
            routes,
            std::future::pending(),
        ));
        addr
    }

    /// Starts shutdown and waits for the server to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }

    /// Rows in a table, to prove a refused call changed nothing.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Waits until the overall health status is `want` (up to 10 s).
    pub async fn wait_for_health(&self, service: &str, want: i32) {
        let health = self.health();
        wait_until(
            Duration::from_secs(10),
            &format!("health of {service:?} to become {want}"),
            || {
                let mut health = health.clone();
                async move {
                    let status = health
                        .check(tonic_health::pb::HealthCheckRequest {
                            service: service.to_owned(),
                        })
                        .await
                        .map(|r| r.into_inner().status);
                    status.ok() == Some(want)
                }
            },
        )
        .await;
    }
}

/// Where the verification routes are served.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Port {
    /// Beside `/metrics` (no `--verify-addr`).
    Admin,
    /// Alone (`--verify-addr`).
    OwnPort,
}

/// GET over plain HTTP/1.1: status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = http_response(addr, path).await;
    (response.status, response.body)
}

/// An HTTP/1.1 answer: status, header lines as they came, body.
pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then_some(value.trim())
        })
    }
}

/// GET over plain HTTP/1.1, the whole answer.
pub async fn http_response(addr: SocketAddr, path: &str) -> HttpResponse {
    http_response_with(addr, path, &[]).await
}

/// GET over plain HTTP/1.1 with extra header lines (`"X-Forwarded-For: 1.2.3.4"`).
pub async fn http_response_with(addr: SocketAddr, path: &str, headers: &[&str]) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    HttpResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Checks `condition` every 20 ms until it holds; fails the test, naming what it waited for,
/// when it still does not after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let held = tokio::time::timeout(timeout, async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(held.is_ok(), "waited {timeout:?} for {what}");
}

/// The value of the metrics sample line that starts with `prefix` (labels included), or 0.
pub fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

pub const SERVING: i32 = 1;
pub const NOT_SERVING: i32 = 2;

/// Asserts the code and `ErrorInfo` (domain and reason) of a failed call.
#[track_caller]
pub fn assert_error(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, "observer-registry");
    assert_eq!(info.reason, reason, "unexpected reason in {status:?}");
}

/// The fields named by the `BadRequest` violations of a failed call.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Asserts INVALID_ARGUMENT with `reason` and a violation for exactly these fields.
#[track_caller]
pub fn assert_invalid(status: &Status, reason: &str, fields: &[&str]) {
    assert_error(status, Code::InvalidArgument, reason);
    let mut got = violated_fields(status);
    got.sort();
    let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "violations of {status:?}");
}

pub fn kz_election(display_name: &str) -> pb::Election {
    pb::Election {
        display_name: display_name.to_owned(),
        host_country: "KZ".to_owned(),
        voting_day: "2023-03-19".to_owned(),
        ..Default::default()
    }
}

pub async fn create_election(app: &TestApp, id: &str) -> pb::Election {
    app.elections()
        .create_election(pb::CreateElectionRequest {
            election_id: id.to_owned(),
            election: Some(kz_election("Early parliamentary election")),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Runs `sql` and returns the constraint PostgreSQL names in its refusal.
pub async fn refused(pool: &PgPool, sql: &str) -> String {
    let error = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .expect_err(sql);
    error
        .as_database_error()
        .and_then(|e| e.constraint().map(str::to_owned))
        .unwrap_or_else(|| error.to_string())
}

pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The shipped client over `app`'s channel that makes each call once and sets no deadline of
/// its own: tests of the service's answers see them as they are, not after retries.
pub fn client_without_retries(
    app: &TestApp,
    token: Option<&str>,
) -> observer_registry::client::Client {
    use observer_registry::client::{Client, ClientOptions, RetryPolicy};
    let options = ClientOptions {
        token: token.map(str::to_owned),
        timeout: None,
        retry: RetryPolicy::never(),
        ..Default::default()
    };
    Client::with_options(app.channel.clone(), &options).unwrap()
}
