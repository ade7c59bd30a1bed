//! The change feed: every committed change exactly once, in commit order, resumable across
//! disconnections and server restarts; foreign or forged tokens refused.

use crate::common::{self, agencies, registry};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use observer_registry::client::{Client, Feed};
use observer_registry::pb::v1 as pb;
use pb::ChangeType;
use registry::*;
use sqlx::PgPool;
use tonic::Code;

const ELECTION: &str = "elections/kz-2023";

fn client(app: &TestApp) -> Client {
    Client::from_channel(app.channel.clone(), None).unwrap()
}

async fn next_event(feed: &mut Feed<pb::ObserverEvent>) -> pb::ObserverEvent {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("no event within 10 s")
        .unwrap()
}

/// The observer changes committed so far, in commit order: (type, name, etag).
async fn committed_changes(pool: &PgPool) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT change_type, 'elections/' || election_id || '/observers/' || (resource->>'id'), \
                replace(resource->>'etag', '-', '') \
           FROM changes WHERE resource_type = 'observer' ORDER BY position",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn summary(event: &pb::ObserverEvent) -> (String, String, String) {
    let observer = event.observer.as_ref().unwrap();
    let kind = match ChangeType::try_from(event.r#type).unwrap() {
        ChangeType::Created => "CREATED",
        ChangeType::Updated => "UPDATED",
        ChangeType::Deleted => "DELETED",
        ChangeType::Undeleted => "UNDELETED",
        ChangeType::Unspecified => "UNSPECIFIED",
    };
    (
        kind.to_owned(),
        observer.name.clone(),
        observer.etag.clone(),
    )
}

/// Registers, renames, accredits and deletes observers from `writers` tasks at once; returns
/// how many observer mutations succeeded.
async fn concurrent_writes(app: &Arc<TestApp>, writers: usize, each: usize) -> usize {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut done = 0;
                for i in 0..each {
                    let id = format!("w{w}-{i}");
                    let created = create_observer(
                        &app,
                        ELECTION,
                        &id,
                        observer(
                            "Wei",
                            &format!("Writer {w}"),
                            "CN",
                            "sco",
                            &format!("F{w}N{i:05}"),
                        ),
                    )
                    .await;
                    update_observer(
                        &app,
                        pb::Observer {
                            name: created.name.clone(),
                            family_name: format!("Renamed {w}/{i}"),
                            ..Default::default()
                        },
                        &["family_name"],
                    )
                    .await
                    .unwrap();
                    accredit(&app, &created.name).await.unwrap();
                    done += 3;
                    if i % 3 == 0 {
                        // Accredited observers are revoked before they are deleted.
                        revoke(&app, &created.name, "left").await.unwrap();
                        delete_observer(&app, &created.name, "").await.unwrap();
                        done += 2;
                    }
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await.unwrap();
    }
    done
}

/// A server with an election, a feed of its observers opened before anything changed, and
/// the feed's first event (an observer registered after it opened).
async fn watching(pool: PgPool) -> (Arc<TestApp>, Feed<pb::ObserverEvent>, pb::ObserverEvent) {
    let app = Arc::new(spawn_app(pool).await);
    open_election(&app, "kz-2023").await;
    let mut feed = client(&app).follow_observers(ELECTION, "");
    feed.open().await.unwrap();
    create_observer(
        &app,
        ELECTION,
        "first",
        observer("Ann", "First", "CN", "sco", "A0000001"),
    )
    .await;
    let first = next_event(&mut feed).await;
    (app, feed, first)
}

