//! The service's side of PostgreSQL, through the real binary: it runs under a runtime role that
//! cannot alter the official record, never visits the maintenance database of a database
//! that exists, speaks TLS as libpq would, keeps within one connection budget, and answers a
//! value PostgreSQL refuses with INVALID_ARGUMENT.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use observer_registry::pb::v1 as pb;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::common::operator::{self as binary, Binary};
use crate::common::{self, registry};

const PASSWORD: &str = "runtime-secret";

fn database_name(pool: &PgPool) -> String {
    pool.connect_options().get_database().unwrap().to_owned()
}

/// A URL to the test's database on the local cluster, as `user`, with `query` appended.
fn url_as(user: &str, password: &str, database: &str, query: &str) -> String {
    format!("postgres://{user}:{password}@127.0.0.1:5432/{database}?{query}")
}

fn superuser_url(database: &str, query: &str) -> String {
    url_as("postgres", "postgres", database, query)
}

/// A LOGIN member of the runtime group role, as an operator creates it (README, "Roles").
/// Roles belong to the whole cluster: the name is unique and the test drops it at its end.
async fn create_runtime_login(pool: &PgPool) -> String {
    let name = format!("registry_app_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}' IN ROLE observer_registry_runtime"
    )))
    .execute(pool)
    .await
    .unwrap();
    name
}

async fn drop_role(pool: &PgPool, name: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {name}")))
        .execute(pool)
        .await
        .unwrap();
}

/// The SQLSTATE of a statement's failure; panics when it succeeded.
async fn refused(conn: &mut PgConnection, sql: &str) -> String {
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
    {
        Ok(_) => panic!("the runtime role was allowed: {sql}"),
        Err(sqlx::Error::Database(e)) => e.code().unwrap_or_default().into_owned(),
        Err(e) => panic!("{sql}: {e}"),
    }
}

