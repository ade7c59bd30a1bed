//! Writes fail over to a promoted standby: no call answered INTERNAL, the calls the switch
//! failed failed as UNAVAILABLE (or DEADLINE_EXCEEDED) and landed when retried, accreditation
//! numbers have no gap and no repeat, and with synchronous replication every acknowledged
//! write is on the new primary. With asynchronous replication the loss is measured.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use observer_registry::client::{Client, ClientOptions, RetryPolicy};
use observer_registry::pb::v1 as pb;
use tonic::{Code, Status};

use crate::common::agencies::{Agencies, Agency};
use crate::common::binary::Binary;
use crate::common::proxy::Proxy;
use crate::common::registry::*;
use crate::common::{http_get, new_request_id};
use crate::pg::{Pair, Replication};

const ADMIN: &str = "commission-admin";
const REGISTRAR: &str = "commission-registrar";
const ACCREDITOR: &str = "commission-accreditor";

const WRITERS: usize = 4;
const OPERATIONS: usize = 25;
/// The deadline of each call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// A writer gives up on one write after this long: the switch takes a few seconds.
const GIVE_UP: Duration = Duration::from_secs(40);

/// One switchover at a time: each runs two clusters and the service on a machine of 2 cores,
/// and measures how long writes took to come back.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The shipped client's retries, a little longer than its default so that they outlast the
/// switch (the default gives up after about 3 s of backoff).
fn retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 12,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..Default::default()
    }
}

/// What the writers saw.
#[derive(Default)]
struct Written {
    /// Observer name → acknowledged create.
    created: BTreeSet<String>,
    /// Observer name → acknowledged accreditation number.
    accredited: BTreeMap<String, String>,
    /// Calls that failed, after the client's own retries, by code.
    failed: BTreeMap<String, usize>,
    /// Acknowledged creates that the new primary did not know when accredited (NOT_FOUND).
    vanished: usize,
}

/// What one switchover showed.
struct Measured {
    written: Written,
    /// From the primary's stop to the first write acknowledged once it had stopped.
    recovery: Duration,
    /// Calls the service answered UNAVAILABLE and INTERNAL (its metrics).
    unavailable: u64,
    internal: u64,
    /// Acknowledged writes missing on the new primary.
    lost_creates: usize,
    lost_accreditations: usize,
    /// Acknowledged numbers given to two observers.
    repeated_numbers: usize,
    /// Whether the new primary's numbers are `KZ-2023-000001`… without a gap.
    gapless: bool,
}

struct Shared {
    registrars: Vec<Client>,
    accreditors: Vec<Client>,
    acknowledged: AtomicUsize,
    /// When the old primary had stopped, and the first write acknowledged after that.
    stopped: Mutex<Option<Instant>>,
    first_after_stop: Mutex<Option<Instant>>,
}

impl Shared {
    fn acknowledged(&self) {
        self.acknowledged.fetch_add(1, Ordering::SeqCst);
        let stopped = *self.stopped.lock().unwrap();
        if stopped.is_some() {
            let mut first = self.first_after_stop.lock().unwrap();
            first.get_or_insert_with(Instant::now);
        }
    }
}

fn is_switch_failure(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
}