#[sqlx::test]
async fn a_watcher_receives_every_committed_change_once_in_commit_order(pool: PgPool) {
    let (app, mut feed, first) = watching(pool.clone()).await;
    assert_eq!(summary(&first).0, "CREATED");

    let mutations = concurrent_writes(&app, 8, 6).await;
    let mut received = vec![summary(&first)];
    while received.len() < mutations + 1 {
        received.push(summary(&next_event(&mut feed).await));
    }
    let committed = committed_changes(&pool).await;
    assert_eq!(
        committed.len(),
        mutations + 1,
        "one change per successful mutation"
    );
    assert_eq!(
        received, committed,
        "events differ from the committed changes"
    );
    // Nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), feed.next())
            .await
            .is_err(),
        "an extra event arrived"
    );
    // The last event of each observer is the observer as it is now.
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for (_, name, etag) in &received {
        last.insert(name.clone(), etag.clone());
    }
    for (name, etag) in last {
        let stored = try_get_observer(&app, &name).await.unwrap();
        assert_eq!(stored.etag, etag, "{name}");
    }
}

#[sqlx::test]
async fn resuming_at_any_point_loses_and_repeats_nothing(pool: PgPool) {
    let (app, mut whole, first) = watching(pool.clone()).await;
    let mutations = concurrent_writes(&app, 4, 6).await;

    // A client that disconnects after every few events and resumes with its last token.
    let mut pieces = vec![summary(&first)];
    let mut token = first.resume_token.clone();
    let mut step = 1;
    while pieces.len() < mutations + 1 {
        let mut feed = client(&app).follow_observers(ELECTION, &token);
        for _ in 0..step {
            if pieces.len() == mutations + 1 {
                break;
            }
            let event = next_event(&mut feed).await;
            pieces.push(summary(&event));
            token = event.resume_token;
        }
        step = step % 7 + 2;
    }
    let mut uninterrupted = vec![summary(&first)];
    while uninterrupted.len() < mutations + 1 {
        uninterrupted.push(summary(&next_event(&mut whole).await));
    }
    assert_eq!(pieces, uninterrupted);
    assert_eq!(pieces, committed_changes(&pool).await);
}

