//! Production behaviour: message-size limits, load shedding, deadlines that bound the
//! database work, an exhausted pool, retried races, metrics on the admin port, and serving
//! on a Unix domain socket.

use crate::common::{self, registry};

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use observer_registry::admin::{self, AdminState};
use observer_registry::client::{Client, ClientOptions};
use observer_registry::database::Database;
use observer_registry::error::{Error, Reason};
use observer_registry::health::Availability;
use observer_registry::listen::ListenAddr;
use observer_registry::metrics::Metrics;
use observer_registry::pb::v1 as pb;
use observer_registry::server::{self, Limits, ServeOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};
use tonic::Code;

fn election(description: &str) -> pb::Election {
    pb::Election {
        display_name: "Early parliamentary election".into(),
        host_country: "KZ".into(),
        voting_day: "2023-03-19".into(),
        description: description.into(),
        ..Default::default()
    }
}

async fn create_election(app: &TestApp, id: &str) {
    app.elections()
        .create_election(pb::CreateElectionRequest {
            election_id: id.into(),
            election: Some(election("")),
            request_id: String::new(),
        })
        .await
        .unwrap();
}

fn describe(id: &str, description: &str) -> pb::UpdateElectionRequest {
    pb::UpdateElectionRequest {
        election: Some(pb::Election {
            name: format!("elections/{id}"),
            description: description.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["description".into()],
        }),
    }
}

fn get(id: &str) -> pb::GetElectionRequest {
    pb::GetElectionRequest {
        name: format!("elections/{id}"),
    }
}

/// Locks an election's row in a transaction of the test, so that a write to it waits.
async fn lock_election(pool: &PgPool, id: &str) -> Transaction<'static, Postgres> {
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM elections WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *lock)
        .await
        .unwrap();
    lock
}

/// Statements of the server (not this query) that are running or waiting now.
async fn server_statements_running(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND state = 'active' AND query NOT ILIKE '%pg_stat_activity%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until `count` of the server's statements wait for a lock.
async fn wait_for_lock_waiters(pool: &PgPool, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} of {count} calls waiting"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn with_limits(limits: Limits) -> ServeOptions {
    ServeOptions {
        limits,
        ..test_options()
    }
}

