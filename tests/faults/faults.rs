//! No acknowledged write lost, none doubled: concurrent writers register and accredit
//! observers, each call retried with the same request id until it is acknowledged, while
//! PostgreSQL itself is restarted (fast shutdown) and then killed (immediate shutdown) and
//! kept down for a while. Afterwards every acknowledged write must be in the database exactly
//! once and the accreditation numbers must still be unique, gapless and in decision order.
//!
//! This restarts the machine's PostgreSQL cluster (`pg_ctlcluster`, as root or through
//! `sudo -n`), so it lives alone in its own test binary: cargo runs test binaries one after
//! another, and nothing else is using the database meanwhile. `FAULT_DOWN_SECS` sets how long
//! PostgreSQL stays down (default 3; the manual check uses 10).

use crate::common::{self, registry};

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use observer_registry::pb::v1 as pb;
use registry::*;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tonic::{Code, Status};

const WRITERS: usize = 6;
/// Each writer goes on at least this far, and until the faults are over.
const MIN_OPERATIONS: usize = 25;
const ELECTION: &str = "elections/kz-2023";

/// Runs `pg_ctlcluster VERSION main ACTION [-m MODE]` on the newest installed cluster.
fn cluster(action: &str, mode: Option<&str>) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("PostgreSQL clusters are configured under /etc/postgresql")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
        .expect("a PostgreSQL cluster");
    let mut args = vec![
        "pg_ctlcluster".to_owned(),
        "--skip-systemctl-redirect".to_owned(),
        version,
        "main".to_owned(),
        action.to_owned(),
    ];
    if let Some(mode) = mode {
        args.extend(["-m".to_owned(), mode.to_owned()]);
    }
    let as_root = unsafe_is_root();
    let status = if as_root {
        std::process::Command::new(&args[0])
            .args(&args[1..])
            .status()
    } else {
        std::process::Command::new("sudo")
            .arg("-n")
            .args(&args)
            .status()
    }
    .expect("pg_ctlcluster runs");
    assert!(status.success(), "{args:?} failed: {status}");
}

fn unsafe_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Codes after which the outcome is unknown or the call was not done: retry it.
fn worth_retrying(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::Unknown
            | Code::ResourceExhausted
    )
}

/// An acknowledged accreditation: the observer and its number.
type Acknowledged = BTreeMap<String, Option<String>>;

