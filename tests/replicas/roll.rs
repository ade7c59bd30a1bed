//! A rolling restart under load (HA.md, "Rolling out"): the replicas are replaced one by
//! one, each with SIGTERM as kubelet stops a pod, while clients of the shipped crate keep
//! calling; with the client's own retries no call fails, and nothing is written twice.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::future::join_all;
use observer_registry::client::{Client, ClientOptions, RetryPolicy};
use observer_registry::pb::v1 as pb;
use sqlx::PgPool;
use tokio::sync::mpsc::Sender;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

use crate::cluster::*;
use crate::common::binary::Binary;
use crate::common::registry::*;
use crate::replicas::{
    accredit_through, create_request, kz_numbers, observer_name, open_election, stored_numbers,
};

/// Tasks calling at once, each one call after another.
const WORKERS: usize = 8;
/// The load alone before the roll: the latencies to compare with.
const WARM_UP: Duration = Duration::from_secs(1);

/// How a replica leaves the clients' list of addresses, against its SIGTERM.
#[derive(Clone, Copy, Debug)]
enum Rollout {
    /// 200 ms after its SIGTERM: an endpoints controller and kube-proxy that lag behind the
    /// pod's termination (no preStop sleep, or one shorter than the lag), so calls still
    /// reach the terminating replica. The load is only calls the client may repeat.
    EndpointsLag,
    /// 200 ms before its SIGTERM, the Deployment's order (the preStop sleep, scaled down):
    /// no new call reaches the terminating replica, so the load may include AccreditObserver,
    /// which the client never repeats.
    PreStop,
}

/// The lag of `Rollout::EndpointsLag`, the sleep of `Rollout::PreStop`.
const ENDPOINT_DELAY: Duration = Duration::from_millis(200);

/// The addresses the clients' channel balances over, changed as an endpoints controller
/// changes a Service's endpoints.
struct Endpoints(Sender<Change<SocketAddr, Endpoint>>);

impl Endpoints {
    async fn insert(&self, address: SocketAddr) {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(1));
        self.0
            .send(Change::Insert(address, endpoint))
            .await
            .unwrap();
    }

    async fn remove(&self, address: SocketAddr) {
        self.0.send(Change::Remove(address)).await.unwrap();
    }
}

/// The shipped client of `agency` with its default retries, over `channel`, which spreads
/// calls over the addresses of `Endpoints` (tonic's balanced channel).
fn balanced_client(cluster: &Cluster, agency: &str, channel: Channel) -> Client {
    let options = ClientOptions {
        token: Some(cluster.agencies.token(agency).to_owned()),
        timeout: Some(CALL_TIMEOUT),
        retry: RetryPolicy::default(),
        ..Default::default()
    };
    Client::with_options(channel, &options).unwrap()
}

/// The shipped client's retries: the failure of each attempt it repeated, from its "trying
/// again" events.
#[derive(Clone, Default)]
struct Retries(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Retries {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            retry: bool,
            method: String,
            failure: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => {
                        self.retry = format!("{value:?}") == "the call failed; trying again"
                    }
                    "failure" => self.failure = format!("{value:?}"),
                    "method" => self.method = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.retry {
            let method = fields
                .method
                .trim_matches('"')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            (self.0.lock().unwrap()).push(format!("{method}: {}", fields.failure));
        }
    }
}

/// What the load saw.
#[derive(Default)]
struct Load {
    /// When the roll began, once it has: calls before it are the baseline.
    rolling: Arc<OnceLock<Instant>>,
    /// Calls made before the roll and during it.
    calls: [usize; 2],
    /// The longest call before the roll and during it, and what it was.
    longest: [(Duration, String); 2],
    failures: Vec<String>,
    /// Observer name → its create's request id.
    created: HashMap<String, String>,
    /// Observer name → acknowledged accreditation number.
    accredited: HashMap<String, String>,
}