#[sqlx::test]
async fn the_runtime_role_serves_the_registry_and_cannot_alter_the_record(pool: PgPool) {
    let role = create_runtime_login(&pool).await;
    let database = database_name(&pool);
    let url = url_as(&role, PASSWORD, &database, "");

    // The service, as the runtime role, without migrating: every kind of call works.
    let binary = Binary::start(&["serve", "--no-migrate"], &[("DATABASE_URL", &url)]).await;
    let app = binary.app(pool.clone()).await;
    registry::open_election(&app, "kz-2023").await;
    let parent = "elections/kz-2023";
    let delegation = registry::create_delegation(
        &app,
        parent,
        "sco",
        registry::delegation("SCO observation mission", "sco"),
    )
    .await;
    let observer = registry::create_observer(
        &app,
        parent,
        "li-wei",
        registry::member(
            registry::observer("Wei", "Li", "CN", "sco", "E12345678"),
            &delegation.name,
        ),
    )
    .await;
    let other = registry::create_observer(
        &app,
        parent,
        "other",
        registry::observer("Anna", "Other", "RU", "sco", "R7654321"),
    )
    .await;
    let accredited = registry::accredit(&app, &observer.name).await.unwrap();
    assert_eq!(registry::number(&accredited), "KZ-2023-000001");
    app.observers()
        .correct_observer(pb::CorrectObserverRequest {
            observer: Some(pb::Observer {
                name: observer.name.clone(),
                family_name: "Lee".into(),
                ..Default::default()
            }),
            update_mask: registry::mask(&["family_name"]),
            reason: "misspelled on the badge".into(),
        })
        .await
        .unwrap();
    registry::update_observer(
        &app,
        pb::Observer {
            name: other.name.clone(),
            email: "anna@example.org".into(),
            ..Default::default()
        },
        &["email"],
    )
    .await
    .unwrap();
    registry::delete_observer(&app, &other.name, "")
        .await
        .unwrap();
    assert_eq!(
        registry::get_observer(&app, &observer.name)
            .await
            .family_name,
        "Lee"
    );
    // The change feed got positions at commit (a function that runs as the owner).
    let mut feed = app
        .observers()
        .watch_observers(pb::WatchObserversRequest {
            parent: parent.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    registry::update_observer(
        &app,
        pb::Observer {
            name: observer.name.clone(),
            email: "wei@example.org".into(),
            ..Default::default()
        },
        &["email"],
    )
    .await
    .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.observer.unwrap().name, observer.name);
    drop(feed);
    assert!(binary.stop().await.success());

    // Then the same role with plain SQL: the official record cannot be altered, nor the schema.
    let audit_events = app.count("audit_events").await;
    let changes = app.count("changes").await;
    let corrections = app.count("observer_corrections").await;
    assert!(audit_events >= 7 && changes >= 5 && corrections == 1);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    for sql in [
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        "DROP TRIGGER audit_events_append_only ON audit_events",
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger \
         LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        "ALTER TABLE audit_events OWNER TO CURRENT_USER",
        "DROP TABLE audit_events",
        "UPDATE changes SET resource = '{}'",
        "DELETE FROM changes",
        "TRUNCATE changes",
        "UPDATE observer_corrections SET reason = 'nothing happened'",
        "DELETE FROM observer_corrections",
        "ALTER TABLE observers ADD COLUMN note text",
        "DROP INDEX observers_one_person_per_election",
        "CREATE TABLE shadow (id int)",
        "CREATE TEMPORARY TABLE scratch (id int)",
        "CREATE FUNCTION shadow() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "DELETE FROM _sqlx_migrations",
        "CREATE ROLE intruder SUPERUSER",
        "SET ROLE postgres",
    ] {
        assert_eq!(refused(&mut conn, sql).await, "42501", "{sql}");
    }
    // What it may do: add to the trail and read it, and purge only what is past retention
    // (never anything younger than a day).
    sqlx::query("INSERT INTO audit_events (actor, method, resource) VALUES ('test', '/t', 'r')")
        .execute(&mut conn)
        .await
        .unwrap();
    let purged: i64 = sqlx::query_scalar("SELECT purge_changes(interval '0')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(purged, 0);
    let (superuser, create_role, create_db, bypass_rls, owns_audit): (
        bool,
        bool,
        bool,
        bool,
        bool,
    ) = sqlx::query_as(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, \
                    pg_has_role(current_user, (SELECT tableowner FROM pg_tables \
                                               WHERE tablename = 'audit_events'), 'MEMBER') \
               FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!(superuser || create_role || create_db || bypass_rls || owns_audit));
    conn.close().await.unwrap();
    assert_eq!(app.count("audit_events").await, audit_events + 1);
    assert_eq!(app.count("changes").await, changes);
    assert_eq!(app.count("observer_corrections").await, corrections);
    drop_role(&pool, &role).await;
}

#[sqlx::test(migrations = false)]
async fn serving_without_migrating_refuses_a_database_that_migrate_has_not_prepared(pool: PgPool) {
    let url = superuser_url(&database_name(&pool), "");
    let env = [("DATABASE_URL", url.as_str()), ("DB_STARTUP_TIMEOUT", "1s")];
    // The flag, and the environment variable a Deployment sets.
    for (args, migrate) in [
        (&["serve", "--no-migrate"][..], "true"),
        (&["serve"], "false"),
    ] {
        let with_migrate = [env[0], env[1], ("MIGRATE", migrate)];
        let (status, log) = binary::run(args, &with_migrate).await;
        assert!(!status.success(), "{args:?} MIGRATE={migrate}");
        assert!(log.contains("run `observer-registry migrate`"), "{log}");
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(tables, 0, "{args:?} MIGRATE={migrate} ran DDL");
    }

    // `migrate` prepares it, grants included, and exits.
    let (status, log) = binary::run(&["migrate"], &env).await;
    assert!(status.success(), "{log}");
    let (insert, update, delete_observers): (bool, bool, bool) = sqlx::query_as(
        "SELECT has_table_privilege('observer_registry_runtime', 'audit_events', 'INSERT'), \
                has_table_privilege('observer_registry_runtime', 'audit_events', 'UPDATE'), \
                has_table_privilege('observer_registry_runtime', 'observers', 'DELETE')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(insert && !update && delete_observers);
}

/// A proxy in front of PostgreSQL that records the database each connection asks for in its
/// startup message (connections without TLS: `sslmode=disable`).
struct StartupRecorder {
    addr: std::net::SocketAddr,
    databases: Arc<Mutex<Vec<String>>>,
}

impl StartupRecorder {
    async fn start() -> StartupRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let databases: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = databases.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let length = client.read_u32().await.unwrap();
                    let mut body = vec![0; length as usize - 4];
                    client.read_exact(&mut body).await.unwrap();
                    // Protocol version, then NUL-terminated key and value pairs.
                    let fields: Vec<&[u8]> = body[4..].split(|b| *b == 0).collect();
                    let database = fields
                        .chunks(2)
                        .find(|pair| pair[0] == b"database")
                        .map(|pair| String::from_utf8_lossy(pair[1]).into_owned())
                        .unwrap_or_else(|| "(the user's name)".to_owned());
                    recorded.lock().unwrap().push(database);
                    let mut server = TcpStream::connect("127.0.0.1:5432").await.unwrap();
                    server.write_u32(length).await.unwrap();
                    server.write_all(&body).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        StartupRecorder { addr, databases }
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:postgres@{}/{database}?sslmode=disable",
            self.addr
        )
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.databases.lock().unwrap())
    }
}

