//! The client's default transport (HTTP/2 driven by h2 directly) keeps what partners relied
//! on under tonic's `Channel`: a deadline ends a call the server never answers, a restarted
//! server is reconnected to, calls spread over several addresses and skip one that is down,
//! and streams and large answers come through.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use observer_registry::client::{Client, ClientOptions, RetryPolicy, Transport};
use observer_registry::pb::v1 as pb;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;

use crate::client_retries::get_election;
use crate::common::registry::*;
use crate::common::*;

const ELECTION: &str = "elections/kz-2023";

/// The service on `listener`'s address, on the test's runtime, until `stop` is sent.
struct Instance {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Instance {
    async fn start_at(addr: SocketAddr, pool: &PgPool) -> Instance {
        let listener = TcpListener::bind(addr).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(observer_registry::server::serve(
            listener,
            pool.clone(),
            test_options(),
            async {
                let _ = stopped.await;
            },
        ));
        Instance { stop, task }
    }

    /// Graceful shutdown: the server sends GOAWAY and closes its connections.
    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// GetElection calls `app` answered with OK, from its metrics.
fn get_elections_answered(app: &TestApp) -> u64 {
    app.metrics_text()
        .lines()
        .filter(|line| {
            line.starts_with("grpc_server_handled_total{")
                && line.contains("grpc_method=\"GetElection\"")
                && line.contains("grpc_code=\"OK\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_call_ends_at_its_deadline_when_the_server_never_answers() {
    // A server that accepts connections and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let client = Client::connect(
        format!("http://{addr}"),
        ClientOptions {
            timeout: Some(Duration::from_millis(300)),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    // The default deadline, over a read that would be retried.
    let started = Instant::now();
    let status = client
        .elections()
        .get_election(get_election())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // The caller's own deadline, without retries.
    let mut request = tonic::Request::new(get_election());
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let status = client.elections().get_election(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[sqlx::test]
async fn calls_go_on_after_the_server_restarts_on_the_same_port(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let server = Instance::start_at(addr, &pool).await;
    // Each call once: the transport reconnects, not the retries.
    let client = Client::connect(
        format!("http://{addr}"),
        ClientOptions {
            retry: RetryPolicy::never(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    client
        .elections()
        .get_election(get_election())
        .await
        .unwrap();

    // A graceful restart: GOAWAY, then the connection closes.
    server.shut_down().await;
    let server = Instance::start_at(addr, &pool).await;
    for _ in 0..3 {
        let election = client
            .elections()
            .get_election(get_election())
            .await
            .expect("the next call reconnects by itself")
            .into_inner();
        assert_eq!(election.name, ELECTION);
    }

    server.shut_down().await;
}

#[sqlx::test]
async fn calls_are_spread_over_every_address_and_skip_one_that_is_down(pool: PgPool) {
    let first = spawn_app(pool.clone()).await;
    open_election(&first, "kz-2023").await;
    let second = spawn_app(pool.clone()).await;
    let down = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let client = Client::connect_many(
        [first.addr, second.addr, down].map(|addr| format!("http://{addr}")),
        ClientOptions {
            retry: RetryPolicy::never(),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    for _ in 0..20 {
        client
            .elections()
            .get_election(get_election())
            .await
            .expect("no call fails for the address that is down");
    }
    let (on_first, on_second) = (
        get_elections_answered(&first),
        get_elections_answered(&second),
    );
    assert_eq!(on_first + on_second, 20);
    assert!(on_first >= 5 && on_second >= 5, "{on_first} / {on_second}");

    // The same spreading over tonic's Channel, kept for those who choose it.
    let over_channel = Client::connect_many(
        [first.addr, second.addr].map(|addr| format!("http://{addr}")),
        ClientOptions {
            transport: Transport::Channel,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    over_channel
        .elections()
        .get_election(get_election())
        .await
        .unwrap();
}

#[sqlx::test]
async fn streams_and_large_answers_come_through(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let client = Client::connect(format!("http://{}", app.addr), ClientOptions::default())
        .await
        .unwrap();

    // WatchObservers, a server stream: every change arrives, in order.
    let mut feed = client.follow_observers(ELECTION, "");
    feed.open().await.unwrap();
    batch_create(&app, ELECTION, sco_people("w", 3, ""), &new_request_id())
        .await
        .unwrap();
    let mut watched = Vec::new();
    while watched.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the stream stalled")
            .unwrap();
        watched.push(event.observer.unwrap().name);
    }
    assert_eq!(watched.len(), 3);

    // A page larger than h2's default window (64 KiB): flow control gives window back.
    batch_create(&app, ELECTION, sco_people("p", 700, ""), &new_request_id())
        .await
        .unwrap();
    let page = client
        .observers()
        .list_observers(pb::ListObserversRequest {
            parent: ELECTION.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.observers.len(), 703);
    assert!(
        prost::Message::encoded_len(&page) > 64 * 1024,
        "{}",
        prost::Message::encoded_len(&page)
    );
}