impl Load {
    /// Times one call of the load and keeps its failure.
    async fn call<T>(
        &mut self,
        what: String,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Option<T> {
        let start = Instant::now();
        let result = call.await;
        let during = usize::from(self.rolling.get().is_some_and(|roll| start >= *roll));
        self.calls[during] += 1;
        self.longest[during] = self.longest[during]
            .clone()
            .max((start.elapsed(), what.clone()));
        match result {
            Ok(response) => Some(response.into_inner()),
            Err(status) => {
                self.failures.push(format!("{what}: {status:?}"));
                None
            }
        }
    }
}

/// Creates observers, accredits each (a batch of one, which the client may repeat under its
/// request id, or AccreditObserver with `Rollout::PreStop`) and reads it back, one call after
/// another, until `done`.
async fn work(
    rollout: Rollout,
    worker: usize,
    registrar: Client,
    accreditor: Client,
    reader: Client,
    rolling: Arc<OnceLock<Instant>>,
    done: Arc<AtomicBool>,
) -> Load {
    let mut load = Load {
        rolling,
        ..Default::default()
    };
    let (mut registrar, mut accreditor, mut reader) = (
        registrar.observers(),
        accreditor.observers(),
        reader.observers(),
    );
    let mut i = 0;
    while !done.load(Ordering::SeqCst) {
        let id = format!("roll{worker}-{i}");
        i += 1;
        let request = create_request(
            &id,
            &format!("Roller{worker}"),
            &format!("R{worker}N{i:05}"),
        );
        let request_id = request.request_id.clone();
        let create = registrar.create_observer(request);
        let Some(created) = load.call(format!("create {id}"), create).await else {
            continue;
        };
        load.created.insert(created.name.clone(), request_id);
        let what = format!("accredit {id}");
        let accredited = match rollout {
            Rollout::EndpointsLag => {
                let batch = pb::BatchAccreditObserversRequest {
                    parent: KZ.into(),
                    names: vec![created.name.clone()],
                    request_id: crate::common::new_request_id(),
                    ..Default::default()
                };
                let accredit = accreditor.batch_accredit_observers(batch);
                load.call(what, accredit)
                    .await
                    .map(|mut batch| batch.observers.remove(0))
            }
            Rollout::PreStop => {
                let single = pb::AccreditObserverRequest {
                    name: created.name.clone(),
                    ..Default::default()
                };
                load.call(what, accreditor.accredit_observer(single)).await
            }
        };
        let Some(observer) = &accredited else {
            continue;
        };
        load.accredited
            .insert(observer.name.clone(), number(observer).to_owned());
        let get = reader.get_observer(pb::GetObserverRequest {
            name: created.name.clone(),
        });
        if let Some(read) = load.call(format!("get {id}"), get).await {
            assert_eq!(number(&read), number(observer), "{id}");
        }
    }
    load
}

/// Calls a replica logged as finished after its shutdown began: calls in flight at SIGTERM.
async fn finished_after_shutdown(replica: &mut Binary) -> Vec<String> {
    let mut stopping = false;
    let mut finished = Vec::new();
    // The process has exited: its log ends.
    while let Ok(Some(log)) =
        tokio::time::timeout(Duration::from_secs(5), replica.logs.recv()).await
    {
        if log["message"] == "shutdown started: refusing new calls, finishing calls in flight" {
            stopping = true;
        } else if stopping && log["message"] == "request finished" {
            finished.push(log["code"].as_str().unwrap_or_default().to_owned());
        }
    }
    finished
}

/// Whether a session waits for a lock that the backend `holder` holds.
async fn blocked_by(pool: &PgPool, holder: i32) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))",
    )
    .bind(holder)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_rolling_restart_under_load_fails_no_call_and_writes_each_call_once(pool: PgPool) {
    roll_under_load(pool, Rollout::EndpointsLag).await;
}

#[sqlx::test]
async fn a_rolling_restart_after_the_prestop_wait_fails_not_even_a_call_never_repeated(
    pool: PgPool,
) {
    roll_under_load(pool, Rollout::PreStop).await;
}

