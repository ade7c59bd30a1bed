//! What works behind PgBouncer in transaction mode (HA.md, "Behind PgBouncer"): the CRUD of
//! every resource, request-id replays, accreditation numbers gapless under concurrent calls,
//! meetings that conflict, invitations, a Watch woken through the direct LISTEN connection,
//! and the erasure of personal data — with two PostgreSQL sessions for eight connections of
//! the service, so that its transactions run on sessions other transactions used before.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use observer_registry::client::Client;
use observer_registry::pb::v1 as pb;
use sqlx::PgPool;
use tonic::{Code, Status};

use crate::bouncer::{Bouncer, Pooled, SERVER_CONNECTIONS};
use crate::common::registry::*;
use crate::common::{assert_error, new_request_id};
use crate::common::{binary, operator};

fn kz_numbers(count: usize) -> Vec<String> {
    (1..=count).map(|seq| format!("KZ-2023-{seq:06}")).collect()
}

/// The service logged in to the test's database through PgBouncer.
fn assert_through_pgbouncer(pooled: &Pooled, pool: &PgPool) {
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let log = pooled.bouncer.log();
    assert!(
        log.contains(&format!("login attempt: db={database} user=postgres")),
        "no login to {database} in PgBouncer's log:\n{log}"
    );
}

async fn audit_events_of(pool: &PgPool, request_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE request_id = $1")
        .bind(request_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn elections_organizations_delegations_and_observers_are_kept_through_pgbouncer(
    pool: PgPool,
) {
    let pooled = Pooled::start(pool.clone()).await;
    let app = &pooled.app;
    open_election(app, "kz-2023").await;

    // Organizations and the election: listed, updated under their etag.
    let organizations = app
        .organizations()
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(organizations.organizations.len(), 2);
    assert!(!organizations.next_page_token.is_empty());
    let election = app
        .elections()
        .get_election(pb::GetElectionRequest { name: KZ.into() })
        .await
        .unwrap()
        .into_inner();
    let renamed = app
        .elections()
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                display_name: "Early election to the Mazhilis".into(),
                ..election.clone()
            }),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.display_name, "Early election to the Mazhilis");
    assert_ne!(renamed.etag, election.etag);

    // A delegation: created, read, deleted and undeleted.
    let mission = create_delegation(app, KZ, "sco-mission", delegation("SCO mission", "sco")).await;
    assert_eq!(
        get_delegation(app, &mission.name).await.display_name,
        "SCO mission"
    );
    let deleted = delete_delegation(app, &mission.name, &mission.etag)
        .await
        .unwrap();
    assert!(deleted.delete_time.is_some());
    let back = undelete_delegation(app, &mission.name, &deleted.etag)
        .await
        .unwrap();
    assert!(back.delete_time.is_none());

    // Observers: a batch and one more, listed page by page, each once.
    batch_create(app, KZ, sco_people("p", 12, &mission.name), "")
        .await
        .unwrap();
    let anna = create_observer(
        app,
        KZ,
        "anna",
        observer("Anna", "Dupont", "FR", "sco", "F1000001"),
    )
    .await;
    let (mut seen, mut token) = (BTreeSet::new(), String::new());
    loop {
        let page = list_observers(
            app,
            pb::ListObserversRequest {
                parent: KZ.into(),
                page_size: 5,
                page_token: token,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(page.total_size, 13);
        for observer in page.observers {
            assert!(
                seen.insert(observer.name.clone()),
                "{} twice",
                observer.name
            );
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 13);

    // Updated under its etag; a stale etag changes nothing.
    let renamed = update_observer(
        app,
        pb::Observer {
            given_name: "Anne".into(),
            ..anna.clone()
        },
        &["given_name"],
    )
    .await
    .unwrap();
    assert_eq!(get_observer(app, &anna.name).await.given_name, "Anne");
    let stale = update_observer(
        app,
        pb::Observer {
            given_name: "Annette".into(),
            ..anna.clone()
        },
        &["given_name"],
    )
    .await
    .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");
    let deleted = delete_observer(app, &anna.name, &renamed.etag)
        .await
        .unwrap();
    assert!(deleted.delete_time.is_some());
    let back = undelete_observer(app, &anna.name, &deleted.etag)
        .await
        .unwrap();
    assert!(back.delete_time.is_none());
    assert_eq!(get_observer(app, &anna.name).await.given_name, "Anne");

    // A create replayed under its request id returns the first result, written once.
    let request_id = new_request_id();
    let create = || {
        let request = pb::CreateObserverRequest {
            request_id: request_id.clone(),
            ..create_observer_request(KZ, "li", observer("Li", "Wei", "CN", "sco", "E1000002"))
        };
        let observers = app.observers();
        async move {
            let mut observers = observers;
            observers
                .create_observer(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let (first, again) = (create().await.unwrap(), create().await.unwrap());
    assert_eq!(first, again);
    assert_eq!(audit_events_of(&pool, &request_id).await, 1);

    assert_through_pgbouncer(&pooled, &pool);
}

async fn accredit_through(client: &Client, name: &str) -> Result<pb::Observer, Status> {
    client
        .observers()
        .accredit_observer(pb::AccreditObserverRequest {
            name: name.to_owned(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

#[sqlx::test]
async fn accreditation_numbers_stay_gapless_under_concurrent_calls_through_pgbouncer(pool: PgPool) {
    const SINGLES: usize = 30;
    const BATCH: usize = 10;
    let pooled = Pooled::start(pool.clone()).await;
    open_election(&pooled.app, "kz-2023").await;
    let names: Vec<String> =
        batch_create(&pooled.app, KZ, sco_people("n", SINGLES + BATCH, ""), "")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
    let (singles, batch) = names.split_at(SINGLES);

    // Thirty single accreditations and a batch of ten, all at once.
    let client = pooled.client().await;
    let calls = singles.iter().map(|name| {
        let (client, name) = (client.clone(), name.clone());
        tokio::spawn(async move { accredit_through(&client, &name).await })
    });
    let batch_call = {
        let (client, names) = (client.clone(), batch.to_vec());
        tokio::spawn(async move {
            client
                .observers()
                .batch_accredit_observers(pb::BatchAccreditObserversRequest {
                    parent: KZ.into(),
                    names,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().observers)
        })
    };
    let mut numbers = Vec::new();
    for result in join_all(calls).await {
        numbers.push(number(&result.unwrap().unwrap()).to_owned());
    }
    let batched = batch_call.await.unwrap().unwrap();
    let batch_numbers: Vec<String> = batched.iter().map(|o| number(o).to_owned()).collect();
    // One transaction holds the sequence from its first number to its commit.
    let first: usize = batch_numbers[0][8..].parse().unwrap();
    assert_eq!(batch_numbers, kz_numbers(first + BATCH - 1)[first - 1..]);
    numbers.extend(batch_numbers);
    numbers.sort();
    assert_eq!(numbers, kz_numbers(SINGLES + BATCH));

    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT accreditation_number FROM observers \
         WHERE accreditation_number IS NOT NULL ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(stored, kz_numbers(SINGLES + BATCH));
    let audited = "SELECT count(*) FROM audit_events WHERE method LIKE '%Accredit%'";
    let audited: i64 = sqlx::query_scalar(audited).fetch_one(&pool).await.unwrap();
    assert_eq!(audited, (SINGLES + BATCH) as i64);
    assert_through_pgbouncer(&pooled, &pool);
    // The service's connections (eight) took turns on PgBouncer's two sessions; only LISTEN
    // has a session of its own.
    let sessions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'observer-registry' \
           AND query NOT LIKE 'LISTEN%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        (1..=SERVER_CONNECTIONS as i64).contains(&sessions),
        "{sessions} sessions"
    );
}

fn meeting(host: &str, delegations: Vec<String>, minute: usize) -> pb::Meeting {
    let time = |hour: usize| Some(timestamp(at(&format!("2023-03-15T{hour}:{minute:02}:00Z"))));
    pb::Meeting {
        title: "Meeting with the international observers".into(),
        host: host.to_owned(),
        delegations,
        start_time: time(10),
        end_time: time(11),
        ..Default::default()
    }
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
async fn meetings_invitations_watches_and_erasure_work_through_pgbouncer(pool: PgPool) {
    let pooled = Pooled::start(pool.clone()).await;
    let app = &pooled.app;
    open_election(app, "kz-2023").await;
    let client = pooled.client().await;

    // A watch, woken by LISTEN on the direct connection.
    let mut stream = client
        .observers()
        .watch_observers(pb::WatchObserversRequest {
            parent: KZ.into(),
            resume_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    // An invitation sent and accepted.
    let invitation = client
        .invitations()
        .create_invitation(pb::CreateInvitationRequest {
            parent: KZ.into(),
            invitation_id: "sco".into(),
            invitation: Some(pb::Invitation {
                organization: "organizations/sco".into(),
                send_date: "2023-01-20".into(),
                reference: "No. 12-3/1456".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let accepted = client
        .invitations()
        .accept_invitation(pb::AcceptInvitationRequest {
            name: invitation.name.clone(),
            reply_date: "2023-02-01".into(),
            expected_observers: 12,
            etag: invitation.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.state(), pb::InvitationState::Accepted);

    // Two overlapping meetings of one host booked at once: exactly one wins.
    let mission = create_delegation(app, KZ, "sco-mission", delegation("SCO mission", "sco")).await;
    let other =
        create_delegation(app, KZ, "cis-mission", delegation("CIS mission", "cis-ipa")).await;
    let host = "Nurlan Abdirov, Chairman of the Central Election Commission";
    let bookings = [
        ("first", mission.name.clone(), 0),
        ("second", other.name.clone(), 30),
    ]
    .map(|(id, delegation, minute)| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .meetings()
                .create_meeting(pb::CreateMeetingRequest {
                    parent: KZ.into(),
                    meeting_id: id.into(),
                    meeting: Some(meeting(host, vec![delegation], minute)),
                    request_id: String::new(),
                })
                .await
        })
    });
    let results: Vec<_> = join_all(bookings)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_error(error, Code::FailedPrecondition, "MEETING_CONFLICT");
    }

    // The watch sees a registration.
    let anna = create_observer(
        app,
        KZ,
        "anna",
        observer("Anna", "Dupont", "FR", "sco", "F1000001"),
    )
    .await;
    let created = next_event(&mut stream).await;
    assert_eq!(created.r#type(), pb::ChangeType::Created);
    assert_eq!(created.observer.unwrap().name, anna.name);

    // Personal data erased on request: the record stays, its document is gone, and the
    // watch sees it.
    let erased = app
        .elections()
        .erase_personal_data(pb::ErasePersonalDataRequest {
            name: KZ.into(),
            etag: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(erased.personal_data_erase_time.is_some());
    let kept = get_observer(app, &anna.name).await;
    assert_eq!(kept.travel_document_number, "");
    assert_eq!(kept.family_name, "Dupont");
    let updated = next_event(&mut stream).await;
    assert_eq!(updated.r#type(), pb::ChangeType::Updated);
    assert_eq!(updated.observer.unwrap().travel_document_number, "");

    // LISTEN needs a session of its own: it is on PostgreSQL directly, not behind PgBouncer.
    let listening: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(listening, 1);
    assert_through_pgbouncer(&pooled, &pool);
}

/// Why the setting matters. Without it the service's connections carry session settings
/// (PgBouncer 1.18 refuses them unless told to ignore them), and sqlx names its prepared
/// statements per connection and keeps them for the next transaction: in sessions that other
/// connections' transactions used, the names collide (`prepared statement "sqlx_s_1" already
/// exists`) or are missing (`… does not exist`), and calls fail.
#[sqlx::test]
async fn without_the_pooler_setting_calls_fail_behind_pgbouncer(pool: PgPool) {
    let mut pooled = Pooled::start_with(
        pool.clone(),
        "ignore_startup_parameters = extra_float_digits,options",
        &[("MIGRATE", "false")],
    )
    .await;
    let client = pooled.client().await;
    // Reads of organizations that do not exist: NOT_FOUND, when the statements work.
    let calls = (0..40).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let request = pb::GetOrganizationRequest {
                name: format!("organizations/missing-{i}"),
            };
            client.organizations().get_organization(request).await
        })
    });
    let failed: Vec<Status> = join_all(calls)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().err())
        .filter(|status| status.code() != Code::NotFound)
        .collect();
    assert!(!failed.is_empty(), "every read worked without the setting");
    let mut logged = Vec::new();
    while let Ok(line) = pooled.binary.logs.try_recv() {
        logged.push(line.to_string());
    }
    // `… already exists`, `… does not exist`, or worse: another connection's statement of
    // that name given our parameters (`bind message supplies 2 parameters, but prepared
    // statement "sqlx_s_3" requires 9`).
    assert!(
        logged
            .iter()
            .any(|line| line.contains(r#"prepared statement \"sqlx_s_"#)),
        "{}",
        logged.join("\n")
    );
}

/// The migrator holds a session advisory lock from its first migration to its last, which a
/// transaction pooler cannot keep: behind one, `migrate` refuses to start without the direct
/// connection, and with it migrates over that connection.
#[sqlx::test(migrations = false)]
async fn migrations_behind_a_transaction_pooler_take_the_direct_connection(pool: PgPool) {
    let bouncer = Bouncer::start("").await;
    let (pooled, direct) = (bouncer.url(&pool), binary::database_url(&pool));
    let env = [
        ("DATABASE_URL", pooled.as_str()),
        ("DATABASE_POOLER", "transaction"),
    ];
    let (status, log) = operator::run(&["migrate"], &env).await;
    assert!(!status.success(), "{log}");
    assert!(log.contains("--listen-database-url"), "{log}");
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";
    let count = || async {
        sqlx::query_scalar::<_, i64>(tables)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 0, "migrated through the pooler");

    let with_direct = [env[0], env[1], ("LISTEN_DATABASE_URL", direct.as_str())];
    let (status, log) = operator::run(&["migrate"], &with_direct).await;
    assert!(status.success(), "{log}");
    assert!(count().await > 0);
}
