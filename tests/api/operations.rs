//! What operators rely on: health that follows the database, reflection for grpcurl, and a
//! graceful shutdown of the real binary on SIGTERM.

use crate::common::{self, proxy};

use std::process::Stdio;
use std::time::Duration;

use common::*;
use observer_registry::pb::v1 as pb;
use proxy::Proxy;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const ELECTIONS: &str = "observer_registry.v1.ElectionService";

#[sqlx::test]
async fn health_follows_the_database_and_recovers_without_a_restart(pool: PgPool) {
    let options = pool.connect_options().as_ref().clone();
    let proxy = Proxy::start(format!("127.0.0.1:{}", options.get_port()).parse().unwrap()).await;
    let server_pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(options.host("127.0.0.1").port(proxy.addr.port()));
    let app = spawn_app_with(pool, server_pool).await;
    create_election(&app, "kz-2023").await;
    app.wait_for_health("", SERVING).await;
    app.wait_for_health(ELECTIONS, SERVING).await;

    proxy.cut();
    app.wait_for_health("", NOT_SERVING).await;
    app.wait_for_health(ELECTIONS, NOT_SERVING).await;
    app.wait_for_health("liveness", SERVING).await;
    // Calls fail fast while the database is known to be away, not after a pool timeout.
    let started = std::time::Instant::now();
    let error = app
        .elections()
        .get_election(pb::GetElectionRequest {
            name: "elections/kz-2023".into(),
        })
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "UNAVAILABLE took {:?}",
        started.elapsed()
    );
    assert_error(&error, Code::Unavailable, "UNAVAILABLE");
    assert!(
        !error.message().contains("127.0.0.1"),
        "driver text leaked: {error:?}"
    );

    proxy.restore();
    app.wait_for_health("", SERVING).await;
    app.wait_for_health(ELECTIONS, SERVING).await;
    let election = app
        .elections()
        .get_election(pb::GetElectionRequest {
            name: "elections/kz-2023".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(election.name, "elections/kz-2023");
}

/// The next status a health watch reports, within 10 s.
async fn next_status(watch: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>) -> i32 {
    let next = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("no health status within 10 s");
    next.unwrap().unwrap().status
}

#[sqlx::test]
async fn shutdown_turns_health_not_serving(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.wait_for_health("", SERVING).await;
    let mut watch = app
        .health()
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_status(&mut watch).await, SERVING);
    let addr = app.addr;
    let stopping = tokio::spawn(app.shutdown());
    assert_eq!(next_status(&mut watch).await, NOT_SERVING);
    drop(watch);
    stopping.await.unwrap().unwrap();
    assert!(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .is_err()
    );
}

async fn reflect(channel: Channel, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
}

#[sqlx::test]
async fn reflection_lists_the_served_services_and_knows_the_error_types(pool: PgPool) {
    let app = spawn_app(pool).await;
    let MessageResponse::ListServicesResponse(list) = reflect(
        app.channel.clone(),
        MessageRequest::ListServices(String::new()),
    )
    .await
    else {
        panic!("not a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for served in [
        ELECTIONS,
        "observer_registry.v1.OrganizationService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == served),
            "{served} missing from {names:?}"
        );
    }
    for served in [
        "observer_registry.v1.DelegationService",
        "observer_registry.v1.ObserverService",
        "observer_registry.v1.MeetingService",
        "observer_registry.v1.InvitationService",
        "observer_registry.v1.AuditService",
    ] {
        assert!(
            names.iter().any(|n| n == served),
            "{served} missing from {names:?}"
        );
    }
    for symbol in [
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
        "observer_registry.v1.Election",
    ] {
        let response = reflect(
            app.channel.clone(),
            MessageRequest::FileContainingSymbol(symbol.into()),
        )
        .await;
        assert!(
            matches!(response, MessageResponse::FileDescriptorResponse(_)),
            "{symbol} is not known to reflection: {response:?}"
        );
    }
    // grpcurl 1.8 (the pip wheel) speaks only v1alpha.
    let mut v1alpha =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            app.channel.clone(),
        );
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut responses = v1alpha
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    assert!(responses.next().await.unwrap().is_ok());
}

