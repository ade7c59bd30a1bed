//! What holds across replicas (HA.md, "Several replicas"): every guarantee lives in
//! PostgreSQL, so three replicas of the binary on one database must keep accreditation
//! numbers gapless, meetings without overlaps, request ids answered once, page tokens and the
//! change feed whole, lose no acknowledged write when one of them dies, and not be held up
//! for long by one that hangs.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use observer_registry::client::{Client, RetryPolicy};
use observer_registry::pb::v1 as pb;
use sqlx::PgPool;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::cluster::*;
use crate::common::registry::*;
use crate::common::{assert_error, new_request_id};

/// The accreditation number of the `seq`-th decision of kz-2023.
fn kz_number(seq: usize) -> String {
    format!("KZ-2023-{seq:06}")
}

pub(crate) fn kz_numbers(count: usize) -> Vec<String> {
    (1..=count).map(kz_number).collect()
}

pub(crate) fn observer_name(id: &str) -> String {
    format!("{KZ}/observers/{id}")
}

/// `organizations/sco` and kz-2023 with accreditation open, made through replica 0.
pub(crate) async fn open_election(cluster: &Cluster) {
    let admin = cluster.client(0, ADMIN).await;
    create_organization_as(&admin, "sco", "Shanghai Cooperation Organization").await;
    create_open_kz_election_as(&admin, "Early parliamentary election").await;
}

/// Registers `count` people of `sco` named `{prefix}-{i}` in one batch; their names in order.
async fn register(client: &Client, prefix: &str, count: usize) -> Vec<String> {
    let observers = client
        .observers()
        .batch_create_observers(pb::BatchCreateObserversRequest {
            parent: KZ.into(),
            requests: sco_people(prefix, count, ""),
            request_id: String::new(),
            validate_only: false,
        })
        .await
        .unwrap_or_else(|e| panic!("registering {prefix}: {e:?}"))
        .into_inner()
        .observers;
    assert_eq!(observers.len(), count);
    observers.into_iter().map(|o| o.name).collect()
}