/// Creates and accredits `OPERATIONS` observers. A create is retried by the shipped client
/// (same request id), and again here with the same request while it fails; an accreditation,
/// which the client does not retry, is retried here after reading whether it landed.
async fn write(writer: usize, shared: Arc<Shared>) -> Written {
    let mut written = Written::default();
    let registrar = &shared.registrars[writer];
    let accreditor = &shared.accreditors[writer];
    for i in 0..OPERATIONS {
        let give_up = Instant::now() + GIVE_UP;
        let id = format!("w{writer}-{i}");
        let request = pb::CreateObserverRequest {
            request_id: new_request_id(),
            ..create_observer_request(
                KZ,
                &id,
                observer(
                    "Wei",
                    &format!("Writer{writer}"),
                    "CN",
                    "sco",
                    &format!("W{writer}N{i:05}"),
                ),
            )
        };
        let created = loop {
            match registrar.observers().create_observer(request.clone()).await {
                Ok(response) => break response.into_inner(),
                Err(status) => {
                    *written
                        .failed
                        .entry(format!("{:?}", status.code()))
                        .or_default() += 1;
                    assert!(
                        is_switch_failure(&status) && Instant::now() < give_up,
                        "{id}: {status:?}"
                    );
                }
            }
        };
        shared.acknowledged();
        written.created.insert(created.name.clone());

        let accredited = loop {
            let result = accreditor
                .observers()
                .accredit_observer(pb::AccreditObserverRequest {
                    name: created.name.clone(),
                    ..Default::default()
                })
                .await;
            match result {
                Ok(response) => break Some(number(&response.into_inner()).to_owned()),
                // The create was acknowledged by the old primary and did not reach the new
                // one (asynchronous replication only): counted, and checked by the caller.
                Err(status) if status.code() == Code::NotFound => {
                    written.vanished += 1;
                    break None;
                }
                Err(status) => {
                    *written
                        .failed
                        .entry(format!("{:?}", status.code()))
                        .or_default() += 1;
                    assert!(
                        is_switch_failure(&status) && Instant::now() < give_up,
                        "{id}: {status:?}"
                    );
                    // Did it land before its answer was lost? Then it was not acknowledged:
                    // its number is checked with all the others, not as acknowledged.
                    let current = loop {
                        match registrar
                            .observers()
                            .get_observer(pb::GetObserverRequest {
                                name: created.name.clone(),
                            })
                            .await
                        {
                            Ok(observer) => break Some(observer.into_inner()),
                            Err(status) if status.code() == Code::NotFound => break None,
                            Err(status) => assert!(
                                is_switch_failure(&status) && Instant::now() < give_up,
                                "{id}: {status:?}"
                            ),
                        }
                    };
                    match current {
                        None => {
                            written.vanished += 1;
                            break None;
                        }
                        Some(observer)
                            if observer
                                .accreditation
                                .as_ref()
                                .is_some_and(|a| !a.number.is_empty()) =>
                        {
                            break None;
                        }
                        Some(_) => {}
                    }
                }
            }
        };
        if let Some(number) = accredited {
            shared.acknowledged();
            written.accredited.insert(created.name.clone(), number);
        }
    }
    written
}

async fn client(address: SocketAddr, agencies: &Agencies, agency: &str) -> Client {
    client_with(address, agencies, agency, retries()).await
}

async fn client_with(
    address: SocketAddr,
    agencies: &Agencies,
    agency: &str,
    retry: RetryPolicy,
) -> Client {
    let options = ClientOptions {
        token: Some(agencies.token(agency).to_owned()),
        timeout: Some(CALL_TIMEOUT),
        retry,
        ..Default::default()
    };
    Client::connect(format!("http://{address}"), options)
        .await
        .unwrap()
}