#[sqlx::test]
async fn with_its_database_in_place_the_service_never_connects_to_the_maintenance_database(
    pool: PgPool,
) {
    let database = database_name(&pool);
    let recorder = StartupRecorder::start().await;
    let url = recorder.url(&database);

    let (status, log) = binary::run(&["migrate"], &[("DATABASE_URL", &url)]).await;
    assert!(status.success(), "{log}");
    let binary = Binary::start(&["serve"], &[("DATABASE_URL", &url)]).await;
    let app = binary.app(pool.clone()).await;
    common::create_election(&app, "kz-2023").await;
    assert!(binary.stop().await.success());
    let visited = recorder.take();
    assert!(!visited.is_empty());
    assert!(visited.iter().all(|d| *d == database), "{visited:?}");

    // The recorder sees it when it happens: a database that is missing is created from there.
    // (Test databases' names are PostgreSQL's longest: a suffix would be cut off.)
    let fresh = format!("registry_fresh_{}", uuid::Uuid::new_v4().simple());
    let (status, log) = binary::run(&["migrate"], &[("DATABASE_URL", &recorder.url(&fresh))]).await;
    assert!(status.success(), "{log}");
    let visited = recorder.take();
    assert!(visited.contains(&"postgres".to_owned()), "{visited:?}");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE \"{fresh}\" WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .unwrap();
}

/// The CA of the local cluster's certificate (`.ci/postgres-tls`).
fn cluster_ca() -> PathBuf {
    let path = std::env::var_os("OBSERVER_REGISTRY_PG_CA").map_or_else(
        || "/etc/observer-registry/postgres-ca.crt".into(),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "{} is missing: run .ci/postgres-tls (as .ci/run does) to give the local PostgreSQL \
         a certificate of its own",
        path.display()
    );
    path
}