/// Runs the real binary on a free port against the test's database, returning the child and
/// the address it reports.
async fn start_binary(database_url: &str) -> (tokio::process::Child, String) {
    start_binary_with(database_url, &[]).await
}

pub(crate) async fn start_binary_with(
    database_url: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let (child, address, _) = start_binary_logging(database_url, env).await;
    (child, address)
}

/// Like [`start_binary_with`], and hands over every JSON log line written after serving.
pub(crate) async fn start_binary_logging(
    database_url: &str,
    env: &[(&str, &str)],
) -> (
    tokio::process::Child,
    String,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_observer-registry"))
        .envs(env.iter().copied())
        .env("DATABASE_URL", database_url)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("SHUTDOWN_GRACE_PERIOD", "20s")
        .env("HEALTH_CHECK_INTERVAL", "100ms")
        // Elections of 2023 are past their retention by the system clock: the tests' data
        // stays as they made it (tests/api/retention.rs opts in with a clock of its own).
        .env("PERSONAL_DATA_ERASE_INTERVAL", "0s")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the binary exited before serving");
            let log: serde_json::Value = serde_json::from_str(&line).unwrap();
            if log["message"] == "serving gRPC" {
                break log["address"].as_str().unwrap().to_owned();
            }
        }
    });
    let address = serving.await.expect("the binary did not serve within 30 s");
    // Keep draining the log so the child never blocks on a full pipe.
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(log) = serde_json::from_str(&line) {
                let _ = sender.send(log);
            }
        }
    });
    (child, address, receiver)
}

#[sqlx::test]
async fn sigterm_finishes_calls_in_flight_refuses_new_ones_and_exits_zero(pool: PgPool) {
    let options = pool.connect_options();
    let database = options.get_database().unwrap();
    let url = format!(
        "postgres://postgres:postgres@127.0.0.1:{}/{database}",
        options.get_port()
    );
    let (mut child, address) = start_binary(&url).await;
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut elections = pb::election_service_client::ElectionServiceClient::new(channel.clone());
    elections
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Early parliamentary election")),
            request_id: String::new(),
        })
        .await
        .unwrap();

    // Hold the row so that an update stays in flight until we let it go.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM elections WHERE id = 'kz-2023' FOR UPDATE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let in_flight = tokio::spawn(async move {
        elections
            .update_election(pb::UpdateElectionRequest {
                election: Some(pb::Election {
                    name: "elections/kz-2023".into(),
                    description: "written during shutdown".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
            })
            .await
    });
    wait_until(
        Duration::from_secs(10),
        "the update to wait for the lock",
        || async {
            let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'observer-registry' \
             AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
            waiting > 0
        },
    )
    .await;
    let mut watch = HealthClient::new(channel.clone())
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_status(&mut watch).await, SERVING);

    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    assert_eq!(next_status(&mut watch).await, NOT_SERVING);
    drop(watch);
    // From the moment shutdown starts, a new caller is turned away: the listener closes, and
    // a connection that slipped in just before gets GOAWAY. Allow the signal a moment to land.
    let mut refused = false;
    for _ in 0..40 {
        let call = async {
            let channel = Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .connect()
                .await?;
            pb::election_service_client::ElectionServiceClient::new(channel)
                .get_election(pb::GetElectionRequest {
                    name: "elections/kz-2023".into(),
                })
                .await?;
            anyhow::Ok(())
        };
        if call.await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "new calls were still served during shutdown");

    lock.commit().await.unwrap();
    let updated = in_flight.await.unwrap().unwrap().into_inner();
    assert_eq!(updated.description, "written during shutdown");

    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let stored: String =
        sqlx::query_scalar("SELECT description FROM elections WHERE id = 'kz-2023'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, "written during shutdown");
}

/// What one load client saw until `stop`.
#[derive(Default)]
struct LoadOutcome {
    /// Names of the organizations the server acknowledged.
    acknowledged: Vec<String>,
    /// Codes of the calls the server answered with an error.
    refused: Vec<Code>,
    /// Calls whose connection closed before any answer: one the server accepted an instant
    /// before it stopped accepting (or still in the kernel's backlog when the listener
    /// closed). tonic reports such a broken transport as UNKNOWN with the I/O error as the
    /// status's source, never as an answer from the server.
    connection_lost: usize,
}