pub(crate) async fn accredit_through(client: &Client, name: &str) -> Result<pb::Observer, Status> {
    client
        .observers()
        .accredit_observer(pb::AccreditObserverRequest {
            name: name.to_owned(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// Every accreditation number of kz-2023 in the database, with its observer's id, by number.
pub(crate) async fn stored_numbers(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT accreditation_number, id FROM observers \
         WHERE election_id = 'kz-2023' AND accreditation_number IS NOT NULL ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn accreditation_numbers_stay_unique_and_gapless_across_replicas(pool: PgPool) {
    const PER_REPLICA: usize = 30;
    const BATCH: usize = 10;
    let cluster = Cluster::start(pool, "replicas-numbers").await;
    open_election(&cluster).await;
    let registrars = cluster.clients(REGISTRAR).await;
    let names: Vec<Vec<String>> = join_all((0..REPLICAS).map(|r| {
        let client = &registrars[r];
        async move { register(client, &format!("r{r}"), PER_REPLICA).await }
    }))
    .await;

    // Through each replica at once: 20 single accreditations and one batch of 10.
    let accreditors = cluster.clients(ACCREDITOR).await;
    let mut singles = Vec::new();
    let mut batches = Vec::new();
    for (replica, names) in names.iter().enumerate() {
        let (single, batch) = names.split_at(PER_REPLICA - BATCH);
        for name in single {
            let (client, name) = (accreditors[replica].clone(), name.clone());
            singles.push(tokio::spawn(async move {
                let observer = accredit_through(&client, &name).await;
                (name, observer)
            }));
        }
        let (client, batch) = (accreditors[replica].clone(), batch.to_vec());
        batches.push(tokio::spawn(async move {
            let response = client
                .observers()
                .batch_accredit_observers(pb::BatchAccreditObserversRequest {
                    parent: KZ.into(),
                    names: batch.clone(),
                    ..Default::default()
                })
                .await;
            (batch, response)
        }));
    }
    let mut acknowledged: HashMap<String, String> = HashMap::new();
    for task in join_all(singles).await {
        let (name, result) = task.unwrap();
        let observer = result.unwrap_or_else(|e| panic!("accrediting {name}: {e:?}"));
        acknowledged.insert(name, number(&observer).to_owned());
    }
    for task in join_all(batches).await {
        let (batch, result) = task.unwrap();
        let observers = result.unwrap().into_inner().observers;
        let numbers: Vec<&str> = observers.iter().map(number).collect();
        // One transaction holds the sequence from its first number to its commit: a batch's
        // numbers follow one another in the order of its names, whatever the other replicas do.
        let first: usize = numbers[0][8..].parse().unwrap();
        assert_eq!(
            numbers,
            kz_numbers(first + BATCH - 1)[first - 1..],
            "{batch:?}"
        );
        for (name, observer) in batch.iter().zip(&observers) {
            assert_eq!(&observer.name, name);
            acknowledged.insert(name.clone(), number(observer).to_owned());
        }
    }

    let total = REPLICAS * PER_REPLICA;
    let mut answered: Vec<&String> = acknowledged.values().collect();
    answered.sort();
    assert_eq!(answered, kz_numbers(total).iter().collect::<Vec<_>>());
    let stored = stored_numbers(&cluster.pool).await;
    assert_eq!(
        stored.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        kz_numbers(total)
    );
    for (number, id) in &stored {
        assert_eq!(&acknowledged[&observer_name(id)], number, "{id}");
    }
}

const ABDIROV: &str = "Nurlan Abdirov, Chairman of the Central Election Commission";
const BOOKINGS: usize = 24;
const ROUNDS: usize = 3;

/// The calls of one round of bookings, through replica `i % 3` each, all at once.
async fn book_at_once(
    clients: &[Client],
    meetings: Vec<(String, pb::Meeting)>,
) -> Vec<Result<pb::Meeting, Status>> {
    let calls = meetings.into_iter().enumerate().map(|(i, (id, meeting))| {
        let client = clients[i % REPLICAS].clone();
        tokio::spawn(async move {
            client
                .meetings()
                .create_meeting(pb::CreateMeetingRequest {
                    parent: KZ.into(),
                    meeting_id: id,
                    meeting: Some(meeting),
                    request_id: String::new(),
                })
                .await
                .map(|r| r.into_inner())
        })
    });
    join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn meeting(host: &str, delegations: Vec<String>, day: usize, minute: usize) -> pb::Meeting {
    let time = |hour: usize| {
        Some(timestamp(at(&format!(
            "2023-03-{day:02}T{hour}:{minute:02}:00Z"
        ))))
    };
    pb::Meeting {
        title: "Meeting with the international observers".into(),
        host: host.to_owned(),
        delegations,
        start_time: time(10),
        end_time: time(11),
        ..Default::default()
    }
}

/// Exactly one booking won; every other one is FAILED_PRECONDITION / MEETING_CONFLICT naming
/// the winner, whichever replica it went through.
fn assert_one_winner(results: &[Result<pb::Meeting, Status>]) {
    let won: Vec<&pb::Meeting> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_error(error, Code::FailedPrecondition, "MEETING_CONFLICT");
        let info = error.get_details_error_info().unwrap();
        assert_eq!(
            info.metadata["conflicting_meeting"], won[0].name,
            "{error:?}"
        );
    }
}

#[sqlx::test]
async fn of_overlapping_meetings_booked_through_different_replicas_exactly_one_wins(pool: PgPool) {
    let cluster = Cluster::start(pool, "replicas-meetings").await;
    open_election(&cluster).await;
    let registrars = cluster.clients(REGISTRAR).await;
    let groups: Vec<String> = join_all((0..BOOKINGS).map(|i| {
        let client = registrars[i % REPLICAS].clone();
        async move {
            client
                .delegations()
                .create_delegation(pb::CreateDelegationRequest {
                    parent: KZ.into(),
                    delegation_id: format!("group-{i}"),
                    delegation: Some(delegation("SCO group", "sco")),
                    request_id: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .name
        }
    }))
    .await;
    let protocol = cluster.clients(PROTOCOL).await;

    for round in 0..ROUNDS {
        // One host, a delegation each: only the host makes them overlap.
        let bookings = (0..BOOKINGS)
            .map(|i| {
                let id = format!("host-{round}-{i}");
                (id, meeting(ABDIROV, vec![groups[i].clone()], 10 + round, i))
            })
            .collect();
        assert_one_winner(&book_at_once(&protocol, bookings).await);

        // One delegation, a host each: only the delegation makes them overlap.
        let bookings = (0..BOOKINGS)
            .map(|i| {
                let id = format!("delegation-{round}-{i}");
                let host = format!("Official number {i} of the Central Election Commission");
                (id, meeting(&host, vec![groups[0].clone()], 14 + round, i))
            })
            .collect();
        assert_one_winner(&book_at_once(&protocol, bookings).await);
    }

    // Bookings of one slot take turns: none waited on another's row in the exclusion
    // constraints until PostgreSQL broke a deadlock (each costs `deadlock_timeout`, and
    // enough of them at once outlast every call's deadline).
    let deadlocks = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()";
    assert_eq!(cluster.count(deadlocks).await, 0);
    let won = 2 * ROUNDS as i64;
    assert_eq!(cluster.count("SELECT count(*) FROM meetings").await, won);
    let audited = "SELECT count(*) FROM audit_events WHERE method LIKE '%/CreateMeeting'";
    assert_eq!(cluster.count(audited).await, won);
}

/// A create of `observers/{id}`, a Chinese citizen sent by `sco` who holds this travel
/// document, under a fresh request id.
pub(crate) fn create_request(
    id: &str,
    family_name: &str,
    travel_document: &str,
) -> pb::CreateObserverRequest {
    let person = observer("Wei", family_name, "CN", "sco", travel_document);
    pb::CreateObserverRequest {
        request_id: new_request_id(),
        ..create_observer_request(KZ, id, person)
    }
}

async fn create_through(
    client: &Client,
    request: pb::CreateObserverRequest,
) -> Result<pb::Observer, Status> {
    client
        .observers()
        .create_observer(request)
        .await
        .map(|r| r.into_inner())
}

async fn audit_events_of(pool: &PgPool, request_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE request_id = $1")
        .bind(request_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_create_replayed_through_another_replica_returns_the_first_result(pool: PgPool) {
    const AT_ONCE: usize = 15;
    let cluster = Cluster::start(pool, "replicas-request-ids").await;
    open_election(&cluster).await;
    let clients = join_all((0..REPLICAS).map(|r| cluster.client_once(r, REGISTRAR))).await;

    // One after another: the first replica creates, the others answer with its result.
    let request = create_request("zhang-wei", "Zhang", "E12345678");
    let request_id = request.request_id.clone();
    let first = create_through(&clients[0], request.clone()).await.unwrap();
    for client in &clients[1..] {
        let replay = create_through(client, request.clone()).await.unwrap();
        assert_eq!(replay.name, first.name);
        assert_eq!(replay.etag, first.etag);
        assert_eq!(replay, first);
    }
    let rows = "SELECT count(*) FROM observers WHERE id = 'zhang-wei'";
    assert_eq!(cluster.count(rows).await, 1);
    assert_eq!(audit_events_of(&cluster.pool, &request_id).await, 1);

    // At once: the same request through all three replicas, for many request ids. The key
    // is claimed in PostgreSQL, so the calls that lose wait for the first and answer with it.
    let requests: Vec<pb::CreateObserverRequest> = (0..AT_ONCE)
        .map(|i| {
            create_request(
                &format!("at-once-{i}"),
                &format!("Family{i:03}"),
                &format!("AT{i:07}"),
            )
        })
        .collect();
    let calls = requests.iter().flat_map(|request| {
        clients.iter().map(move |client| {
            let (client, request) = (client.clone(), request.clone());
            tokio::spawn(async move { create_through(&client, request).await })
        })
    });
    let answers: Vec<pb::Observer> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    for (request, answers) in requests.iter().zip(answers.chunks(REPLICAS)) {
        assert_eq!(answers[0].name, observer_name(&request.observer_id));
        assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
        assert_eq!(audit_events_of(&cluster.pool, &request.request_id).await, 1);
    }
    let rows = "SELECT count(*) FROM observers WHERE id LIKE 'at-once-%'";
    assert_eq!(cluster.count(rows).await, AT_ONCE as i64);
}

#[sqlx::test]
async fn a_page_token_from_one_replica_is_honoured_by_the_others(pool: PgPool) {
    const OBSERVERS: usize = 50;
    let cluster = Cluster::start(pool, "replicas-paging").await;
    open_election(&cluster).await;
    let registered: BTreeSet<String> =
        register(&cluster.client(0, REGISTRAR).await, "pages", OBSERVERS)
            .await
            .into_iter()
            .collect();
    let readers = cluster.clients(READER).await;
    let page = |replica: usize, token: String| {
        let client = readers[replica].clone();
        async move {
            client
                .observers()
                .list_observers(pb::ListObserversRequest {
                    parent: KZ.into(),
                    page_size: 7,
                    page_token: token,
                    order_by: "family_name desc".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };

    // Page n through replica n % 3; each token also through the next replica, which must
    // answer the same page.
    let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let replica = pages % REPLICAS;
        let here = page(replica, token.clone()).await;
        let there = page((replica + 1) % REPLICAS, token.clone()).await;
        assert_eq!(here, there, "page {pages} differs between replicas");
        assert_eq!(here.total_size as usize, OBSERVERS);
        seen.extend(here.observers.into_iter().map(|o| o.name));
        pages += 1;
        if here.next_page_token.is_empty() {
            break;
        }
        token = here.next_page_token;
    }
    assert_eq!(pages, OBSERVERS.div_ceil(7));
    assert_eq!(seen.len(), OBSERVERS, "no observer twice");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), registered);
}

/// The next event of `stream`, failing after 10 s.
async fn next_event(stream: &mut tonic::Streaming<pb::ObserverEvent>) -> pb::ObserverEvent {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .expect("the watch goes on")
}

#[sqlx::test]
async fn a_watch_on_one_replica_sees_the_others_writes_once_in_commit_order(pool: PgPool) {
    const ACCREDITED: usize = 60;
    let cluster = Cluster::start(pool, "replicas-watch").await;
    open_election(&cluster).await;
    let names = register(&cluster.client(1, REGISTRAR).await, "watched", ACCREDITED).await;

    let reader = cluster.client(0, READER).await;
    let mut stream = reader
        .observers()
        .watch_observers(pb::WatchObserversRequest {
            parent: KZ.into(),
            resume_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    // A write through another replica marks where the watch stands.
    let marker = create_through(
        &cluster.client(2, REGISTRAR).await,
        create_request("marker", "Marker", "M0000001"),
    )
    .await
    .unwrap();
    let first = next_event(&mut stream).await;
    assert_eq!(first.r#type(), pb::ChangeType::Created);
    assert_eq!(first.observer.unwrap().name, marker.name);

    // Accreditations through replicas 1 and 2 at once.
    let accreditors = [
        cluster.client(1, ACCREDITOR).await,
        cluster.client(2, ACCREDITOR).await,
    ];
    let calls = names.iter().enumerate().map(|(i, name)| {
        let (client, name) = (accreditors[i % 2].clone(), name.clone());
        tokio::spawn(async move { accredit_through(&client, &name).await })
    });
    for result in join_all(calls).await {
        result.unwrap().unwrap();
    }

    let (mut events, mut resume_tokens) = (Vec::new(), Vec::new());
    for _ in 0..ACCREDITED {
        let event = next_event(&mut stream).await;
        assert_eq!(event.r#type(), pb::ChangeType::Updated);
        resume_tokens.push(event.resume_token);
        events.push(event.observer.unwrap());
    }
    // The sequence is held to commit, so numbers are in commit order: the feed's order.
    let numbers: Vec<&str> = events.iter().map(number).collect();
    assert_eq!(numbers, kz_numbers(ACCREDITED));
    let watched: Vec<String> = events.iter().map(|o| o.name.clone()).collect();
    let feed: Vec<String> = sqlx::query_scalar(
        "SELECT 'elections/kz-2023/observers/' || (resource->>'id') FROM changes \
         WHERE election_id = 'kz-2023' AND resource_type = 'observer' \
           AND change_type = 'UPDATED' ORDER BY position",
    )
    .fetch_all(&cluster.pool)
    .await
    .unwrap();
    assert_eq!(watched, feed);
    assert_eq!(watched.iter().collect::<BTreeSet<_>>().len(), ACCREDITED);
    // Exactly once: nothing more comes.
    let more = tokio::time::timeout(Duration::from_millis(500), stream.message()).await;
    assert!(more.is_err(), "an event after the last write: {more:?}");

    // A resume token of replica 0 resumes on replica 1 right after its event.
    let half = ACCREDITED / 2;
    let mut resumed = cluster
        .client(1, READER)
        .await
        .observers()
        .watch_observers(pb::WatchObserversRequest {
            parent: KZ.into(),
            resume_token: resume_tokens[half - 1].clone(),
        })
        .await
        .unwrap()
        .into_inner();
    for expected in &events[half..] {
        assert_eq!(&next_event(&mut resumed).await.observer.unwrap(), expected);
    }
}

/// Replica of writer `w`'s calls: its home first, then the others in turn.
fn replicas_from(home: usize) -> impl Iterator<Item = usize> {
    (0..REPLICAS).map(move |k| (home + k) % REPLICAS)
}

/// A writer of the kill test: what was acknowledged to it, and how often it went elsewhere.
#[derive(Default)]
struct Written {
    /// Observer name → etag of the acknowledged create.
    created: HashMap<String, String>,
    /// Observer name → acknowledged accreditation number.
    accredited: HashMap<String, String>,
    request_ids: Vec<String>,
    failovers: usize,
    /// Calls begun before the kill that got no answer: cut in flight.
    cut: usize,
}

const WRITERS: usize = 6;
const OPERATIONS: usize = 20;
const KILLED: usize = 2;

/// Creates and accredits `OPERATIONS` observers, each call through the writer's home replica
/// first and, when it is not answered, through the next one: creates with the same
/// `request_id`; an accreditation again, which FAILED_PRECONDITION answers when the first
/// attempt did commit.
async fn write(
    writer: usize,
    registrars: Arc<Vec<Client>>,
    accreditors: Arc<Vec<Client>>,
    acknowledged: Arc<AtomicUsize>,
    killed: Arc<AtomicBool>,
) -> Written {
    let mut written = Written::default();
    let give_up = Instant::now() + Duration::from_secs(60);
    for i in 0..OPERATIONS {
        let id = format!("w{writer}-{i}");
        let request = create_request(
            &id,
            &format!("Writer{writer}"),
            &format!("W{writer}N{i:05}"),
        );
        let created = 'create: loop {
            for replica in replicas_from(writer % REPLICAS) {
                let before_kill = !killed.load(Ordering::SeqCst);
                match create_through(&registrars[replica], request.clone()).await {
                    Ok(observer) => break 'create observer,
                    Err(status) => {
                        assert!(Instant::now() < give_up, "{id}: {status:?}");
                        written.failovers += 1;
                        written.cut += usize::from(before_kill);
                    }
                }
            }
        };
        acknowledged.fetch_add(1, Ordering::SeqCst);
        written.request_ids.push(request.request_id.clone());
        written
            .created
            .insert(created.name.clone(), created.etag.clone());

        let mut unanswered = false;
        let accredited = 'accredit: loop {
            for replica in replicas_from(writer % REPLICAS) {
                let before_kill = !killed.load(Ordering::SeqCst);
                match accredit_through(&accreditors[replica], &created.name).await {
                    Ok(observer) => break 'accredit Some(observer),
                    // An earlier attempt whose answer was lost did commit.
                    Err(status) if unanswered && status.code() == Code::FailedPrecondition => {
                        break 'accredit None;
                    }
                    Err(status) => {
                        assert!(Instant::now() < give_up, "{id}: {status:?}");
                        written.failovers += 1;
                        written.cut += usize::from(before_kill);
                        unanswered = true;
                    }
                }
            }
        };
        if let Some(observer) = accredited {
            written
                .accredited
                .insert(observer.name.clone(), number(&observer).to_owned());
        }
    }
    written
}

#[sqlx::test]
async fn a_replica_killed_mid_load_loses_no_acknowledged_write_and_a_retried_create_lands_once(
    pool: PgPool,
) {
    let mut cluster = Cluster::start(pool, "replicas-kill").await;
    open_election(&cluster).await;
    let registrars =
        Arc::new(join_all((0..REPLICAS).map(|r| cluster.client_once(r, REGISTRAR))).await);
    let accreditors =
        Arc::new(join_all((0..REPLICAS).map(|r| cluster.client_once(r, ACCREDITOR))).await);
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (r, a, n) = (
                registrars.clone(),
                accreditors.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(write(w, r, a, n, killed.clone()))
        })
        .collect();

    // A third of the way in, the writers homed on replica 2 are in the middle of its calls.
    while acknowledged.load(Ordering::SeqCst) < WRITERS * OPERATIONS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.kill(KILLED).await;
    killed.store(true, Ordering::SeqCst);

    let mut all = Written::default();
    for writer in join_all(writers).await {
        let writer = writer.unwrap();
        all.created.extend(writer.created);
        all.accredited.extend(writer.accredited);
        all.request_ids.extend(writer.request_ids);
        all.failovers += writer.failovers;
        all.cut += writer.cut;
    }
    let total = WRITERS * OPERATIONS;
    assert_eq!(all.created.len(), total);
    // Two writers call replica 2 one call after another, so the kill cuts their calls.
    assert!(all.cut > 0, "no call was cut by the kill");
    assert!(
        all.failovers > all.cut,
        "no call went to another replica after the kill"
    );

    // Every create is there once, audited once.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT 'elections/kz-2023/observers/' || id FROM observers WHERE election_id = 'kz-2023'",
    )
    .fetch_all(&cluster.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), total);
    assert_eq!(
        stored.iter().collect::<BTreeSet<_>>(),
        all.created.keys().collect::<BTreeSet<_>>()
    );
    let audited: Vec<(String, i64)> = sqlx::query_as(
        "SELECT request_id, count(*) FROM audit_events \
         WHERE method LIKE '%/CreateObserver' GROUP BY request_id",
    )
    .fetch_all(&cluster.pool)
    .await
    .unwrap();
    let audited: HashMap<String, i64> = audited.into_iter().collect();
    assert_eq!(audited.len(), total);
    for request_id in &all.request_ids {
        assert_eq!(audited.get(request_id), Some(&1), "{request_id}");
    }

    // Every accreditation acknowledged is stored with its number, and the numbers of all of
    // them, those whose answer was lost with the replica included, have no gap.
    let numbers = stored_numbers(&cluster.pool).await;
    assert_eq!(
        numbers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        kz_numbers(total)
    );
    let by_observer: HashMap<String, String> = numbers
        .into_iter()
        .map(|(number, id)| (observer_name(&id), number))
        .collect();
    for (name, number) in &all.accredited {
        assert_eq!(&by_observer[name], number, "{name}");
    }
}

/// Whether a session of the database sat idle in a transaction for over 200 ms holding a lock
/// on the number sequences: none of the live replicas' transactions waits that long between
/// statements, a frozen replica's does.
async fn sequence_held_by_a_frozen_transaction(pool: &PgPool) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
          WHERE a.datname = current_database() \
            AND l.relation = 'accreditation_sequences'::regclass AND l.granted \
            AND a.state = 'idle in transaction' \
            AND a.state_change < clock_timestamp() - interval '200 milliseconds')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_replica_frozen_mid_accreditation_holds_up_the_others_only_until_its_deadline(
    pool: PgPool,
) {
    // The frozen replica's calls have this deadline; its transaction must end with it.
    const FROZEN_DEADLINE: Duration = Duration::from_secs(2);
    const FROZEN: usize = 2;
    let cluster = Cluster::start(pool, "replicas-frozen").await;
    open_election(&cluster).await;
    let names = register(&cluster.client(0, REGISTRAR).await, "frozen", 60).await;
    let (mine, others) = names.split_at(50);

    // Replica 2 accredits one observer after another, until it is frozen in the middle of a
    // transaction that holds the host country's number sequence (as a node that hangs or
    // loses its network would: its connections stay open, nothing more comes on them).
    let frozen = cluster
        .client_with(FROZEN, ACCREDITOR, RetryPolicy::never(), FROZEN_DEADLINE)
        .await;
    let mine = mine.to_vec();
    let writer = tokio::spawn(async move {
        for name in mine {
            let _ = accredit_through(&frozen, &name).await;
        }
    });
    let mut held = false;
    for _ in 0..100 {
        cluster.signal(FROZEN, "-STOP");
        tokio::time::sleep(Duration::from_millis(300)).await;
        if sequence_held_by_a_frozen_transaction(&cluster.pool).await {
            held = true;
            break;
        }
        cluster.signal(FROZEN, "-CONT");
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    assert!(held, "replica {FROZEN} never froze holding the sequence");

    // The live replicas go on accrediting once the frozen call's deadline has passed.
    let accreditor = cluster.client_once(0, ACCREDITOR).await;
    let started = Instant::now();
    let accredited = accredit_through(&accreditor, &others[0]).await;
    let waited = started.elapsed();
    let accredited = accredited.unwrap_or_else(|e| panic!("after {waited:?}: {e:?}"));
    assert!(
        waited < FROZEN_DEADLINE + Duration::from_secs(3),
        "waited {waited:?}"
    );
    for name in &others[1..] {
        accredit_through(&accreditor, name).await.unwrap();
    }
    cluster.signal(FROZEN, "-CONT");
    writer.abort();

    // What the frozen transaction had taken was given back: no gap.
    let stored = stored_numbers(&cluster.pool).await;
    let numbers: Vec<String> = stored.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(numbers, kz_numbers(stored.len()));
    assert!(
        stored
            .iter()
            .any(|(n, id)| observer_name(id) == accredited.name && n == number(&accredited))
    );
}