async fn writer(
    app: Arc<TestApp>,
    writer: usize,
    faults_over: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> (Acknowledged, usize) {
    let mut acknowledged = Acknowledged::new();
    let mut retries = 0;
    let give_up = Instant::now() + Duration::from_secs(120);
    let mut i = 0;
    while i < MIN_OPERATIONS || !faults_over.load(Ordering::SeqCst) {
        let id = format!("w{writer}-{i}");
        let mut request = create_observer_request(
            ELECTION,
            &id,
            observer(
                "Wei",
                &format!("Writer {writer}"),
                "CN",
                "sco",
                &format!("W{writer}N{i:05}"),
            ),
        );
        request.request_id = uuid::Uuid::new_v4().to_string();
        // Register, retrying the same request id until acknowledged.
        let created = loop {
            assert!(Instant::now() < give_up, "writer {writer} stuck at {id}");
            let mut call = tonic::Request::new(request.clone());
            call.set_timeout(Duration::from_secs(5));
            match app.observers().create_observer(call).await {
                Ok(response) => break response.into_inner(),
                Err(status) if worth_retrying(&status) => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => panic!("{id}: create refused: {status:?}"),
            }
        };
        acknowledged.insert(created.name.clone(), None);
        // Accredit, retrying; an attempt whose answer was lost may have committed, which the
        // next attempt sees as an observer already accredited.
        let mut uncertain = false;
        let number = loop {
            assert!(
                Instant::now() < give_up,
                "writer {writer} stuck accrediting {id}"
            );
            match accredit(&app, &created.name).await {
                Ok(observer) => break number(&observer).to_owned(),
                Err(status) if worth_retrying(&status) => {
                    uncertain = true;
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) if uncertain && status.code() == Code::FailedPrecondition => {
                    let observer = get_observer(&app, &created.name).await;
                    assert_eq!(state(&observer), pb::AccreditationState::Accredited);
                    break number(&observer).to_owned();
                }
                Err(status) => panic!("{id}: accreditation refused: {status:?}"),
            }
        };
        acknowledged.insert(created.name, Some(number));
        done.fetch_add(1, Ordering::SeqCst);
        i += 1;
    }
    (acknowledged, retries)
}

async fn wait_for_progress(done: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < at_least {
        assert!(Instant::now() < deadline, "the writers made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[sqlx::test]
async fn postgres_restarts_lose_no_acknowledged_write_and_double_none(pool: PgPool) {
    let down_for = Duration::from_secs(
        std::env::var("FAULT_DOWN_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    let server_pool = PgPoolOptions::new()
        .max_connections(12)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(pool.connect_options().as_ref().clone());
    let app = Arc::new(spawn_app_with(pool.clone(), server_pool).await);
    open_election(&app, "kz-2023").await;
    // A partner following the change feed through it all, resuming by itself.
    let mut feed = observer_registry::client::Client::from_channel(app.channel.clone(), None)
        .unwrap()
        .follow_observers(ELECTION, "");
    feed.open().await.unwrap();

    let faults_over = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(app.clone(), w, faults_over.clone(), done.clone())))
        .collect();

    wait_for_progress(&done, 20).await;
    let restarted_at = done.load(Ordering::SeqCst);
    tokio::task::spawn_blocking(|| cluster("restart", Some("fast")))
        .await
        .unwrap();
    wait_for_progress(&done, restarted_at + 20).await;
    tokio::task::spawn_blocking(|| cluster("stop", Some("immediate")))
        .await
        .unwrap();
    app.wait_for_health("", 2).await;
    tokio::time::sleep(down_for).await;
    tokio::task::spawn_blocking(|| cluster("start", None))
        .await
        .unwrap();
    app.wait_for_health("", 1).await;
    let recovered_at = done.load(Ordering::SeqCst);
    wait_for_progress(&done, recovered_at + 20).await;
    faults_over.store(true, Ordering::SeqCst);

    let mut acknowledged = Acknowledged::new();
    let mut retries = 0;
    for writer in writers {
        let (acks, tries) = writer.await.unwrap();
        retries += tries;
        acknowledged.extend(acks);
    }
    assert!(
        retries > 0,
        "no call failed: the faults did not hit the writers"
    );
    eprintln!(
        "{} observers registered and accredited by {WRITERS} writers; {retries} calls retried",
        acknowledged.len()
    );

    // Every acknowledged write is there, once; nothing else is.
    let stored: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, accreditation_state, accreditation_number \
             FROM observers WHERE election_id = 'kz-2023' ORDER BY decide_time, id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "rows beyond the acknowledged writes"
    );
    let stored_by_name: BTreeMap<String, Option<String>> = stored
        .iter()
        .map(|(id, _, number)| (format!("{ELECTION}/observers/{id}"), number.clone()))
        .collect();
    assert_eq!(
        stored_by_name, acknowledged,
        "acknowledged and stored differ"
    );

    // Numbers: unique, gapless from 000001, increasing in decision order.
    let numbers: Vec<u32> = stored
        .iter()
        .map(|(id, state, number)| {
            assert_eq!(state, "ACCREDITED", "{id}");
            // KZ-2023-000042 → 42
            let number = number.as_deref().unwrap();
            number.rsplit('-').next().unwrap().parse().unwrap()
        })
        .collect();
    let expected: Vec<u32> = (1..=u32::try_from(stored.len()).unwrap()).collect();
    assert_eq!(
        numbers, expected,
        "numbers out of decision order or with gaps"
    );
    let unique: HashSet<_> = numbers.iter().collect();
    assert_eq!(unique.len(), numbers.len());

    // The follower saw every committed change to the observers exactly once, in commit
    // order, across both restarts.
    let committed: Vec<(String, String)> = sqlx::query_as(
        "SELECT change_type, resource->>'id' FROM changes \
          WHERE resource_type = 'observer' ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut followed = Vec::with_capacity(committed.len());
    while followed.len() < committed.len() {
        let event = tokio::time::timeout(Duration::from_secs(30), feed.next())
            .await
            .expect("the follower stalled")
            .unwrap();
        let kind = match pb::ChangeType::try_from(event.r#type).unwrap() {
            pb::ChangeType::Created => "CREATED",
            pb::ChangeType::Updated => "UPDATED",
            pb::ChangeType::Deleted => "DELETED",
            pb::ChangeType::Undeleted => "UNDELETED",
            pb::ChangeType::Unspecified => "UNSPECIFIED",
        };
        let name = event.observer.unwrap().name;
        let id = name.rsplit('/').next().unwrap().to_owned();
        followed.push((kind.to_owned(), id));
    }
    assert_eq!(
        followed, committed,
        "the feed differs from the committed changes"
    );
    assert_eq!(
        committed.len(),
        2 * acknowledged.len(),
        "one CREATED and one UPDATED each"
    );

    // Request ids: one remembered answer per acknowledged registration.
    let remembered: i64 = sqlx::query_scalar("SELECT count(*) FROM request_ids")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(remembered as usize, acknowledged.len());
}