/// Organizations created by one load client until `stop`, each call on a new connection.
async fn create_organizations_until(
    address: String,
    client: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> LoadOutcome {
    let mut outcome = LoadOutcome::default();
    let mut i = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        i += 1;
        let call = async {
            let channel = Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .connect()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            pb::organization_service_client::OrganizationServiceClient::new(channel)
                .create_organization(pb::CreateOrganizationRequest {
                    organization_id: format!("load-{client}-{i}"),
                    organization: Some(pb::Organization {
                        display_name: format!("Load {client}/{i}"),
                        kind: pb::OrganizationKind::InternationalOrganization.into(),
                        country: String::new(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
        };
        match call.await {
            Ok(created) => outcome.acknowledged.push(created.into_inner().name),
            Err(status) => {
                if std::error::Error::source(&status).is_some() {
                    outcome.connection_lost += 1;
                } else {
                    outcome.refused.push(status.code());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    outcome
}

#[sqlx::test]
async fn sigterm_under_load_completes_or_refuses_every_call_and_loses_nothing(pool: PgPool) {
    let options = pool.connect_options();
    let url = format!(
        "postgres://postgres:postgres@127.0.0.1:{}/{}",
        options.get_port(),
        options.get_database().unwrap()
    );
    let (mut child, address) = start_binary(&url).await;
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut elections = pb::election_service_client::ElectionServiceClient::new(channel.clone());
    elections
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Early parliamentary election")),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM elections WHERE id = 'kz-2023' FOR UPDATE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let held = tokio::spawn(async move {
        elections
            .update_election(pb::UpdateElectionRequest {
                election: Some(pb::Election {
                    name: "elections/kz-2023".into(),
                    description: "finished during shutdown".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
            })
            .await
    });
    let mut watch = HealthClient::new(channel.clone())
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_status(&mut watch).await, SERVING);

    // Eight clients create organizations as fast as they can, each call on a new connection.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|client| {
            tokio::spawn(create_organizations_until(
                address.clone(),
                client,
                stop.clone(),
            ))
        })
        .collect();
    wait_until(Duration::from_secs(10), "the load to be served", || async {
        let created: i64 = sqlx::query_scalar("SELECT count(*) FROM organizations")
            .fetch_one(&pool)
            .await
            .unwrap();
        created >= 8
    })
    .await;

    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let not_serving = tokio::time::timeout(Duration::from_secs(1), watch.next())
        .await
        .expect("health did not change at once");
    assert_eq!(not_serving.unwrap().unwrap().status, NOT_SERVING);
    drop(watch);
    // The load goes on against the stopping server until it turns new calls away.
    wait_until(
        Duration::from_secs(10),
        "new calls to be refused",
        || async {
            let channel = match Channel::from_shared(format!("http://{address}"))
                .unwrap()
                .connect()
                .await
            {
                Ok(channel) => channel,
                Err(_) => return true,
            };
            pb::election_service_client::ElectionServiceClient::new(channel)
                .get_election(pb::GetElectionRequest {
                    name: "elections/kz-2023".into(),
                })
                .await
                .is_err_and(|status| status.code() == Code::Unavailable)
        },
    )
    .await;
    lock.commit().await.unwrap();
    let updated = held.await.unwrap().unwrap().into_inner();
    assert_eq!(updated.description, "finished during shutdown");

    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("no exit within the grace period")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);

    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    let mut connections_lost = 0;
    for client in load {
        let outcome = client.await.unwrap();
        acknowledged.extend(outcome.acknowledged);
        refused.extend(outcome.refused);
        connections_lost += outcome.connection_lost;
    }
    // Only the instant the listener closes can break a connection, and each client holds
    // one connection at a time: every other call gets an answer.
    assert!(
        connections_lost <= 8,
        "{connections_lost} connections closed without an answer"
    );
    assert!(
        !acknowledged.is_empty(),
        "no call was served before SIGTERM"
    );
    assert!(!refused.is_empty(), "no call was refused after SIGTERM");
    assert!(
        refused.iter().all(|code| *code == Code::Unavailable),
        "refusals other than UNAVAILABLE: {refused:?}"
    );
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT 'organizations/' || id FROM organizations ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    acknowledged.sort();
    assert_eq!(
        stored, acknowledged,
        "acknowledged and stored organizations differ"
    );
}
