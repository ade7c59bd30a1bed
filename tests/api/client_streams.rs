//! The shipped client's streams against the real service: each List call as a stream of
//! items across pages, and the change feed as a `Stream` that resumes by itself.

use crate::client_retries::client_through;
use crate::common::proxy::Proxy;
use crate::common::registry::*;
use crate::common::*;
use crate::meetings::{create_meeting, meeting};
use crate::streams::{register_slowly, slowly_registered, spawn_with_limits};

use std::fmt::Debug;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use observer_registry::client::{Client, ClientOptions, ErrorDetails, ErrorReason, ListStream};
use observer_registry::pb::v1 as pb;
use observer_registry::server::Limits;
use sqlx::PgPool;
use tonic::Code;

const ELECTION: &str = "elections/kz-2023";

/// Everything `stream` yields, within 10 s.
async fn read_all<T>(what: &str, stream: ListStream<T>) -> Vec<T> {
    tokio::time::timeout(Duration::from_secs(10), stream.try_collect())
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within 10 s"))
        .unwrap_or_else(|error| panic!("{what}: {error:?}"))
}

/// Asserts that the stream of `list`, asked for one item per page, yields exactly what one
/// page of 1000 holds (a single call: this list is shorter), in its order.
async fn assert_pages_through<R, T: PartialEq + Debug>(
    client: &Client,
    what: &str,
    list: fn(&Client, R) -> ListStream<T>,
    request: impl Fn(i32) -> R,
) {
    let one_page = read_all(what, list(client, request(1000))).await;
    assert!(one_page.len() >= 2, "{what}: too few items to need pages");
    let paged = read_all(what, list(client, request(1))).await;
    assert_eq!(paged, one_page, "{what}");
}

#[sqlx::test]
async fn a_list_stream_yields_every_item_of_every_page_once_in_order(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    batch_create(&app, ELECTION, sco_people("p", 40, ""), &new_request_id())
        .await
        .unwrap();
    let client = client_without_retries(&app, None);

    // The filter and order hold on every page, not only on the first.
    let filter = r#"citizenship = "CN" OR citizenship = "RU""#;
    let order_by = "family_name desc";
    let expected = observer_ids(&app, ELECTION, filter, order_by).await;
    assert_eq!(expected.len(), 14);
    let streamed: Vec<String> = client
        .list_observers_stream(pb::ListObserversRequest {
            parent: ELECTION.into(),
            page_size: 3,
            filter: filter.into(),
            order_by: order_by.into(),
            ..Default::default()
        })
        .map_ok(|observer| id(&observer.name).to_owned())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, expected);
}

#[sqlx::test]
async fn every_list_call_has_a_stream_that_pages_through_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_election(&app, "kz-2024").await;
    for id in ["sco", "cis-ipa"] {
        create_delegation(&app, ELECTION, id, delegation(&format!("{id} mission"), id)).await;
    }
    let observers = batch_create(&app, ELECTION, sco_people("r", 3, ""), &new_request_id())
        .await
        .unwrap();
    for observer in &observers[..2] {
        accredit(&app, &observer.name).await.unwrap();
    }
    let sco = format!("{ELECTION}/delegations/sco");
    for (id, start, end) in [
        ("first", "2023-03-18T10:00:00Z", "2023-03-18T11:00:00Z"),
        ("second", "2023-03-18T12:00:00Z", "2023-03-18T13:00:00Z"),
    ] {
        create_meeting(&app, id, meeting("CEC chairman", &[&sco], start, end)).await;
    }
    let client = client_without_retries(&app, None);

    // One row per List call: its stream method, and its request's fields besides page_size.
    macro_rules! assert_streams {
        ($($what:literal: $method:ident($request:ident { $($field:ident: $value:expr),* }))*) => {$(
            assert_pages_through(&client, $what, Client::$method, |page_size| pb::$request {
                page_size,
                $($field: $value,)*
                ..Default::default()
            })
            .await;
        )*};
    }
    assert_streams! {
        "elections": list_elections_stream(ListElectionsRequest {})
        "organizations": list_organizations_stream(ListOrganizationsRequest {})
        "delegations": list_delegations_stream(ListDelegationsRequest { parent: ELECTION.into() })
        "observers": list_observers_stream(ListObserversRequest { parent: ELECTION.into() })
        "public register": list_public_register_stream(ListPublicRegisterRequest { parent: ELECTION.into() })
        "meetings": list_meetings_stream(ListMeetingsRequest { parent: ELECTION.into() })
        "audit events": list_audit_events_stream(ListAuditEventsRequest { parent: ELECTION.into() })
    }
}