#[sqlx::test]
async fn an_oversized_request_is_refused_and_the_connection_stays_usable(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_election(&app, "kz-2023").await;
    let five_mib = "x".repeat(5 << 20);
    let error = app
        .elections()
        .update_election(describe("kz-2023", &five_mib))
        .await
        .unwrap_err();
    assert!(
        matches!(error.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{error:?}"
    );
    // Same channel, same connection: the next call is served.
    let stored = app.elections().get_election(get("kz-2023")).await.unwrap();
    assert_eq!(stored.into_inner().description, "");
}

#[sqlx::test]
async fn an_oversized_response_is_refused_not_sent(pool: PgPool) {
    let options = with_limits(Limits {
        max_response_bytes: 1024,
        ..Limits::default()
    });
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    create_election(&app, "kz-2023").await;
    app.elections()
        .update_election(describe("kz-2023", &"y".repeat(2000)))
        .await
        .unwrap_err();
    let error = app.elections().get_election(get("kz-2023")).await;
    // The update was written — only its answer was too large to send — and reading the
    // election back is refused the same way.
    let stored: String = sqlx::query_scalar("SELECT description FROM elections")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2000, "the update itself was written");
    let error = error.unwrap_err();
    assert!(
        matches!(error.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{error:?}"
    );
}

#[sqlx::test]
async fn calls_refused_for_their_credentials_take_no_place_under_the_concurrency_limit(
    pool: PgPool,
) {
    use common::agencies::{ADMIN, Agencies, READER};
    let agencies = Agencies::standard("shed-after-auth");
    let options = ServeOptions {
        limits: Limits {
            max_concurrent_requests: 1,
            ..Limits::default()
        },
        ..agencies.options()
    };
    let app = spawn_app_with_options(pool.clone(), pool.clone(), options).await;
    let admin = agencies.client(&app, ADMIN);
    admin
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Early parliamentary election")),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let lock = lock_election(&pool, "kz-2023").await;

    // The one place is taken by an admin's update waiting for the lock.
    let held = {
        let elections = admin.elections();
        tokio::spawn(async move {
            let mut elections = elections;
            elections.update_election(describe("kz-2023", "held")).await
        })
    };
    wait_for_lock_waiters(&pool, 1).await;

    // Refused for who they are, not for a full server: they never reach the shedding.
    let anonymous = client_without_retries(&app, None);
    let error = anonymous
        .elections()
        .get_election(get("kz-2023"))
        .await
        .unwrap_err();
    assert_error(&error, Code::Unauthenticated, "UNAUTHENTICATED");
    let reader = agencies.client(&app, READER);
    let error = reader
        .elections()
        .update_election(describe("kz-2023", "not mine"))
        .await
        .unwrap_err();
    assert_error(&error, Code::PermissionDenied, "PERMISSION_DENIED");
    // An authorized call finds the place taken.
    let error = reader
        .elections()
        .get_election(get("kz-2023"))
        .await
        .unwrap_err();
    assert_error(&error, Code::ResourceExhausted, "OVERLOADED");

    lock.rollback().await.unwrap();
    held.await.unwrap().unwrap();
    reader
        .elections()
        .get_election(get("kz-2023"))
        .await
        .unwrap();
}

#[sqlx::test]
async fn calls_beyond_the_concurrency_limit_are_shed_at_once_and_probes_still_answer(pool: PgPool) {
    let options = with_limits(Limits {
        max_concurrent_requests: 4,
        ..Limits::default()
    });
    // More connections than the test pool's five: four held calls, the lock, the checks.
    let server_pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_lazy_with(pool.connect_options().as_ref().clone());
    let app = spawn_app_with_options(pool.clone(), server_pool, options).await;
    create_election(&app, "kz-2023").await;
    let lock = lock_election(&pool, "kz-2023").await;

    // Four updates take the four places and wait for the lock.
    let mut held = Vec::new();
    for i in 0..4 {
        let mut elections = app.elections();
        held.push(tokio::spawn(async move {
            elections
                .update_election(describe("kz-2023", &format!("held {i}")))
                .await
        }));
    }
    wait_for_lock_waiters(&pool, 4).await;

    // Forty more, at once: every one refused immediately, none queued.
    let started = Instant::now();
    let storm: Vec<_> = (0..40)
        .map(|_| {
            let mut elections = app.elections();
            tokio::spawn(async move { elections.get_election(get("kz-2023")).await })
        })
        .collect();
    for call in storm {
        let error = call.await.unwrap().unwrap_err();
        assert_error(&error, Code::ResourceExhausted, "OVERLOADED");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shedding took {:?}",
        started.elapsed()
    );
    let health = app
        .health()
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1, "the probe was shed");
    let metrics = app.metrics_text();
    assert!(
        metrics.contains(
            "observer_registry_calls_shed_total{grpc_type=\"unary\",grpc_service=\"observer_registry.v1.ElectionService\",grpc_method=\"GetElection\"} 40"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("observer_registry_calls_in_flight 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("observer_registry_calls_refused_total{reason=\"overloaded\"} 40"),
        "{metrics}"
    );

    lock.commit().await.unwrap();
    for call in held {
        call.await.unwrap().unwrap();
    }
    // The places are free again.
    app.elections().get_election(get("kz-2023")).await.unwrap();
}

#[sqlx::test]
async fn a_deadline_bounds_the_database_work_and_leaves_no_query_running(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    create_election(&app, "kz-2023").await;
    let lock = lock_election(&pool, "kz-2023").await;

    let mut request = tonic::Request::new(describe("kz-2023", "too late"));
    request.set_timeout(Duration::from_millis(50));
    let started = Instant::now();
    let error = app.elections().update_election(request).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{error:?}"
    );
    assert!(took < Duration::from_millis(500), "answered after {took:?}");

    // The statement ends with the call: PostgreSQL cancels it at the deadline.
    let deadline = Instant::now() + Duration::from_millis(500);
    while server_statements_running(&pool).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the timed-out statement still runs {:?} after the call ended",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lock.commit().await.unwrap();
    let stored = app.elections().get_election(get("kz-2023")).await.unwrap();
    assert_eq!(stored.into_inner().description, "", "the late write landed");
}

#[sqlx::test]
async fn the_server_default_deadline_applies_when_the_client_sets_none(pool: PgPool) {
    let options = with_limits(Limits {
        default_deadline: Duration::from_millis(300),
        ..Limits::default()
    });
    let app = spawn_app_with_options(pool.clone(), pool.clone(), options).await;
    create_election(&app, "kz-2023").await;
    let lock = lock_election(&pool, "kz-2023").await;
    let started = Instant::now();
    let error = app
        .elections()
        .update_election(describe("kz-2023", "never"))
        .await
        .unwrap_err();
    assert_error(&error, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    assert!(started.elapsed() < Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_millis(500);
    while server_statements_running(&pool).await > 0 {
        assert!(Instant::now() < deadline, "the statement outlived the call");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lock.rollback().await.unwrap();
}

#[sqlx::test]
async fn an_exhausted_pool_answers_unavailable_before_the_deadline(pool: PgPool) {
    let server_pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(200))
        .connect_lazy_with(pool.connect_options().as_ref().clone());
    let app = spawn_app_with(pool.clone(), server_pool).await;
    create_election(&app, "kz-2023").await;
    let lock = lock_election(&pool, "kz-2023").await;
    let mut elections = app.elections();
    let held =
        tokio::spawn(async move { elections.update_election(describe("kz-2023", "held")).await });
    wait_for_lock_waiters(&pool, 1).await;

    let started = Instant::now();
    let error = app
        .elections()
        .get_election(get("kz-2023"))
        .await
        .unwrap_err();
    assert_error(&error, Code::Unavailable, "UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(1));
    // A busy pool is not a database that is down.
    assert!(app.availability.database_up());
    assert!(
        app.metrics_text()
            .contains("observer_registry_db_errors_total{kind=\"pool_exhausted\"} 1")
    );

    lock.commit().await.unwrap();
    held.await.unwrap().unwrap();
}

fn database(pool: &PgPool) -> Database {
    let availability = Arc::new(Availability::new());
    availability.set_database_up(true);
    Database {
        pool: pool.clone(),
        availability,
        metrics: Arc::new(Metrics::new()),
        route: Default::default(),
    }
}

/// Fails the attempt with SQLSTATE `code` (what PostgreSQL reports for a lost race).
async fn lose_race(tx: &mut sqlx::PgConnection, code: &str) -> Result<(), Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN RAISE EXCEPTION 'lost a race' USING ERRCODE = '{code}'; END $$"
    )))
    .execute(tx)
    .await?;
    Ok(())
}