/// The sum of `grpc_server_handled_total` answered with `code` (`Internal`, `Unavailable`).
fn handled(metrics: &str, code: &str) -> u64 {
    let label = format!("grpc_code=\"{code}\"");
    metrics
        .lines()
        .filter(|line| line.starts_with("grpc_server_handled_total{") && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The real binary on the pair's primary, through a proxy that stands for the `-rw` Service.
struct Service {
    proxy: Proxy,
    agencies: Agencies,
    binary: Binary,
    metrics_addr: SocketAddr,
}

impl Service {
    async fn start(pair: &Pair) -> Service {
        let proxy = Proxy::start(pair.primary).await;
        let agencies = Agencies::new(
            "switchover",
            vec![
                Agency::with_token(ADMIN, &["admin"]),
                Agency::with_token(REGISTRAR, &["registrar", "reader"]),
                Agency::with_token(ACCREDITOR, &["accreditor"]),
            ],
        );
        let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (identities, metrics) = (
            agencies.path().to_str().unwrap().to_owned(),
            metrics_addr.to_string(),
        );
        let service = Binary::start(
            &Pair::url(proxy.addr, "registry"),
            &[
                ("LISTEN_ADDR", "127.0.0.1:0"),
                ("IDENTITIES_FILE", identities.as_str()),
                ("METRICS_ADDR", metrics.as_str()),
                ("DB_POOL_SIZE", "8"),
            ],
        )
        .await;
        Service {
            proxy,
            agencies,
            binary: service,
            metrics_addr,
        }
    }
}

/// Runs the service on a fresh pair through a proxy, writes, switches over a third of the way
/// in (the primary stopped with `stop_mode`, the standby promoted, the proxy re-pointed), and
/// compares what was acknowledged with what the new primary holds.
async fn switch_over_under_load(replication: Replication, stop_mode: &str) -> Measured {
    let pair = Pair::start(replication).await;
    let Service {
        proxy,
        agencies,
        binary: service,
        metrics_addr,
    } = Service::start(&pair).await;
    let admin = client(service.address, &agencies, ADMIN).await;
    create_organization_as(&admin, "sco", "Shanghai Cooperation Organization").await;
    create_open_kz_election_as(&admin, "Early parliamentary election").await;

    let shared = Arc::new(Shared {
        registrars: join_all((0..WRITERS).map(|_| client(service.address, &agencies, REGISTRAR)))
            .await,
        accreditors: join_all((0..WRITERS).map(|_| client(service.address, &agencies, ACCREDITOR)))
            .await,
        acknowledged: AtomicUsize::new(0),
        stopped: Mutex::new(None),
        first_after_stop: Mutex::new(None),
    });
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write(w, shared.clone())))
        .collect();

    // A third of the way in (creates and accreditations), with calls in flight.
    while shared.acknowledged.load(Ordering::SeqCst) < 2 * WRITERS * OPERATIONS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopping = Instant::now();
    let pair = tokio::task::spawn_blocking({
        let stop_mode = stop_mode.to_owned();
        move || {
            pair.stop_primary(&stop_mode);
            pair
        }
    })
    .await
    .unwrap();
    *shared.stopped.lock().unwrap() = Some(Instant::now());
    let pair = tokio::task::spawn_blocking(move || {
        pair.promote_standby();
        pair
    })
    .await
    .unwrap();
    proxy.retarget(pair.standby);

    let mut written = Written::default();
    for writer in join_all(writers).await {
        let writer = writer.unwrap();
        written.created.extend(writer.created);
        written.accredited.extend(writer.accredited);
        written.vanished += writer.vanished;
        for (code, count) in writer.failed {
            *written.failed.entry(code).or_default() += count;
        }
    }
    let first = shared
        .first_after_stop
        .lock()
        .unwrap()
        .expect("a write acknowledged after the switch");
    let (status, metrics) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200);

    // What the new primary holds.
    let mut new_primary = Pair::connect(pair.standby, "registry").await;
    let stored: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT 'elections/kz-2023/observers/' || id, accreditation_number FROM observers \
         WHERE election_id = 'kz-2023'",
    )
    .fetch_all(&mut new_primary)
    .await
    .unwrap();
    let stored: HashMap<String, Option<String>> = stored.into_iter().collect();
    let mut numbers: Vec<&String> = stored.values().flatten().collect();
    numbers.sort();
    let gapless = numbers
        .iter()
        .enumerate()
        .all(|(i, number)| **number == format!("KZ-2023-{:06}", i + 1));
    let acknowledged_numbers: BTreeSet<&String> = written.accredited.values().collect();
    let measured = Measured {
        lost_creates: written
            .created
            .iter()
            .filter(|name| !stored.contains_key(*name))
            .count(),
        lost_accreditations: written
            .accredited
            .iter()
            .filter(|(name, number)| stored.get(*name) != Some(&Some((*number).clone())))
            .count(),
        repeated_numbers: written.accredited.len() - acknowledged_numbers.len(),
        gapless,
        recovery: first - stopping,
        unavailable: handled(&metrics, "Unavailable"),
        internal: handled(&metrics, "Internal"),
        written,
    };
    println!(
        "switchover: {replication:?} replication, primary stopped -m {stop_mode}: \
         {} creates and {} accreditations acknowledged; first write {} ms after the stop began; \
         {} calls answered UNAVAILABLE by the service, {} INTERNAL; failed after the client's \
         retries: {:?}; lost: {} creates, {} accreditations; {} numbers repeated; \
         numbers gapless: {}",
        measured.written.created.len(),
        measured.written.accredited.len(),
        measured.recovery.as_millis(),
        measured.unavailable,
        measured.internal,
        measured.written.failed,
        measured.lost_creates,
        measured.lost_accreditations,
        measured.repeated_numbers,
        measured.gapless,
    );
    service.stop().await;
    measured
}

/// What holds whatever the replication: the load completed, nothing INTERNAL, the switch was
/// felt (UNAVAILABLE answers) and recovered from within seconds.
fn assert_failed_over(measured: &Measured) {
    assert_eq!(measured.internal, 0, "calls answered INTERNAL");
    assert!(
        measured.unavailable > 0,
        "no call was answered UNAVAILABLE: the switch happened without load"
    );
    assert!(
        measured
            .written
            .failed
            .keys()
            .all(|code| code == "Unavailable" || code == "DeadlineExceeded"),
        "{:?}",
        measured.written.failed
    );
    assert!(
        measured.recovery < Duration::from_secs(20),
        "writes came back after {:?}",
        measured.recovery
    );
}

