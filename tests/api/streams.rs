//! Streams under control: a watch follows its caller through reloads of the agencies file,
//! ends at its maximum age (and the shipped client resumes it), each agency has a limited
//! number of watches, watchers share their reads, and health Watch and reflection streams
//! are bounded too.

use crate::common::{self, agencies, registry};

use std::collections::BTreeSet;
use std::time::Duration;

use agencies::{Agencies, Agency, render};
use common::*;
use observer_registry::client::Client;
use observer_registry::pb::v1 as pb;
use observer_registry::server::{Limits, ServeOptions};
use registry::*;
use sqlx::PgPool;
use tonic::Code;
use tonic::codec::Streaming;

const ELECTION: &str = "elections/kz-2023";

fn anonymous(app: &TestApp) -> Client {
    client_without_retries(app, None)
}

/// A server with these limits, anonymous callers, and an open election.
pub(crate) async fn spawn_with_limits(pool: PgPool, limits: Limits) -> TestApp {
    let options = ServeOptions {
        limits,
        ..test_options()
    };
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    open_election(&app, "kz-2023").await;
    app
}

async fn watch(
    client: &Client,
    resume_token: &str,
) -> Result<Streaming<pb::ObserverEvent>, tonic::Status> {
    client
        .observers()
        .watch_observers(pb::WatchObserversRequest {
            parent: ELECTION.into(),
            resume_token: resume_token.into(),
        })
        .await
        .map(|response| response.into_inner())
}

/// The next message of a raw stream, within 10 s.
async fn next(
    stream: &mut Streaming<pb::ObserverEvent>,
) -> Result<Option<pb::ObserverEvent>, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("nothing on the stream within 10 s")
}

fn with_personal_data(given_name: &str, document: &str) -> pb::Observer {
    pb::Observer {
        date_of_birth: "1968-04-12".into(),
        email: "ann.private@mail.example".into(),
        ..observer(given_name, "Private", "CN", "sco", document)
    }
}

/// Agencies that write (`writer`), and A and B who watch.
fn watching_agencies(a_roles: &[&str], b_roles: &[&str]) -> Vec<Agency> {
    vec![
        Agency::with_token("writer", &["admin", "registrar"]),
        Agency::with_token("agency-a", a_roles),
        Agency::with_token("agency-b", b_roles),
    ]
}

/// The same agencies (same tokens), with other roles, or without some.
fn changed(agencies: &[Agency], roles: &[(&str, Option<&[&str]>)]) -> Vec<Agency> {
    agencies
        .iter()
        .filter_map(
            |agency| match roles.iter().find(|(name, _)| *name == agency.name) {
                None => Some(agency.clone()),
                Some((_, None)) => None,
                Some((_, Some(roles))) => Some(Agency {
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                    ..agency.clone()
                }),
            },
        )
        .collect()
}