#[sqlx::test]
async fn transactions_that_lose_races_run_again_and_commit_once(pool: PgPool) {
    let db = database(&pool);
    sqlx::query("CREATE TABLE attempts_log (attempt int)")
        .execute(&pool)
        .await
        .unwrap();
    let attempts = AtomicU32::new(0);
    let attempts = &attempts;
    let outcome: Result<u32, Error> = db
        .transaction(|tx| {
            Box::pin(async move {
                let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                sqlx::query("INSERT INTO attempts_log VALUES ($1)")
                    .bind(attempt as i32)
                    .execute(&mut **tx)
                    .await?;
                match attempt {
                    1 => lose_race(tx, "40001").await?,
                    2 => lose_race(tx, "40P01").await?,
                    _ => {}
                }
                Ok(attempt)
            })
        })
        .await;
    assert_eq!(outcome.unwrap(), 3);
    let committed: Vec<i32> = sqlx::query_scalar("SELECT attempt FROM attempts_log")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(committed, vec![3], "only the last attempt's writes remain");
    assert!(
        db.metrics
            .encode(&pool)
            .contains("observer_registry_db_transaction_retries_total 2")
    );

    // A race lost every time ends ABORTED after a bounded number of attempts.
    let attempts = AtomicU32::new(0);
    let attempts = &attempts;
    let outcome: Result<(), Error> = db
        .transaction(|tx| {
            Box::pin(async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                lose_race(tx, "40P01").await
            })
        })
        .await;
    assert_eq!(outcome.unwrap_err().reason, Reason::Aborted);
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
}

