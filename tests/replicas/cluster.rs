//! Three replicas of the real binary on one database, with bearer-token agencies, and the
//! shipped client pointed at any of them.

use std::time::{Duration, Instant};

use futures::future::join_all;
use observer_registry::client::{Client, ClientOptions, RetryPolicy};
use sqlx::PgPool;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common::HealthClient;
use crate::common::agencies::{Agencies, Agency};
use crate::common::binary::{self, Binary};

pub const REPLICAS: usize = 3;
/// The deadline of the tests' calls (the client's default is 30 s).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Agencies of the replicas' file, each with the roles its part of a test needs.
pub const ADMIN: &str = "commission-admin";
pub const REGISTRAR: &str = "commission-registrar";
pub const ACCREDITOR: &str = "commission-accreditor";
pub const PROTOCOL: &str = "commission-protocol";
pub const READER: &str = "partner-reader";

pub struct Cluster {
    /// `None` once a test killed that replica.
    pub replicas: Vec<Option<Binary>>,
    pub agencies: Agencies,
    /// The test's own connection, for what the database holds.
    pub pool: PgPool,
    /// What a replica is started with, so that one can be replaced (`restart`).
    url: String,
    identities: String,
}

impl Cluster {
    /// Three replicas on `pool`'s database, started together as a deploy would start them
    /// (each runs the migrator at start, as `serve` does, and finds `#[sqlx::test]` ran it).
    pub async fn start(pool: PgPool, label: &str) -> Cluster {
        let agencies = Agencies::new(
            label,
            vec![
                Agency::with_token(ADMIN, &["admin"]),
                Agency::with_token(REGISTRAR, &["registrar", "personal-data-reader"]),
                Agency::with_token(ACCREDITOR, &["accreditor"]),
                Agency::with_token(PROTOCOL, &["protocol"]),
                Agency::with_token(READER, &["reader"]),
            ],
        );
        let url = binary::database_url(&pool);
        let identities = agencies.path().to_str().unwrap().to_owned();
        let replicas = join_all((0..REPLICAS).map(|_| start_replica(&url, &identities))).await;
        Cluster {
            replicas: replicas.into_iter().map(Some).collect(),
            agencies,
            pool,
            url,
            identities,
        }
    }

    /// A new instance in `replica`'s place (on a new port, as a new pod has a new address),
    /// once the one there has gone; returned when its readiness is SERVING.
    pub async fn restart(&mut self, replica: usize) -> &Binary {
        assert!(
            self.replicas[replica].is_none(),
            "replica {replica} still runs"
        );
        let binary = start_replica(&self.url, &self.identities).await;
        let mut health = HealthClient::new(binary.channel().await);
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let status = health
                .check(HealthCheckRequest::default())
                .await
                .map(|r| r.into_inner().status);
            if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
                break;
            }
            assert!(
                Instant::now() < give_up,
                "replica {replica} not SERVING: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.replicas[replica].insert(binary)
    }

    pub fn replica(&self, replica: usize) -> &Binary {
        self.replicas[replica]
            .as_ref()
            .unwrap_or_else(|| panic!("replica {replica} was killed"))
    }

    /// The shipped client of `agency` on `replica`, with the client's default retries.
    pub async fn client(&self, replica: usize, agency: &str) -> Client {
        self.client_with(replica, agency, RetryPolicy::default(), CALL_TIMEOUT)
            .await
    }

    /// The shipped client of `agency` on `replica` that makes each call once: the test sees
    /// each replica's own answer, and chooses itself where a failed call goes next.
    pub async fn client_once(&self, replica: usize, agency: &str) -> Client {
        self.client_with(replica, agency, RetryPolicy::never(), CALL_TIMEOUT)
            .await
    }

    /// The shipped client of `agency` on `replica` with these retries and this deadline.
    pub async fn client_with(
        &self,
        replica: usize,
        agency: &str,
        retry: RetryPolicy,
        timeout: Duration,
    ) -> Client {
        let options = ClientOptions {
            token: Some(self.agencies.token(agency).to_owned()),
            timeout: Some(timeout),
            retry,
            ..Default::default()
        };
        Client::connect(format!("http://{}", self.replica(replica).address), options)
            .await
            .unwrap()
    }

    /// One client of `agency` per replica, in replica order.
    pub async fn clients(&self, agency: &str) -> Vec<Client> {
        join_all((0..REPLICAS).map(|replica| self.client(replica, agency))).await
    }

    /// SIGKILL: no graceful shutdown, no drained calls, connections cut as a node failure
    /// cuts them.
    pub async fn kill(&mut self, replica: usize) {
        let mut binary = self.replicas[replica].take().expect("a running replica");
        binary::kill(&binary.child, "-KILL");
        let status = binary.child.wait().await.unwrap();
        assert!(!status.success(), "replica {replica} was killed: {status}");
    }

    /// SIGTERM, as kubelet stops a pod: the replica leaves the cluster, handed back to wait
    /// for its exit (its graceful shutdown: readiness NOT_SERVING, the listener closed, the
    /// calls in flight finished).
    pub fn sigterm(&mut self, replica: usize) -> Binary {
        let binary = self.replicas[replica].take().expect("a running replica");
        binary::kill(&binary.child, "-TERM");
        binary
    }

    /// Sends `signal` (`-STOP`, `-CONT`) to a running replica.
    pub fn signal(&self, replica: usize, signal: &str) {
        binary::kill(&self.replica(replica).child, signal);
    }

    /// Rows of `sql` (a `SELECT count(*) …`), straight from the database.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

async fn start_replica(url: &str, identities: &str) -> Binary {
    let env = [
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("IDENTITIES_FILE", identities),
        // Three replicas share the machine's PostgreSQL with other tests: a small budget
        // each (16 by default).
        ("DB_POOL_SIZE", "8"),
    ];
    Binary::start(url, &env).await
}
