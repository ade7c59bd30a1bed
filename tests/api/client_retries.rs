//! The shipped client's options as a partner meets them, against the real service behind a
//! proxy that a test can cut or make lose answers: reads repeat until the service is back,
//! creates repeat under a request id the client fills in and land once, other writes run
//! once, waits back off on RESOURCE_EXHAUSTED and never pass the call's deadline, and the
//! partner's trace goes with every call.

use std::time::{Duration, Instant};

use observer_registry::client::{Client, ClientOptions, RetryPolicy};
use observer_registry::pb::v1 as pb;
use observer_registry::server::{Limits, ServeOptions};
use sqlx::PgPool;
use tonic::Code;

use crate::common::proxy::Proxy;
use crate::common::registry::*;
use crate::common::*;

const ELECTION: &str = "elections/kz-2023";

/// A client of the service behind `proxy`, connecting lazily (the proxy may be cut).
pub(crate) async fn client_through(proxy: &Proxy, options: ClientOptions) -> Client {
    let options = ClientOptions {
        lazy_connect: true,
        ..options
    };
    Client::connect(format!("http://{}", proxy.addr), options)
        .await
        .unwrap()
}

pub(crate) fn get_election() -> pb::GetElectionRequest {
    pb::GetElectionRequest {
        name: ELECTION.into(),
    }
}

/// Restores `proxy` after `delay`, in the background.
fn restore_after(proxy: &std::sync::Arc<Proxy>, delay: Duration) {
    let proxy = proxy.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        proxy.restore();
    });
}

#[sqlx::test]
async fn a_read_is_repeated_until_the_service_is_reachable_again(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let proxy = std::sync::Arc::new(Proxy::start(app.addr).await);
    let client = client_through(&proxy, ClientOptions::default()).await;

    proxy.cut();
    restore_after(&proxy, Duration::from_millis(400));
    let election = client
        .elections()
        .get_election(get_election())
        .await
        .expect("the read is repeated until the proxy is back")
        .into_inner();
    assert_eq!(election.name, ELECTION);
    assert!(proxy.connections() >= 2, "more than one attempt");

    // Without retries the same outage is the caller's to handle.
    let once = client_through(
        &proxy,
        ClientOptions {
            retry: RetryPolicy::never(),
            ..Default::default()
        },
    )
    .await;
    proxy.cut();
    let status = once
        .elections()
        .get_election(get_election())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[sqlx::test]
async fn a_create_whose_answer_was_lost_is_repeated_under_the_request_id_the_client_filled_in(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let proxy = Proxy::start(app.addr).await;
    let client = client_through(&proxy, ClientOptions::default()).await;

    // The service registers the observer, but the answer never reaches the client; the
    // caller left `request_id` empty.
    proxy.lose_answers_of_next_connection();
    let request = create_observer_request(
        ELECTION,
        "zhou-wei",
        observer("Wei", "Zhou", "CN", "sco", "E12345678"),
    );
    let created = client
        .observers()
        .create_observer(request.clone())
        .await
        .expect("the repeated create returns the first result")
        .into_inner();
    assert_eq!(created.name, format!("{ELECTION}/observers/zhou-wei"));
    assert!(proxy.connections() >= 2, "the first answer was lost");

    // Created once, and the audit shows the id the client generated for both attempts.
    assert_eq!(app.count("observers").await, 1);
    let request_ids: Vec<String> = sqlx::query_scalar(
        "SELECT request_id FROM audit_events WHERE method LIKE '%CreateObserver'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(request_ids.len(), 1, "{request_ids:?}");
    assert!(
        uuid::Uuid::parse_str(&request_ids[0]).is_ok(),
        "{request_ids:?}"
    );

    // A create sent once with the caller's own request id keeps it.
    let own_id = uuid::Uuid::new_v4().to_string();
    client
        .observers()
        .create_observer(pb::CreateObserverRequest {
            request_id: own_id.clone(),
            ..create_observer_request(
                ELECTION,
                "li-na",
                observer("Na", "Li", "CN", "sco", "E87654321"),
            )
        })
        .await
        .unwrap();
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE request_id = $1")
            .bind(&own_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 1);
}

#[sqlx::test]
async fn a_write_without_a_request_id_is_never_repeated(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_observer(
        &app,
        ELECTION,
        "zhou-wei",
        observer("Wei", "Zhou", "CN", "sco", "E12345678"),
    )
    .await;
    let proxy = Proxy::start(app.addr).await;
    let client = client_through(&proxy, ClientOptions::default()).await;
    client
        .elections()
        .get_election(get_election())
        .await
        .unwrap();
    let connections = proxy.connections();

    // An accreditation has no request id: after a broken connection the client cannot know
    // whether it happened, so it says so instead of accrediting twice.
    proxy.cut();
    let started = Instant::now();
    let status = client
        .observers()
        .accredit_observer(pb::AccreditObserverRequest {
            name: format!("{ELECTION}/observers/zhou-wei"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(started.elapsed() < Duration::from_millis(500), "no backoff");
    assert!(
        proxy.connections() <= connections + 1,
        "one attempt at most: {} connections after {connections}",
        proxy.connections()
    );
}

#[sqlx::test]
async fn retries_stop_at_the_calls_deadline(pool: PgPool) {
    let app = spawn_app(pool).await;
    let proxy = Proxy::start(app.addr).await;
    let client = client_through(
        &proxy,
        ClientOptions {
            timeout: Some(Duration::from_millis(600)),
            retry: RetryPolicy {
                max_attempts: 100,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    proxy.cut();

    // The default deadline of the options.
    let started = Instant::now();
    let status = client
        .elections()
        .get_election(get_election())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{status:?}"
    );
    assert!(elapsed < Duration::from_millis(1_200), "{elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(100),
        "it did retry: {elapsed:?}"
    );

    // A deadline of the call's own wins over the default.
    let mut request = tonic::Request::new(get_election());
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    client.elections().get_election(request).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(600));
}

#[sqlx::test]
async fn a_watch_refused_for_the_agencys_limit_backs_off_until_a_slot_is_free(pool: PgPool) {
    let options = ServeOptions {
        limits: Limits {
            max_watches_per_agency: 1,
            ..Limits::default()
        },
        ..test_options()
    };
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    open_election(&app, "kz-2023").await;
    let client = Client::from_channel(app.channel.clone(), None).unwrap();
    let watch = || {
        let mut observers = client.observers();
        async move {
            observers
                .watch_observers(pb::WatchObserversRequest {
                    parent: ELECTION.into(),
                    resume_token: String::new(),
                })
                .await
        }
    };
    let first = watch().await.unwrap();

    // RESOURCE_EXHAUSTED is waited out: the second watch opens once the first closes.
    let closer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(first);
    });
    let started = Instant::now();
    let second = watch().await.expect("opened after backing off");
    assert!(started.elapsed() >= Duration::from_millis(250));
    closer.await.unwrap();

    // With the slot held and retries off, the refusal comes at once.
    let once = client_without_retries(&app, None);
    let status = once
        .observers()
        .watch_observers(pb::WatchObserversRequest {
            parent: ELECTION.into(),
            resume_token: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::ResourceExhausted, "WATCH_LIMIT");
    drop(second);
}