/// Replaces the replicas one by one under load (HA.md, "Rolling out"): with SIGTERM, each
/// replica's address leaving the clients' channel as `rollout` says.
async fn roll_under_load(pool: PgPool, rollout: Rollout) {
    let retries = Retries::default();
    // The test's runtime has one thread, so this sees every task's client.
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(retries.clone()));
    let label = format!("replicas-roll-{rollout:?}").to_lowercase();
    let mut cluster = Cluster::start(pool, &label).await;
    open_election(&cluster).await;
    let (channel, changes) = Channel::balance_channel(16);
    let endpoints = Endpoints(changes);
    for replica in 0..REPLICAS {
        endpoints.insert(cluster.replica(replica).address).await;
    }
    // A held observer per replica: the call in flight at its SIGTERM (below).
    let registrar = cluster.client(0, REGISTRAR).await;
    let mut held = Vec::new();
    for replica in 0..REPLICAS {
        let request = create_request(&format!("held{replica}"), "Held", &format!("HELD{replica}"));
        let observer = registrar
            .observers()
            .create_observer(request)
            .await
            .unwrap()
            .into_inner();
        held.push(observer.name);
    }

    let rolling = Arc::new(OnceLock::new());
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let registrar = balanced_client(&cluster, REGISTRAR, channel.clone());
            let accreditor = balanced_client(&cluster, ACCREDITOR, channel.clone());
            let reader = balanced_client(&cluster, REGISTRAR, channel.clone());
            let (rolling, done) = (rolling.clone(), done.clone());
            tokio::spawn(work(
                rollout, worker, registrar, accreditor, reader, rolling, done,
            ))
        })
        .collect();
    tokio::time::sleep(WARM_UP).await;

    let roll = Instant::now();
    rolling.set(roll).unwrap();
    let mut drained = Vec::new();
    for (replica, held) in held.iter().enumerate() {
        // An accreditation through this replica that waits on the test's lock of its
        // observer, so that a call is surely in flight when SIGTERM comes.
        let mut lock = cluster.pool.begin().await.unwrap();
        let holder: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *lock)
            .await
            .unwrap();
        sqlx::query(
            "SELECT FROM observers WHERE 'elections/kz-2023/observers/' || id = $1 FOR UPDATE",
        )
        .bind(held)
        .execute(&mut *lock)
        .await
        .unwrap();
        let once = cluster.client_once(replica, ACCREDITOR).await;
        let name = held.clone();
        let in_flight = tokio::spawn(async move { accredit_through(&once, &name).await });
        while !blocked_by(&cluster.pool, holder).await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let address = cluster.replica(replica).address;
        if let Rollout::PreStop = rollout {
            endpoints.remove(address).await;
            tokio::time::sleep(ENDPOINT_DELAY).await;
        }
        let mut stopped = cluster.sigterm(replica);
        let terminating = tokio::spawn(async move {
            let status = stopped.child.wait().await.unwrap();
            (stopped, status)
        });
        if let Rollout::EndpointsLag = rollout {
            tokio::time::sleep(ENDPOINT_DELAY).await;
            endpoints.remove(address).await;
        }
        // The held call finishes after SIGTERM, within SHUTDOWN_GRACE_PERIOD (1 s here).
        lock.commit().await.unwrap();
        let accredited = in_flight.await.unwrap().unwrap_or_else(|e| {
            panic!("the call in flight on replica {replica} at SIGTERM: {e:?}")
        });
        assert!(!number(&accredited).is_empty());
        let (mut stopped, status) = tokio::time::timeout(Duration::from_secs(10), terminating)
            .await
            .expect("the replica exits after SIGTERM")
            .unwrap();
        assert!(
            status.success(),
            "replica {replica} after SIGTERM: {status}"
        );
        drained.push(finished_after_shutdown(&mut stopped).await);

        let address = cluster.restart(replica).await.address;
        endpoints.insert(address).await;
    }
    let roll = roll.elapsed();
    done.store(true, Ordering::SeqCst);

    let mut load = Load::default();
    for worker in join_all(workers).await {
        let worker = worker.unwrap();
        for during in 0..2 {
            load.calls[during] += worker.calls[during];
            load.longest[during] = load.longest[during]
                .clone()
                .max(worker.longest[during].clone());
        }
        load.failures.extend(worker.failures);
        load.created.extend(worker.created);
        load.accredited.extend(worker.accredited);
    }
    let retried = retries.0.lock().unwrap().clone();
    println!(
        "{rollout:?}: rolling restart of {REPLICAS} replicas in {roll:?} under {WORKERS} tasks: {} calls \
         during it ({} in the {WARM_UP:?} before), {} attempts repeated by the client \
         ({retried:?}); longest call during the roll {:?}, before it {:?}; calls finished by \
         each replica after its SIGTERM: {drained:?}",
        load.calls[1],
        load.calls[0],
        retried.len(),
        load.longest[1],
        load.longest[0],
    );

    // Every call got its answer.
    assert_eq!(load.failures, Vec::<String>::new());
    assert!(
        load.calls[1] > 100,
        "too little load: {:?} calls",
        load.calls
    );
    // Each replica finished its call in flight, and every call it finished after SIGTERM
    // was answered OK: nothing was cut.
    for (replica, finished) in drained.iter().enumerate() {
        assert!(!finished.is_empty(), "replica {replica} drained no call");
        assert!(
            finished.iter().all(|code| code == "OK"),
            "replica {replica}: {finished:?}"
        );
    }

    // Every acknowledged create is stored once, audited once.
    let stored: BTreeSet<String> = sqlx::query_scalar(
        "SELECT 'elections/kz-2023/observers/' || id FROM observers \
         WHERE election_id = 'kz-2023' AND id LIKE 'roll%'",
    )
    .fetch_all(&cluster.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(stored, load.created.keys().cloned().collect());
    let audited: HashMap<String, i64> = sqlx::query_as(
        "SELECT request_id, count(*) FROM audit_events \
         WHERE method LIKE '%/CreateObserver' GROUP BY request_id",
    )
    .fetch_all(&cluster.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for request_id in load.created.values() {
        assert_eq!(audited.get(request_id), Some(&1), "{request_id}");
    }
    // Every acknowledged number is stored, and the numbers (the held ones too) have no gap.
    let numbers = stored_numbers(&cluster.pool).await;
    assert_eq!(
        numbers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        kz_numbers(load.accredited.len() + REPLICAS)
    );
    let by_observer: HashMap<String, String> = numbers
        .into_iter()
        .map(|(number, id)| (observer_name(&id), number))
        .collect();
    for (name, number) in &load.accredited {
        assert_eq!(&by_observer[name], number, "{name}");
    }
    assert!(roll < Duration::from_secs(30), "the roll took {roll:?}");
}