/// Whether every connection of the service to `database` is encrypted, and how many there are.
async fn service_connections_over_tls(pool: &PgPool, database: &str) -> (i64, bool) {
    sqlx::query_as(
        "SELECT count(*), coalesce(bool_and(s.ssl), false) \
           FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
          WHERE a.datname = $1 AND a.application_name = 'observer-registry'",
    )
    .bind(database)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn the_service_speaks_tls_to_postgresql_under_require_and_verify_full(pool: PgPool) {
    let database = database_name(&pool);
    let ca = cluster_ca();
    for query in [
        "sslmode=require".to_owned(),
        format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    ] {
        let url = superuser_url(&database, &query);
        let binary = Binary::start(&["serve", "--no-migrate"], &[("DATABASE_URL", &url)]).await;
        let app = binary.app(pool.clone()).await;
        app.wait_for_health("", common::SERVING).await;
        common::create_election(&app, &format!("e-{}", query.len())).await;
        let (connections, all_tls) = service_connections_over_tls(&pool, &database).await;
        assert!(
            connections >= 2 && all_tls,
            "{query}: {connections} {all_tls}"
        );
        assert!(binary.stop().await.success());
    }
}

#[sqlx::test]
async fn a_postgresql_certificate_from_another_root_is_refused_naming_tls(pool: PgPool) {
    let database = database_name(&pool);
    let dir = std::env::temp_dir().join(format!("registry-pg-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("other-ca.crt");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&wrong, params.self_signed(&key).unwrap().pem()).unwrap();

    // `require` with a root certificate verifies the chain too, as libpq does.
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = superuser_url(
            &database,
            &format!("sslmode={mode}&sslrootcert={}", wrong.display()),
        );
        let env = [("DATABASE_URL", url.as_str()), ("DB_STARTUP_TIMEOUT", "1s")];
        let (status, log) = binary::run(&["serve", "--no-migrate"], &env).await;
        assert!(!status.success(), "{mode}: {log}");
        assert!(log.contains("database not ready"), "{mode}: {log}");
        assert!(
            log.contains("TLS") && log.contains("UnknownIssuer"),
            "{mode}: {log}"
        );
        assert!(!log.contains("serving gRPC"), "{mode}: {log}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[sqlx::test]
async fn the_service_keeps_every_connection_within_db_pool_size_under_load(pool: PgPool) {
    let database = database_name(&pool);
    let url = superuser_url(&database, "sslmode=disable");
    const BUDGET: i64 = 7;
    let binary = Binary::start(
        &["serve", "--no-migrate"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("DB_POOL_SIZE", &BUDGET.to_string()),
            ("POINT_READ_BATCHES", "2"),
            ("MAX_CONCURRENT_REQUESTS", "256"),
        ],
    )
    .await;
    let app = Arc::new(binary.app(pool.clone()).await);
    registry::open_election(&app, "kz-2023").await;
    let parent = "elections/kz-2023";
    for i in 0..8 {
        registry::create_observer(
            &app,
            parent,
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
    // A watch (the change feed's LISTEN), health checks, point reads and writes, all at once.
    let mut feed = app
        .observers()
        .watch_observers(pb::WatchObserversRequest {
            parent: parent.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for worker in 0..48 {
        let (app, stop) = (app.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("{parent}/observers/obs-{}", (worker + round) % 8);
                let _ = match worker % 3 {
                    0 => registry::update_observer(
                        &app,
                        pb::Observer {
                            name,
                            deployment_region: format!("region {round}"),
                            ..Default::default()
                        },
                        &["deployment_region"],
                    )
                    .await
                    .map(|_| ()),
                    1 => registry::try_get_observer(&app, &name).await.map(|_| ()),
                    _ => app
                        .observers()
                        .list_observers(pb::ListObserversRequest {
                            parent: parent.into(),
                            ..Default::default()
                        })
                        .await
                        .map(|_| ()),
                };
                round += 1;
            }
        }));
    }
    let mut most = 0;
    for _ in 0..150 {
        let now: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
              WHERE datname = $1 AND application_name = 'observer-registry'",
        )
        .bind(&database)
        .fetch_one(&pool)
        .await
        .unwrap();
        most = most.max(now);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in load {
        worker.await.unwrap();
    }
    assert!(feed.next().await.is_some());
    drop(feed);
    // Every kind of connection was open at once, and never more than the budget.
    assert!(most <= BUDGET, "{most} connections, DB_POOL_SIZE={BUDGET}");
    assert!(
        most >= BUDGET - 1,
        "only {most} connections: the load did not reach the budget"
    );
    assert!(binary.stop().await.success());
}

#[sqlx::test]
async fn a_value_postgresql_refuses_is_invalid_argument_not_internal(pool: PgPool) {
    let app = common::spawn_app(pool).await;
    registry::create_organizations(&app).await;
    // A NUL character reaches PostgreSQL in a filter literal, which it cannot store in text
    // (SQLSTATE 22021).
    let status = app
        .organizations()
        .list_organizations(pb::ListOrganizationsRequest {
            filter: "display_name = \"Shanghai\u{0}\"".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(!status.message().contains("0x00"), "{status:?}");
    assert!(!status.message().contains("UTF8"), "{status:?}");
    // It was PostgreSQL that refused it: the filter's parser would have answered
    // INVALID_FILTER, naming the field.
    common::assert_error(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(common::violated_fields(&status).is_empty(), "{status:?}");
    assert!(status.message().contains("not representable"), "{status:?}");
}