/// Nothing acknowledged is missing, and the numbers have no gap and no repeat.
fn assert_nothing_lost(measured: &Measured) {
    assert_eq!(measured.written.created.len(), WRITERS * OPERATIONS);
    assert_eq!(measured.written.vanished, 0);
    assert_eq!(measured.lost_creates, 0);
    assert_eq!(measured.lost_accreditations, 0);
    assert_eq!(measured.repeated_numbers, 0);
    assert!(measured.gapless, "the new primary's numbers have a gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_synchronous_replication_a_switchover_loses_no_acknowledged_write() {
    let _one = ONE_AT_A_TIME.lock().await;
    let measured = switch_over_under_load(Replication::Synchronous, "fast").await;
    assert_failed_over(&measured);
    assert_nothing_lost(&measured);
}

/// A fast stop ships the primary's WAL to the standby before it exits, so even asynchronous
/// replication loses nothing; a crash (immediate stop) loses what the standby had not
/// received, which this measures without asserting it (it depends on timing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_asynchronous_replication_a_clean_switchover_loses_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    for _ in 0..2 {
        let measured = switch_over_under_load(Replication::Asynchronous, "fast").await;
        assert_failed_over(&measured);
        assert_nothing_lost(&measured);
    }
    let crashed = switch_over_under_load(Replication::Asynchronous, "immediate").await;
    assert_failed_over(&crashed);
}

/// The service's sessions on the server at `address`.
async fn sessions_of_the_service(address: SocketAddr) -> i64 {
    let mut connection = Pair::connect(address, "postgres").await;
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'observer-registry'",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap()
}

/// The `-rw` address led to a standby for a while (an endpoint moved too early, or to a
/// primary being demoted): the writes that reached it are UNAVAILABLE, never INTERNAL, and
/// once the address leads to the primary again the connections opened to the standby, alive
/// and read-only for good, are closed rather than handed out again: every write lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_a_read_only_server_are_dropped_once_the_address_leads_to_the_primary() {
    let _one = ONE_AT_A_TIME.lock().await;
    let pair = Pair::start(Replication::Synchronous).await;
    let Service {
        proxy,
        agencies,
        binary: service,
        metrics_addr,
    } = Service::start(&pair).await;
    let admin = client(service.address, &agencies, ADMIN).await;
    create_organization_as(&admin, "sco", "Shanghai Cooperation Organization").await;
    create_open_kz_election_as(&admin, "Early parliamentary election").await;
    let once = client_with(service.address, &agencies, REGISTRAR, RetryPolicy::never()).await;
    // A registration of a person of its own under `id`.
    let registration = |id: &str| {
        let document = format!("STANDBY{}", id.to_uppercase().replace('-', ""));
        create_observer_request(KZ, id, observer("Wei", "Standby", "CN", "sco", &document))
    };
    let create = |id: String| {
        let once = once.clone();
        let request = registration(&id);
        async move { once.observers().create_observer(request).await }
    };

    // New connections lead to the standby; a burst of writes needs more than the pool holds.
    // Batches of one, each a transaction of its own: CreateObserver calls arriving together
    // would share a transaction (and a connection).
    proxy.retarget(pair.standby);
    let batch = |id: String| {
        let once = once.clone();
        let request = pb::BatchCreateObserversRequest {
            parent: KZ.to_owned(),
            requests: vec![registration(&id)],
            ..Default::default()
        };
        async move { once.observers().batch_create_observers(request).await }
    };
    let burst = join_all((0..16).map(|i| batch(format!("b{i}")))).await;
    let refused: Vec<&Status> = burst.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!refused.is_empty(), "no write reached the standby");
    for status in &refused {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    assert!(
        sessions_of_the_service(pair.standby).await > 0,
        "the service opened no connection to the standby"
    );

    // The address leads to the primary again: every write lands, and the standby's
    // connections are gone.
    proxy.retarget(pair.primary);
    let deadline = Instant::now() + Duration::from_secs(5);
    while create("probe".to_owned()).await.is_err() {
        assert!(Instant::now() < deadline, "writes did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for round in 0..5 {
        let results = join_all((0..8).map(|i| create(format!("r{round}-{i}")))).await;
        for result in results {
            let observer = result.unwrap_or_else(|status| panic!("round {round}: {status:?}"));
            assert!(observer.get_ref().name.starts_with(KZ));
        }
    }
    assert_eq!(sessions_of_the_service(pair.standby).await, 0);
    let (_, metrics) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(handled(&metrics, "Internal"), 0);
    service.stop().await;
}