#[sqlx::test]
async fn a_feed_continues_across_a_server_restart(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    let mut feed = client(&app).follow_observers(ELECTION, "");
    feed.open().await.unwrap();
    create_observer(
        &app,
        ELECTION,
        "before",
        observer("Ann", "Before", "CN", "sco", "B0000001"),
    )
    .await;
    let before = next_event(&mut feed).await;

    // The stream ends cleanly when the server stops, and the server stops promptly.
    let mut raw = app
        .observers()
        .watch_observers(pb::WatchObserversRequest {
            parent: ELECTION.into(),
            resume_token: before.resume_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(Duration::from_secs(5), app.shutdown())
        .await
        .expect("the server waited for the open watch")
        .unwrap();
    let end = raw.message().await;
    assert!(
        matches!(end, Ok(None)),
        "not a clean end of stream: {end:?}"
    );

    // Changes made while no server runs for the watcher, then a new server.
    let app = spawn_app(pool.clone()).await;
    for i in 0..5 {
        create_observer(
            &app,
            ELECTION,
            &format!("after-{i}"),
            observer("Bo", "After", "CN", "sco", &format!("B2{i:06}")),
        )
        .await;
    }
    let mut resumed = client(&app).follow_observers(ELECTION, &before.resume_token);
    let mut names = Vec::new();
    for _ in 0..5 {
        names.push(next_event(&mut resumed).await.observer.unwrap().name);
    }
    let expected: Vec<String> = (0..5)
        .map(|i| format!("{ELECTION}/observers/after-{i}"))
        .collect();
    assert_eq!(names, expected);
}

#[sqlx::test]
async fn foreign_forged_and_other_feeds_tokens_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_kz_election(&app, "kz-2024", None).await;
    let mut feed = client(&app).follow_observers(ELECTION, "");
    feed.open().await.unwrap();
    create_observer(
        &app,
        ELECTION,
        "o",
        observer("Ann", "One", "CN", "sco", "T0000001"),
    )
    .await;
    let token = next_event(&mut feed).await.resume_token;

    let watch = |parent: &str, token: &str| {
        let mut observers = app.observers();
        let request = pb::WatchObserversRequest {
            parent: parent.into(),
            resume_token: token.into(),
        };
        async move { observers.watch_observers(request).await.map(|_| ()) }
    };
    for (parent, token) in [
        ("elections/kz-2024", token.as_str()),
        (ELECTION, "not-a-token"),
        (ELECTION, &format!("{token}x")),
    ] {
        let error = watch(parent, token).await.unwrap_err();
        assert_error(&error, Code::InvalidArgument, "INVALID_RESUME_TOKEN");
    }
    let error = pb::meeting_service_client::MeetingServiceClient::new(app.channel.clone())
        .watch_meetings(pb::WatchMeetingsRequest {
            parent: ELECTION.into(),
            resume_token: token.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::InvalidArgument, "INVALID_RESUME_TOKEN");
    let error = watch("elections/nowhere", "").await.unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
}

#[sqlx::test]
async fn delegations_and_meetings_have_feeds_too(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let client = client(&app);
    let mut delegations = client.follow_delegations(ELECTION, "");
    let mut meetings = client.follow_meetings(ELECTION, "");
    delegations.open().await.unwrap();
    meetings.open().await.unwrap();
    let delegation = create_delegation(
        &app,
        ELECTION,
        "sco-mission",
        delegation("SCO mission", "sco"),
    )
    .await;
    let event = tokio::time::timeout(Duration::from_secs(10), delegations.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.r#type, ChangeType::Created as i32);
    assert_eq!(event.delegation.unwrap().name, delegation.name);

    let created = pb::meeting_service_client::MeetingServiceClient::new(app.channel.clone())
        .create_meeting(pb::CreateMeetingRequest {
            parent: ELECTION.into(),
            meeting_id: "briefing".into(),
            meeting: Some(pb::Meeting {
                title: "Briefing of the SCO mission".into(),
                host: "CEC chairman".into(),
                delegations: vec![delegation.name.clone()],
                start_time: Some(timestamp(at("2023-03-18T10:00:00Z"))),
                end_time: Some(timestamp(at("2023-03-18T11:00:00Z"))),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let event = tokio::time::timeout(Duration::from_secs(10), meetings.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.r#type, ChangeType::Created as i32);
    assert_eq!(event.meeting.unwrap().name, created.name);
}

/// Inserts an observer in a transaction of the test, left open. Different citizenships keep
/// two such transactions from waiting for each other on the figures' tally row.
async fn insert_uncommitted(
    pool: &PgPool,
    id: &str,
    citizenship: &str,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO observers (election_id, id, given_name, family_name, citizenship, \
                                organization_id, travel_document_number) \
         VALUES ('kz-2023', $1, 'Out', 'Of Order', $2, 'sco', upper(replace($1, '-', '')))",
    )
    .bind(id)
    .bind(citizenship)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx
}

#[sqlx::test]
async fn changes_arrive_in_commit_order_not_in_the_order_they_were_written(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    let mut feed = client(&app).follow_observers(ELECTION, "");
    feed.open().await.unwrap();

    // Written first, committed last.
    let early = insert_uncommitted(&pool, "written-first", "CN").await;
    let late = insert_uncommitted(&pool, "written-second", "MN").await;
    late.commit().await.unwrap();
    let event = next_event(&mut feed).await;
    assert_eq!(
        event.observer.unwrap().name,
        format!("{ELECTION}/observers/written-second")
    );
    early.commit().await.unwrap();
    let event = next_event(&mut feed).await;
    assert_eq!(
        event.observer.unwrap().name,
        format!("{ELECTION}/observers/written-first")
    );

    // A rolled-back change is never seen and leaves no gap.
    let rolled_back = insert_uncommitted(&pool, "never", "TR").await;
    rolled_back.rollback().await.unwrap();
    create_observer(
        &app,
        ELECTION,
        "after",
        observer("Ann", "After", "CN", "sco", "R0000001"),
    )
    .await;
    let event = next_event(&mut feed).await;
    assert_eq!(
        event.observer.unwrap().name,
        format!("{ELECTION}/observers/after")
    );
    let positions: Vec<i64> = sqlx::query_scalar("SELECT position FROM changes ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    let expected: Vec<i64> = (1..=i64::try_from(positions.len()).unwrap()).collect();
    assert_eq!(positions, expected);
}

#[sqlx::test]
async fn personal_data_in_events_follows_the_callers_role(pool: PgPool) {
    let (app, agencies) = agencies::spawn_with_standard_agencies(pool, "feeds").await;
    let admin = agencies.client(&app, agencies::ADMIN);
    for (id, display_name) in [("sco", "Shanghai Cooperation Organisation")] {
        admin
            .organizations()
            .create_organization(pb::CreateOrganizationRequest {
                organization_id: id.into(),
                organization: Some(pb::Organization {
                    display_name: display_name.into(),
                    kind: pb::OrganizationKind::InternationalOrganization.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    admin
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Early parliamentary election")),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let mut reader = agencies
        .client(&app, agencies::READER)
        .follow_observers(ELECTION, "");
    let mut full = agencies
        .client(&app, agencies::PERSONAL_DATA_READER)
        .follow_observers(ELECTION, "");
    reader.open().await.unwrap();
    full.open().await.unwrap();
    let mut registrar = agencies.client(&app, agencies::REGISTRAR).observers();
    // An observer without personal data first, whose event's token the replays start from.
    registrar
        .create_observer(create_observer_request(
            ELECTION,
            "before",
            observer("Bo", "Before", "CN", "sco", "PD1000001"),
        ))
        .await
        .unwrap();
    let start = next_event(&mut reader).await.resume_token;
    next_event(&mut full).await;

    let created = registrar
        .create_observer(create_observer_request(
            ELECTION,
            "pd",
            pb::Observer {
                date_of_birth: "1968-04-12".into(),
                email: "ann.private@mail.example".into(),
                phone: "+86 10 5555 0142".into(),
                ..observer("Ann", "Private", "CN", "sco", "PD4471902")
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let registered = [
        "PD4471902",
        "1968-04-12",
        "ann.private@mail.example",
        "+86 10 5555 0142",
    ];
    registrar
        .update_observer(pb::UpdateObserverRequest {
            observer: Some(pb::Observer {
                name: created.name.clone(),
                email: "ann.new@mail.example".into(),
                phone: "+86 10 5555 0199".into(),
                ..Default::default()
            }),
            update_mask: mask(&["email", "phone"]),
        })
        .await
        .unwrap();
    let updated = [
        "PD4471902",
        "1968-04-12",
        "ann.new@mail.example",
        "+86 10 5555 0199",
    ];

    // Live, then replayed from a token: CREATED and UPDATED, masked or not by the caller.
    let mut replayed_reader = agencies
        .client(&app, agencies::READER)
        .follow_observers(ELECTION, &start);
    let mut replayed_full = agencies
        .client(&app, agencies::PERSONAL_DATA_READER)
        .follow_observers(ELECTION, &start);
    for (how, reader, full) in [
        ("live", &mut reader, &mut full),
        ("replayed", &mut replayed_reader, &mut replayed_full),
    ] {
        for (kind, visible) in [
            (ChangeType::Created, registered),
            (ChangeType::Updated, updated),
        ] {
            let event = next_event(reader).await;
            assert_eq!(event.r#type, kind as i32, "{how} {kind:?} for a reader");
            assert_eq!(
                personal_data(&event.observer.unwrap()),
                ["", "", "", ""],
                "{how} {kind:?} for a reader"
            );
            let event = next_event(full).await;
            assert_eq!(event.r#type, kind as i32, "{how} {kind:?}");
            assert_eq!(
                personal_data(&event.observer.unwrap()),
                visible,
                "{how} {kind:?} for a personal-data-reader"
            );
        }
    }
}

/// The personal data of an observer: document, birth date, e-mail, phone.
fn personal_data(observer: &pb::Observer) -> [&str; 4] {
    [
        &observer.travel_document_number,
        &observer.date_of_birth,
        &observer.email,
        &observer.phone,
    ]
}