#[sqlx::test]
async fn calls_fail_fast_while_the_database_is_known_to_be_down(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_election(&app, "kz-2023").await;
    app.availability.set_database_up(false);
    let started = Instant::now();
    let error = app
        .elections()
        .get_election(get("kz-2023"))
        .await
        .unwrap_err();
    assert_error(&error, Code::Unavailable, "UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_millis(200));
    // The watch finds the database answering and lets calls through again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.elections().get_election(get("kz-2023")).await.is_err() {
        assert!(Instant::now() < deadline, "calls did not recover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn the_admin_port_serves_metrics_and_probes(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = listener.local_addr().unwrap();
    tokio::spawn(admin::serve(
        listener,
        AdminState {
            metrics: app.metrics.clone(),
            availability: app.availability.clone(),
            pool: pool.clone(),
        },
        axum::Router::new(),
        std::future::pending(),
    ));

    let created = "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"observer_registry.v1.ElectionService\",grpc_method=\"CreateElection\",grpc_code=\"OK\"}";
    let not_found = "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"observer_registry.v1.ElectionService\",grpc_method=\"GetElection\",grpc_code=\"NotFound\"}";
    let (status, before) = http_get(admin_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&before, created), 0.0);

    create_election(&app, "kz-2023").await;
    app.elections()
        .get_election(get("nowhere"))
        .await
        .unwrap_err();

    let (_, after) = http_get(admin_addr, "/metrics").await;
    assert_eq!(sample(&after, created), 1.0, "{after}");
    assert_eq!(sample(&after, not_found), 1.0, "{after}");
    assert!(
        sample(
            &after,
            "grpc_server_handling_seconds_count{grpc_type=\"unary\",grpc_service=\"observer_registry.v1.ElectionService\",grpc_method=\"CreateElection\"}"
        ) == 1.0,
        "{after}"
    );
    // Labelled families (shed calls, database errors) appear with their first sample; the
    // tests of shedding and of an exhausted pool read them.
    for family in [
        "observer_registry_calls_in_flight gauge",
        "observer_registry_db_pool_connections gauge",
        "observer_registry_db_pool_waiting gauge",
        "observer_registry_db_pool_max_connections gauge",
        "observer_registry_db_transaction_retries counter",
        "observer_registry_build_info gauge",
        "process_resident_memory_bytes gauge",
    ] {
        assert!(
            after.contains(&format!("# TYPE {family}")),
            "{family} missing:\n{after}"
        );
    }
    // sqlx returns a connection to the pool in a task of its own after a round trip, so the
    // last call's connection may still be on its way back.
    let mut idle = sample(
        &after,
        "observer_registry_db_pool_connections{state=\"idle\"}",
    );
    for _ in 0..50 {
        if idle >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        idle = sample(
            &http_get(admin_addr, "/metrics").await.1,
            "observer_registry_db_pool_connections{state=\"idle\"}",
        );
    }
    assert!(idle >= 1.0, "{after}");
    assert!(sample(&after, "observer_registry_db_pool_max_connections ") >= 1.0);

    assert_eq!(http_get(admin_addr, "/livez").await.0, 200);
    assert_eq!(http_get(admin_addr, "/readyz").await.0, 200);
    app.availability.set_database_up(false);
    assert_eq!(http_get(admin_addr, "/readyz").await.0, 503);
    assert_eq!(http_get(admin_addr, "/livez").await.0, 200);
}

#[sqlx::test]
async fn the_server_listens_on_a_unix_socket(pool: PgPool) {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("observer-registry-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("registry.sock");
    let address: ListenAddr = format!("unix://{}", path.display()).parse().unwrap();
    assert!(address.is_local());
    let listener = address.bind().await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, pool, test_options(), async {
        let _ = stopped.await;
    }));

    let client = Client::connect(
        format!("unix://{}", path.display()),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    client
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(election("over a socket")),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let listed = client
        .elections()
        .list_elections(pb::ListElectionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.elections.len(), 1);

    stop.send(()).unwrap();
    drop(client);
    server.await.unwrap().unwrap();
    assert!(!path.exists(), "the socket file was left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[sqlx::test]
async fn coalesced_point_reads_answer_each_caller_with_its_own_observer(pool: PgPool) {
    let app = Arc::new(spawn_app(pool).await);
    registry::open_election(&app, "kz-2023").await;
    for i in 0..10 {
        registry::create_observer(
            &app,
            "elections/kz-2023",
            &format!("obs-{i}"),
            registry::observer(
                "Wei",
                &format!("Observer {i}"),
                "CN",
                "sco",
                &format!("E{i:07}"),
            ),
        )
        .await;
    }
    // Many calls at once, the same key several times, and keys that do not exist.
    let calls: Vec<_> = (0..60)
        .map(|n| {
            let app = app.clone();
            let name = format!("elections/kz-2023/observers/obs-{}", n % 15);
            tokio::spawn(
                async move { (name.clone(), registry::try_get_observer(&app, &name).await) },
            )
        })
        .collect();
    for call in calls {
        let (name, result) = call.await.unwrap();
        let index: usize = name.rsplit('-').next().unwrap().parse().unwrap();
        if index < 10 {
            let observer = result.unwrap();
            assert_eq!(observer.name, name);
            assert_eq!(observer.family_name, format!("Observer {index}"));
        } else {
            assert_error(&result.unwrap_err(), Code::NotFound, "NOT_FOUND");
        }
    }
    // A read sent after an acknowledged write sees it.
    for round in 0..20 {
        let family_name = format!("Renamed {round}");
        app.observers()
            .update_observer(pb::UpdateObserverRequest {
                observer: Some(pb::Observer {
                    name: "elections/kz-2023/observers/obs-3".into(),
                    family_name: family_name.clone(),
                    ..Default::default()
                }),
                update_mask: registry::mask(&["family_name"]),
            })
            .await
            .unwrap();
        let read = registry::get_observer(&app, "elections/kz-2023/observers/obs-3").await;
        assert_eq!(read.family_name, family_name);
    }
}

/// Kills the server's point-read connections (their last statement was the batch lookup).
async fn terminate_point_read_connections(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND query LIKE '%id = ANY(CASE WHEN p.position%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn point_reads_reconnect_after_their_connection_is_lost(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    registry::open_election(&app, "kz-2023").await;
    registry::create_observer(
        &app,
        "elections/kz-2023",
        "obs-1",
        registry::observer("Wei", "Observer", "CN", "sco", "E0000001"),
    )
    .await;
    let name = "elections/kz-2023/observers/obs-1";
    registry::get_observer(&app, name).await;

    // A connection that died while idle is noticed before use: the next read just works.
    // (Idle means unused for PING_AFTER_IDLE: this sleep is what the test is about.)
    assert!(terminate_point_read_connections(&pool).await >= 1);
    tokio::time::sleep(observer_registry::database::PING_AFTER_IDLE + Duration::from_millis(200))
        .await;
    assert_eq!(
        registry::get_observer(&app, name).await.family_name,
        "Observer"
    );

    // One that dies between two reads in steady use fails the next read with UNAVAILABLE at
    // most, and reads work again once the server has reconnected.
    assert!(terminate_point_read_connections(&pool).await >= 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match registry::try_get_observer(&app, name).await {
            Ok(observer) => {
                assert_eq!(observer.family_name, "Observer");
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(Instant::now() < deadline, "reads did not recover");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