#[sqlx::test]
async fn a_refused_page_is_yielded_as_the_error_and_ends_the_stream(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    batch_create(&app, ELECTION, sco_people("e", 5, ""), &new_request_id())
        .await
        .unwrap();
    let client = client_without_retries(&app, None);

    let mut refused = client.list_observers_stream(pb::ListObserversRequest {
        parent: ELECTION.into(),
        filter: "no_such_field = 1".into(),
        ..Default::default()
    });
    let error = refused.next().await.unwrap().unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(error.reason(), Some(ErrorReason::InvalidFilter));
    assert!(refused.next().await.is_none(), "the stream went on");

    // A later page that fails, after the first page's items.
    let mut cut_short = client.list_observers_stream(pb::ListObserversRequest {
        parent: ELECTION.into(),
        page_size: 2,
        ..Default::default()
    });
    for _ in 0..2 {
        cut_short.next().await.unwrap().unwrap();
    }
    app.shutdown().await.unwrap();
    let error = cut_short.next().await.unwrap().unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
    assert!(cut_short.next().await.is_none(), "the stream went on");
}

#[sqlx::test]
async fn the_feed_as_a_stream_delivers_every_change_across_stream_ends_and_broken_connections(
    pool: PgPool,
) {
    // Streams end every 400 ms, and the connection breaks once in between.
    let app = spawn_with_limits(
        pool,
        Limits {
            max_stream_age: Duration::from_millis(400),
            ..Limits::default()
        },
    )
    .await;
    let proxy = Proxy::start(app.addr).await;
    let client = client_through(&proxy, ClientOptions::default()).await;
    let mut feed = client.follow_observers(ELECTION, "");
    feed.open().await.unwrap();

    let writes = 20;
    let writer = register_slowly(&app, writes, Duration::from_millis(75));
    let events = async {
        let mut events = Vec::new();
        while events.len() < writes {
            events.push(StreamExt::next(&mut feed).await.unwrap().unwrap());
            if events.len() == writes / 2 {
                proxy.cut();
                tokio::time::sleep(Duration::from_millis(300)).await;
                proxy.restore();
            }
        }
        events
    };
    let events = tokio::time::timeout(Duration::from_secs(30), events)
        .await
        .expect("the feed stalled");
    writer.await.unwrap();
    let names: Vec<&str> = events
        .iter()
        .map(|event| event.observer.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(names, slowly_registered(writes));
    assert!(proxy.connections() >= 2, "the connection never broke");
    assert_eq!(feed.resume_token(), events[writes - 1].resume_token);

    // Nothing more arrives, and the stream has not ended.
    let more = tokio::time::timeout(Duration::from_millis(900), StreamExt::next(&mut feed)).await;
    assert!(more.is_err(), "after the last change: {more:?}");
}

#[sqlx::test]
async fn the_feed_yields_an_error_no_reconnection_fixes_and_goes_on(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let client = client_without_retries(&app, None);
    let mut feed = client.follow_observers("elections/nowhere", "");

    for attempt in 1..=2 {
        let item = tokio::time::timeout(Duration::from_secs(10), StreamExt::next(&mut feed))
            .await
            .expect("nothing within 10 s");
        let error = item
            .unwrap_or_else(|| panic!("the feed ended at attempt {attempt}"))
            .unwrap_err();
        assert_eq!(error.code(), Code::NotFound, "attempt {attempt}");
    }
}