#[sqlx::test]
async fn a_watch_follows_its_agency_through_reloads_of_the_agencies_file(pool: PgPool) {
    let agencies = Agencies::new(
        "streams-reload",
        watching_agencies(&["personal-data-reader"], &["reader"]),
    );
    let options = agencies.options();
    let identities = options.identities.clone();
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    let writer = agencies.client(&app, "writer");
    writer
        .organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: "sco".into(),
            organization: Some(pb::Organization {
                display_name: "Shanghai Cooperation Organisation".into(),
                kind: pb::OrganizationKind::InternationalOrganization.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    writer
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Early parliamentary election")),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let mut a = watch(&agencies.client(&app, "agency-a"), "").await.unwrap();
    let mut b = watch(&agencies.client(&app, "agency-b"), "").await.unwrap();
    let register = |id: &'static str, document: &'static str| {
        let mut observers = writer.observers();
        async move {
            observers
                .create_observer(create_observer_request(
                    ELECTION,
                    id,
                    with_personal_data("Ann", document),
                ))
                .await
                .unwrap();
        }
    };
    let reload = |agencies_now: Vec<Agency>| {
        agencies.file.write(render(&agencies_now));
        identities.reload().unwrap();
    };

    register("one", "PD0000001").await;
    let event = next(&mut a).await.unwrap().unwrap().observer.unwrap();
    assert_eq!(
        event.travel_document_number, "PD0000001",
        "A reads personal data"
    );
    next(&mut b).await.unwrap().unwrap();

    // A loses `personal-data-reader`: its next event is masked as any reader's is.
    reload(changed(
        &agencies.agencies,
        &[("agency-a", Some(&["reader"]))],
    ));
    register("two", "PD0000002").await;
    let event = next(&mut a).await.unwrap().unwrap().observer.unwrap();
    assert_eq!(event.name, format!("{ELECTION}/observers/two"));
    assert_eq!(
        [
            event.travel_document_number,
            event.date_of_birth,
            event.email
        ],
        ["", "", ""],
        "A's event after the reload is masked"
    );
    next(&mut b).await.unwrap().unwrap();

    // B keeps its token but loses every role that may watch: PERMISSION_DENIED.
    reload(changed(
        &agencies.agencies,
        &[
            ("agency-a", Some(&["reader"])),
            ("agency-b", Some(&["registrar"])),
        ],
    ));
    let ended = next(&mut b).await.unwrap_err();
    assert_error(&ended, Code::PermissionDenied, "PERMISSION_DENIED");

    // A is removed: its stream ends UNAUTHENTICATED, without waiting for a change.
    reload(changed(&agencies.agencies, &[("agency-a", None)]));
    let ended = next(&mut a).await.unwrap_err();
    assert_error(&ended, Code::Unauthenticated, "UNAUTHENTICATED");
}

#[sqlx::test]
async fn a_watch_whose_token_now_names_another_agency_ends(pool: PgPool) {
    let agencies = Agencies::new("streams-token", watching_agencies(&["reader"], &["reader"]));
    let options = agencies.options();
    let identities = options.identities.clone();
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    let admin = agencies.client(&app, "writer");
    admin
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Early parliamentary election")),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let mut a = watch(&agencies.client(&app, "agency-a"), "").await.unwrap();

    // The same token, the same roles, under another agency's name: not the caller it was.
    let mut renamed = changed(&agencies.agencies, &[]);
    renamed[1].name = "agency-a-renamed".into();
    agencies.file.write(render(&renamed));
    identities.reload().unwrap();
    assert_error(
        &next(&mut a).await.unwrap_err(),
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}

#[sqlx::test]
async fn watches_beyond_an_agencys_limit_are_refused_until_one_closes(pool: PgPool) {
    let app = spawn_with_limits(
        pool,
        Limits {
            max_watches_per_agency: 2,
            ..Limits::default()
        },
    )
    .await;
    let client = anonymous(&app);
    let first = watch(&client, "").await.unwrap();
    let _second = watch(&client, "").await.unwrap();
    let refused = watch(&client, "").await.unwrap_err();
    assert_error(&refused, Code::ResourceExhausted, "WATCH_LIMIT");

    // Closing a stream (the client cancels it) frees its slot.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let _third = loop {
        match watch(&client, "").await {
            Ok(stream) => break stream,
            Err(status) => {
                assert_error(&status, Code::ResourceExhausted, "WATCH_LIMIT");
                assert!(std::time::Instant::now() < deadline, "no slot was freed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // And the new one took it (kept open here): the limit holds again.
    assert_error(
        &watch(&client, "").await.unwrap_err(),
        Code::ResourceExhausted,
        "WATCH_LIMIT",
    );
}

#[sqlx::test]
async fn a_stream_ends_at_its_maximum_age_and_the_client_resumes_it_without_loss(pool: PgPool) {
    let app = spawn_with_limits(
        pool,
        Limits {
            max_stream_age: Duration::from_millis(400),
            ..Limits::default()
        },
    )
    .await;
    let client = anonymous(&app);

    // A raw stream ends with UNAVAILABLE / STREAM_MAX_AGE, saying how to go on.
    let mut raw = watch(&client, "").await.unwrap();
    let ended = next(&mut raw).await.unwrap_err();
    assert_error(&ended, Code::Unavailable, "STREAM_MAX_AGE");
    assert!(ended.message().contains("resume_token"), "{ended:?}");

    // The shipped follower sees every change once, in order, across several cutoffs.
    let mut feed = client.follow_observers(ELECTION, "");
    feed.open().await.unwrap();
    let writes = 24;
    let writer = register_slowly(&app, writes, Duration::from_millis(75));
    let mut seen = Vec::new();
    while seen.len() < writes {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("no event within 10 s")
            .unwrap();
        seen.push(event.observer.unwrap().name);
    }
    writer.await.unwrap();
    assert_eq!(seen, slowly_registered(writes));
    // Nothing more: no change was sent twice.
    let more = tokio::time::timeout(Duration::from_millis(600), feed.next()).await;
    assert!(more.is_err(), "an event after the last write: {more:?}");
}

/// Registers `count` observers `o00`, `o01`…, `pause` apart, on the server's own channel.
pub(crate) fn register_slowly(
    app: &TestApp,
    count: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<()> {
    let observers = app.observers();
    tokio::spawn(async move {
        for i in 0..count {
            observers
                .clone()
                .create_observer(create_observer_request(
                    ELECTION,
                    &format!("o{i:02}"),
                    observer(
                        "Ann",
                        &format!("Writer {i}"),
                        "CN",
                        "sco",
                        &format!("AG{i:07}"),
                    ),
                ))
                .await
                .unwrap();
            tokio::time::sleep(pause).await;
        }
    })
}

/// The names of the observers [`register_slowly`] registers, in its order.
pub(crate) fn slowly_registered(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{ELECTION}/observers/o{i:02}"))
        .collect()
}

/// The server's count of change-feed reads.
fn watch_reads(app: &TestApp) -> u64 {
    app.metrics_text()
        .lines()
        .find_map(|line| line.strip_prefix("observer_registry_watch_reads_total "))
        .expect("the watch reads counter")
        .trim()
        .parse()
        .unwrap()
}

#[sqlx::test]
async fn watchers_of_one_election_share_their_reads(pool: PgPool) {
    let app = spawn_with_limits(pool, Limits::default()).await;
    let client = anonymous(&app);
    let watchers = 20;
    let mut streams = Vec::new();
    for _ in 0..watchers {
        streams.push(watch(&client, "").await.unwrap());
    }
    // A first change, so that every watcher has read since it opened.
    create_observer(
        &app,
        ELECTION,
        "first",
        observer("Ann", "First", "CN", "sco", "SH0000001"),
    )
    .await;
    let mut first_token = String::new();
    for stream in &mut streams {
        first_token = next(stream).await.unwrap().unwrap().resume_token;
    }

    let before = watch_reads(&app);
    create_observer(
        &app,
        ELECTION,
        "second",
        observer("Bo", "Second", "CN", "sco", "SH0000002"),
    )
    .await;
    let mut names = BTreeSet::new();
    for stream in &mut streams {
        names.insert(next(stream).await.unwrap().unwrap().observer.unwrap().name);
    }
    let reads = watch_reads(&app) - before;
    assert_eq!(names.len(), 1, "every watcher got the same change");
    assert!(
        reads <= 3,
        "{watchers} watchers took {reads} reads for one change"
    );

    // A watcher behind the others (resumed after the first change) reads the table at its
    // own position, and misses nothing, while the others keep sharing.
    let mut behind = watch(&client, &first_token).await.unwrap();
    create_observer(
        &app,
        ELECTION,
        "third",
        observer("Cy", "Third", "CN", "sco", "SH0000003"),
    )
    .await;
    for id in ["second", "third"] {
        assert_eq!(
            next(&mut behind)
                .await
                .unwrap()
                .unwrap()
                .observer
                .unwrap()
                .name,
            format!("{ELECTION}/observers/{id}")
        );
    }
    for stream in &mut streams {
        assert_eq!(
            next(stream).await.unwrap().unwrap().observer.unwrap().name,
            format!("{ELECTION}/observers/third")
        );
    }
}

#[sqlx::test]
async fn health_watch_and_reflection_streams_are_capped_and_end_at_their_maximum_age(pool: PgPool) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    let options = ServeOptions {
        limits: Limits {
            max_infra_streams: 2,
            max_stream_age: Duration::from_secs(1),
            ..Limits::default()
        },
        ..test_options()
    };
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    let liveness = || HealthCheckRequest {
        service: "liveness".into(),
    };
    let mut health = app.health().watch(liveness()).await.unwrap().into_inner();
    assert_eq!(health.message().await.unwrap().unwrap().status, SERVING);
    let (requests, requested) = tokio::sync::mpsc::channel(1);
    requests
        .send(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        })
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(app.channel.clone())
        .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(requested))
        .await
        .unwrap()
        .into_inner();
    reflection.message().await.unwrap().unwrap();

    // A third stream is refused; a health Check is not a stream and still answers.
    let refused = app.health().watch(liveness()).await.unwrap_err();
    assert_error(&refused, Code::ResourceExhausted, "WATCH_LIMIT");
    app.health().check(liveness()).await.unwrap();

    // Both end at their maximum age, and their places are free again.
    let ended = tokio::time::timeout(Duration::from_secs(10), health.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_error(&ended, Code::Unavailable, "STREAM_MAX_AGE");
    let ended = tokio::time::timeout(Duration::from_secs(10), reflection.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_error(&ended, Code::Unavailable, "STREAM_MAX_AGE");
    drop(requests);
    wait_until(Duration::from_secs(10), "a free health Watch place", || {
        let mut health = app.health();
        async move { health.watch(liveness()).await.is_ok() }
    })
    .await;
}

#[sqlx::test]
async fn one_peer_cannot_take_every_health_watch_and_reflection_place(pool: PgPool) {
    use tonic_health::pb::HealthCheckRequest;

    let options = ServeOptions {
        limits: Limits {
            max_infra_streams: 4,
            max_infra_streams_per_peer: 2,
            ..Limits::default()
        },
        ..test_options()
    };
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    let watch = || {
        let mut health = app.health();
        async move {
            health
                .watch(HealthCheckRequest {
                    service: "liveness".into(),
                })
                .await
        }
    };
    let first = watch().await.unwrap().into_inner();
    let mut second = watch().await.unwrap().into_inner();
    assert_eq!(second.message().await.unwrap().unwrap().status, SERVING);

    // The server has places left, but not for this address.
    let refused = watch().await.unwrap_err();
    assert_error(&refused, Code::ResourceExhausted, "WATCH_LIMIT");
    assert!(refused.message().contains("this address"), "{refused:?}");

    // A place of this peer's frees with its stream.
    drop(first);
    wait_until(
        Duration::from_secs(10),
        "a free place for this address",
        || {
            let attempt = watch();
            async move { attempt.await.is_ok() }
        },
    )
    .await;
}

#[sqlx::test]
async fn an_aged_connection_is_closed_after_its_grace_even_with_a_stream_open(pool: PgPool) {
    let app = spawn_with_limits(
        pool,
        Limits {
            max_connection_age: Duration::from_millis(300),
            max_connection_age_grace: Duration::from_millis(300),
            ..Limits::default()
        },
    )
    .await;
    let started = std::time::Instant::now();
    let mut stream = watch(&anonymous(&app), "").await.unwrap();
    // No change comes: only the connection's end can end the stream.
    let ended = next(&mut stream).await;
    assert!(
        !matches!(ended, Ok(Some(_))),
        "the stream went on: {ended:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the connection outlived its age and grace: {:?}",
        started.elapsed()
    );
}
