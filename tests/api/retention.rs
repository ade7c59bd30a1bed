//! Retention of personal data (API.md): ErasePersonalData, what erasure keeps and drops, its
//! audit event and feed events, exports after it, the background erasure by the service's
//! clock, once even with two service instances on one database, and PostgreSQL refusing
//! what the rules forbid when it comes as SQL.

use crate::common::{self, agencies, registry};
use crate::verification::{badges, generous, verification};

use std::sync::Arc;
use std::time::Duration;

use common::*;
use observer_registry::badge::BadgeSigner;
use observer_registry::client::{Client, Feed};
use observer_registry::database::Database;
use observer_registry::health::Availability;
use observer_registry::metrics::Metrics;
use observer_registry::pb::v1 as pb;
use observer_registry::retention::{ACTOR, Eraser};
use pb::accreditation_check::VerificationStatus;
use pb::verify_accreditation_request::Subject;
use registry::*;
use sqlx::PgPool;
use tonic::Code;

const KZ: &str = "elections/kz-2023";
const ERASE_METHOD: &str = "/observer_registry.v1.ElectionService/ErasePersonalData";

fn name(id: &str) -> String {
    format!("{KZ}/observers/{id}")
}

fn client(app: &TestApp) -> Client {
    Client::from_channel(app.channel.clone(), None).unwrap()
}

/// An observer with every kind of personal data.
fn person(given: &str, family: &str, citizenship: &str, document: &str) -> pb::Observer {
    pb::Observer {
        date_of_birth: "1971-02-03".into(),
        email: format!("{}@mission.example", given.to_lowercase()),
        phone: "+33 1 5555 0101".into(),
        deployment_region: "Almaty".into(),
        ..observer(given, family, citizenship, "sco", document)
    }
}

fn personal_data(observer: &pb::Observer) -> [&str; 4] {
    [
        &observer.travel_document_number,
        &observer.date_of_birth,
        &observer.email,
        &observer.phone,
    ]
}

async fn erase(app: &TestApp, election: &str, etag: &str) -> Result<pb::Election, tonic::Status> {
    app.elections()
        .erase_personal_data(pb::ErasePersonalDataRequest {
            name: election.to_owned(),
            etag: etag.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn get_election(app: &TestApp, election: &str) -> pb::Election {
    app.elections()
        .get_election(pb::GetElectionRequest {
            name: election.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The observers of `election`, deleted ones too (one page).
async fn observers_of(app: &TestApp, election: &str) -> Vec<pb::Observer> {
    list_observers(
        app,
        pb::ListObserversRequest {
            parent: election.to_owned(),
            page_size: 1000,
            show_deleted: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .observers
}

/// The election's audit events of erasures.
async fn erasure_events(app: &TestApp, election: &str) -> Vec<pb::AuditEvent> {
    client(app)
        .audit()
        .list_audit_events(pb::ListAuditEventsRequest {
            parent: election.to_owned(),
            page_size: 1000,
            filter: format!("method = \"{ERASE_METHOD}\""),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events
}

/// Observer feed rows that erased personal data, per observer id.
async fn erasures_fed(pool: &PgPool, election_id: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT resource->>'id', count(*) FROM changes \
          WHERE election_id = $1 AND resource_type = 'observer' AND change_type = 'UPDATED' \
            AND resource->>'personal_data_erase_time' IS NOT NULL \
            AND resource->>'personal_data_erase_time' = resource->>'update_time' \
          GROUP BY 1 ORDER BY 1",
    )
    .bind(election_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

// ---- ErasePersonalData ----

#[sqlx::test]
async fn erasing_drops_personal_data_and_keeps_the_record(pool: PgPool) {
    // Before voting day, so that the accredited observer's badge is in force.
    let clock = ManualClock::new(at("2023-03-10T09:00:00Z"));
    let signer = BadgeSigner::generate().unwrap();
    let options = crate::verification::options(&clock, badges(signer, Vec::new(), generous()));
    let app = spawn_app_with_options(pool.clone(), pool, options).await;
    open_election(&app, "kz-2023").await;
    let anna = create_observer(&app, KZ, "anna", person("Anna", "Dupont", "FR", "F1000001")).await;
    let accredited = accredit(&app, &anna.name).await.unwrap();
    create_observer(&app, KZ, "li", person("Li", "Wei", "CN", "E1000002")).await;
    create_observer(
        &app,
        KZ,
        "gone",
        person("Ola", "Nordmann", "NO", "N1000003"),
    )
    .await;
    delete_observer(&app, &name("gone"), "").await.unwrap();
    let summary = || async {
        app.elections()
            .get_election_summary(pb::GetElectionSummaryRequest { name: KZ.into() })
            .await
            .unwrap()
            .into_inner()
    };
    let figures_before = summary().await;
    let election = get_election(&app, KZ).await;
    assert!(election.personal_data_erase_time.is_none());

    let erased = erase(&app, KZ, &election.etag).await.unwrap();

    assert_eq!(
        instant(erased.personal_data_erase_time.as_ref()),
        at("2023-03-10T09:00:00Z")
    );
    assert_ne!(erased.etag, election.etag);
    for (id, given, family, citizenship) in [
        ("anna", "Anna", "Dupont", "FR"),
        ("li", "Li", "Wei", "CN"),
        ("gone", "Ola", "Nordmann", "NO"),
    ] {
        let observer = get_observer(&app, &name(id)).await;
        assert_eq!(personal_data(&observer), ["", "", "", ""], "{id}");
        assert_eq!(
            observer.personal_data_erase_time,
            erased.personal_data_erase_time
        );
        assert_eq!(observer.family_name, family, "{id}");
        assert_eq!(observer.given_name, given, "{id}");
        assert_eq!(observer.citizenship, citizenship);
        assert_eq!(observer.organization, "organizations/sco");
        assert_eq!(observer.deployment_region, "Almaty");
    }
    // What remains: numbers, figures, the public register, badges, verification.
    let anna = get_observer(&app, &name("anna")).await;
    assert_eq!(number(&anna), number(&accredited));
    assert_eq!(state(&anna), pb::AccreditationState::Accredited);
    let figures_after = summary().await;
    assert_eq!(
        (
            figures_after.accredited_observers,
            figures_after.pending_observers,
            figures_after.headline
        ),
        (
            figures_before.accredited_observers,
            figures_before.pending_observers,
            figures_before.headline
        )
    );
    let register = app
        .observers()
        .list_public_register(pb::ListPublicRegisterRequest {
            parent: KZ.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(register.len(), 1);
    assert_eq!(register[0].accreditation_number, number(&accredited));
    assert_eq!(register[0].family_name, "Dupont");
    let badge = app
        .observers()
        .get_observer_badge(pb::GetObserverBadgeRequest {
            name: anna.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(badge.accreditation_number, number(&accredited));
    let check = verification(&app)
        .verify_accreditation(pb::VerifyAccreditationRequest {
            subject: Some(Subject::Token(badge.token)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.status(), VerificationStatus::Valid);
    assert_eq!(check.family_name, "Dupont");

    // One audit event for the election, with the count of observers (the deleted one too).
    let events = erasure_events(&app, KZ).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].resource, KZ);
    assert_eq!(
        events[0].reason,
        "personal data of 3 observers erased on request"
    );
    assert!(
        events[0]
            .changed_fields
            .contains(&"personal_data_erase_time".to_owned()),
        "{:?}",
        events[0].changed_fields
    );
}

#[sqlx::test]
async fn an_erased_election_takes_no_observers_and_personal_data_never_comes_back(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_observer(&app, KZ, "anna", person("Anna", "Dupont", "FR", "F1000001")).await;
    let erased = erase(&app, KZ, "").await.unwrap();

    let refused = try_create_observer(&app, KZ, "bo", person("Bo", "Ray", "FR", "F2000002"))
        .await
        .unwrap_err();
    assert_error(&refused, Code::FailedPrecondition, "PERSONAL_DATA_ERASED");
    let refused = batch_create(&app, KZ, sco_people("late", 2, ""), &new_request_id())
        .await
        .unwrap_err();
    assert_error(&refused, Code::FailedPrecondition, "PERSONAL_DATA_ERASED");
    assert_eq!(app.count("observers").await, 1);

    let refused = update_observer(
        &app,
        pb::Observer {
            name: name("anna"),
            email: "anna@new.example".into(),
            travel_document_number: "F1000001".into(),
            ..Default::default()
        },
        &["email", "travel_document_number"],
    )
    .await
    .unwrap_err();
    assert_error(&refused, Code::FailedPrecondition, "PERSONAL_DATA_ERASED");
    assert_eq!(
        sorted(violated_fields(&refused)),
        ["observer.email", "observer.travel_document_number"]
    );
    let refused = app
        .observers()
        .correct_observer(pb::CorrectObserverRequest {
            observer: Some(pb::Observer {
                name: name("anna"),
                date_of_birth: "1971-02-03".into(),
                ..Default::default()
            }),
            update_mask: mask(&["date_of_birth"]),
            reason: "Restoring the birth date".into(),
        })
        .await
        .unwrap_err();
    assert_error(&refused, Code::FailedPrecondition, "PERSONAL_DATA_ERASED");
    // The rest stays updatable, also with every field in the mask as read back.
    let mut anna = get_observer(&app, &name("anna")).await;
    anna.deployment_region = "Astana".into();
    let updated = update_observer(&app, anna, &[]).await.unwrap();
    assert_eq!(updated.deployment_region, "Astana");
    assert_eq!(personal_data(&updated), ["", "", "", ""]);

    // Erased once: a second call returns the election as it is, with no second event.
    let again = erase(&app, KZ, "").await.unwrap();
    assert_eq!(again.etag, erased.etag);
    assert_eq!(
        again.personal_data_erase_time,
        erased.personal_data_erase_time
    );
    assert_eq!(erasure_events(&app, KZ).await.len(), 1);
}

#[sqlx::test]
async fn erasing_checks_the_etag_and_the_name(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_observer(&app, KZ, "anna", person("Anna", "Dupont", "FR", "F1000001")).await;
    let stale = "0123456789abcdef0123456789abcdef";
    let refused = erase(&app, KZ, stale).await.unwrap_err();
    assert_error(&refused, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(
        personal_data(&get_observer(&app, &name("anna")).await)[0],
        "F1000001"
    );
    assert_error(
        &erase(&app, "elections/nowhere", "").await.unwrap_err(),
        Code::NotFound,
        "NOT_FOUND",
    );
    assert_error(
        &erase(&app, "kz-2023", "").await.unwrap_err(),
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
}

#[sqlx::test]
async fn only_an_admin_erases_personal_data(pool: PgPool) {
    let (app, agencies) = agencies::spawn_with_standard_agencies(pool, "retention").await;
    let admin = agencies.client(&app, agencies::ADMIN);
    create_organization_as(&admin, "sco", "Shanghai Cooperation Organisation").await;
    create_open_kz_election_as(&admin, "Early parliamentary election").await;
    agencies
        .client(&app, agencies::REGISTRAR)
        .observers()
        .create_observer(create_observer_request(
            KZ,
            "anna",
            person("Anna", "Dupont", "FR", "F1000001"),
        ))
        .await
        .unwrap();
    let request = || pb::ErasePersonalDataRequest {
        name: KZ.into(),
        etag: String::new(),
    };
    for agency in [
        agencies::READER,
        agencies::PERSONAL_DATA_READER,
        agencies::REGISTRAR,
        agencies::ACCREDITOR,
    ] {
        let refused = agencies
            .client(&app, agency)
            .elections()
            .erase_personal_data(request())
            .await
            .unwrap_err();
        assert_error(&refused, Code::PermissionDenied, "PERMISSION_DENIED");
    }
    let get = |agency: &'static str| {
        let client = agencies.client(&app, agency);
        async move {
            client
                .observers()
                .get_observer(pb::GetObserverRequest { name: name("anna") })
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(
        get(agencies::PERSONAL_DATA_READER).await.email,
        "anna@mission.example"
    );
    let reader_before = get(agencies::READER).await;
    admin
        .elections()
        .erase_personal_data(request())
        .await
        .unwrap();
    // A reader never saw personal data; now a personal-data reader sees none either.
    let reader_after = get(agencies::READER).await;
    assert_eq!(personal_data(&reader_before), ["", "", "", ""]);
    assert_eq!(personal_data(&reader_after), ["", "", "", ""]);
    assert!(reader_after.personal_data_erase_time.is_some());
    assert_eq!(
        personal_data(&get(agencies::PERSONAL_DATA_READER).await),
        ["", "", "", ""]
    );
}

#[sqlx::test]
async fn a_registration_racing_an_erasure_is_refused_by_postgresql(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    // An erasure in progress: the election's row locked and marked, not yet committed.
    let mut erasure = pool.begin().await.unwrap();
    sqlx::query("UPDATE elections SET personal_data_erase_time = now() WHERE id = 'kz-2023'")
        .execute(&mut *erasure)
        .await
        .unwrap();
    let create = {
        let observers = app.observers();
        tokio::spawn(async move {
            let mut observers = observers;
            observers
                .create_observer(create_observer_request(
                    KZ,
                    "racer",
                    person("Ray", "Sir", "FR", "F5000005"),
                ))
                .await
        })
    };
    // The registration read the election as not erased and waits on its row at insert.
    wait_until(Duration::from_secs(10), "the insert to wait", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        waiting > 0
    })
    .await;
    erasure.commit().await.unwrap();
    let refused = create.await.unwrap().unwrap_err();
    assert_error(&refused, Code::FailedPrecondition, "PERSONAL_DATA_ERASED");
    assert_eq!(app.count("observers").await, 0);
}

// ---- the change feed ----

async fn next_event(feed: &mut Feed<pb::ObserverEvent>) -> pb::ObserverEvent {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("no event within 10 s")
        .unwrap()
}

#[sqlx::test]
async fn the_feed_tells_partners_each_observer_was_erased(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    for (id, document) in [("anna", "F1000001"), ("bo", "F1000002"), ("cy", "F1000003")] {
        create_observer(&app, KZ, id, person(id, "Dupont", "FR", document)).await;
    }
    let mut feed = client(&app).follow_observers(KZ, "");
    feed.open().await.unwrap();

    erase(&app, KZ, "").await.unwrap();

    let mut erased = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut feed).await;
        assert_eq!(event.r#type(), pb::ChangeType::Updated);
        assert!(event.erases_personal_data(), "{event:?}");
        let observer = event.observer.unwrap();
        assert_eq!(personal_data(&observer), ["", "", "", ""]);
        erased.push(observer.name);
    }
    assert_eq!(erased, [name("anna"), name("bo"), name("cy")]);
    // A later change of an erased observer is no erasure.
    let mut anna = get_observer(&app, &name("anna")).await;
    anna.deployment_region = "Astana".into();
    update_observer(&app, anna, &["deployment_region"])
        .await
        .unwrap();
    let later = next_event(&mut feed).await;
    assert_eq!(later.r#type(), pb::ChangeType::Updated);
    assert!(!later.erases_personal_data());
    assert!(later.observer.unwrap().personal_data_erase_time.is_some());
}

// ---- exports ----

async fn run_cli(app: &TestApp, args: &[&str]) -> (Option<i32>, String, String) {
    let run = crate::import_export::run(app, args).await;
    (run.code, run.stdout, run.stderr)
}

#[sqlx::test]
async fn an_export_after_erasure_has_empty_personal_columns_and_says_so(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_kz_election(&app, "kz-2024", Some(at("2100-01-01T00:00:00Z"))).await;
    create_observer(&app, KZ, "anna", person("Anna", "Dupont", "FR", "F1000001")).await;
    create_observer(&app, KZ, "li", person("Li", "Wei", "CN", "E1000002")).await;
    let (code, before, _) = run_cli(&app, &["export-observers", "--election", KZ]).await;
    assert_eq!(code, Some(0));
    assert!(before.starts_with("observer_id,"), "{before}");
    let erased = erase(&app, KZ, "").await.unwrap();

    let (code, csv, stderr) = run_cli(&app, &["export-observers", "--election", KZ]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let mut lines = csv.lines();
    let comment = lines.next().unwrap();
    assert_eq!(
        comment,
        format!(
            "# personal data erased at {} (retention of personal data): \
             travel_document_number, date_of_birth, email and phone are empty",
            instant(erased.personal_data_erase_time.as_ref())
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )
    );
    assert!(lines.next().unwrap().starts_with("observer_id,"));
    let parsed = observer_registry::cli::csv_format::parse(csv.as_bytes()).unwrap();
    assert_eq!(parsed.rows.len(), 2);
    use observer_registry::cli::csv_format::Column;
    for row in &parsed.rows {
        for column in [
            Column::TravelDocumentNumber,
            Column::DateOfBirth,
            Column::Email,
            Column::Phone,
        ] {
            assert_eq!(
                row.values[column as usize], "",
                "{column:?} of line {}",
                row.line
            );
        }
        assert!(!row.values[Column::FamilyName as usize].is_empty());
    }
    assert!(stderr.contains("erased"), "{stderr}");

    // Into another election: the file reads (the comment skipped), but a registration needs
    // a travel document, and erased data is not made up: every row is refused by line, and
    // nothing is registered.
    let file = agencies::TempFile::new("erased-export", "csv");
    file.write(&csv);
    let path = file.path().to_str().unwrap().to_owned();
    let (code, _, stderr) = run_cli(
        &app,
        &["import-observers", "--election", "elections/kz-2024", &path],
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("travel_document_number"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(!stderr.contains("line 1:"), "{stderr}");
    assert_eq!(observers_of(&app, "elections/kz-2024").await.len(), 0);
}

// ---- the background erasure ----

fn erasing_options(clock: &ManualClock) -> observer_registry::server::ServeOptions {
    observer_registry::server::ServeOptions {
        clock: clock.clock(),
        personal_data_erase_interval: Some(Duration::from_millis(20)),
        ..test_options()
    }
}

/// `elections/{id}` voting on 2023-03-19 with accreditation closing then and `retention`
/// days (None: the default, 90), with `observers` registered.
async fn election_due(app: &TestApp, id: &str, retention: Option<i32>, observers: usize) {
    app.elections()
        .create_election(pb::CreateElectionRequest {
            election_id: id.into(),
            election: Some(pb::Election {
                personal_data_retention_days: retention,
                ..kz_election("Early parliamentary election")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let people = sco_people(id, observers, "");
    batch_create(app, &format!("elections/{id}"), people, &new_request_id())
        .await
        .unwrap();
}

#[sqlx::test]
async fn the_service_erases_an_election_once_its_retention_period_passed(pool: PgPool) {
    // Voting day 2023-03-19 + 90 days: due at 2023-06-17T00:00:00Z.
    let clock = ManualClock::new(at("2023-06-16T23:59:00Z"));
    let app = spawn_app_with_options(pool.clone(), pool.clone(), erasing_options(&clock)).await;
    create_organizations(&app).await;
    election_due(&app, "kz-2023", None, 2).await;
    election_due(&app, "kz-kept", Some(0), 1).await;
    // Many passes of the eraser before the due time: nothing happens.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        get_election(&app, KZ)
            .await
            .personal_data_erase_time
            .is_none()
    );

    clock.set(at("2023-06-17T00:00:01Z"));
    wait_until(Duration::from_secs(10), "the erasure", || async {
        get_election(&app, KZ)
            .await
            .personal_data_erase_time
            .is_some()
    })
    .await;

    let observers = observers_of(&app, KZ).await;
    assert_eq!(observers.len(), 2);
    for observer in &observers {
        assert_eq!(personal_data(observer), ["", "", "", ""]);
        assert_eq!(
            instant(observer.personal_data_erase_time.as_ref()),
            at("2023-06-17T00:00:01Z")
        );
    }
    let events = erasure_events(&app, KZ).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, ACTOR);
    assert_eq!(
        events[0].reason,
        "personal data of 2 observers erased: the retention period passed"
    );
    assert!(
        app.metrics_text()
            .contains("observer_registry_personal_data_erasures_total 1\n"),
        "{}",
        app.metrics_text()
    );
    // Retention 0 keeps personal data, however late it is.
    clock.set(at("2100-01-01T00:00:00Z"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let kept = get_election(&app, "elections/kz-kept").await;
    assert!(kept.personal_data_erase_time.is_none());
    let kept = observers_of(&app, "elections/kz-kept").await;
    assert!(!kept[0].travel_document_number.is_empty());
    assert_eq!(erasure_events(&app, KZ).await.len(), 1);
}

#[sqlx::test]
async fn two_service_instances_on_one_database_erase_each_election_once(pool: PgPool) {
    let clock = ManualClock::new(at("2023-06-01T00:00:00Z"));
    let first = spawn_app_with_options(pool.clone(), pool.clone(), erasing_options(&clock)).await;
    let second = spawn_app_with_options(pool.clone(), pool.clone(), erasing_options(&clock)).await;
    create_organizations(&first).await;
    let ids = ["kz-a", "kz-b", "kz-c", "kz-d"];
    for id in ids {
        election_due(&first, id, None, 5).await;
    }
    clock.set(at("2023-07-01T00:00:00Z"));
    for id in ids {
        let election = format!("elections/{id}");
        wait_until(Duration::from_secs(10), "the erasure", || async {
            get_election(&second, &election)
                .await
                .personal_data_erase_time
                .is_some()
        })
        .await;
    }
    // More passes of both: nothing happens twice.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in ids {
        let election = format!("elections/{id}");
        assert_eq!(erasure_events(&first, &election).await.len(), 1, "{id}");
        let fed = erasures_fed(&pool, id).await;
        assert_eq!(fed.len(), 5, "{id}: {fed:?}");
        assert!(fed.iter().all(|(_, count)| *count == 1), "{id}: {fed:?}");
    }
}

#[sqlx::test]
async fn erasers_racing_for_the_same_elections_erase_each_once(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    create_organizations(&app).await;
    let ids = ["kz-a", "kz-b", "kz-c", "kz-d", "kz-e", "kz-f"];
    for id in ids {
        election_due(&app, id, None, 3).await;
    }
    let up = || {
        let availability = Availability::new();
        availability.set_database_up(true);
        Arc::new(availability)
    };
    let eraser = || Eraser {
        db: Database {
            pool: pool.clone(),
            availability: up(),
            metrics: Arc::new(Metrics::new()),
            route: Default::default(),
        },
        clock: ManualClock::new(at("2023-07-01T00:00:00Z")).clock(),
        metrics: Arc::new(Metrics::new()),
    };
    let (a, b, c) = (eraser(), eraser(), eraser());
    let (a, b, c) = tokio::join!(a.erase_due(), b.erase_due(), c.erase_due());
    assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), ids.len());
    for id in ids {
        assert_eq!(
            erasure_events(&app, &format!("elections/{id}")).await.len(),
            1
        );
        assert_eq!(erasures_fed(&pool, id).await.len(), 3);
    }
}

// ---- PostgreSQL holds the rules too ----

#[sqlx::test]
async fn postgresql_refuses_what_erasure_forbids_when_it_comes_as_sql(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    let anna = create_observer(&app, KZ, "anna", person("Anna", "Dupont", "FR", "F1000001")).await;
    accredit(&app, &anna.name).await.unwrap();
    create_observer(&app, KZ, "bo", person("Bo", "Ray", "FR", "F1000002")).await;
    let refusals = [
        // A document emptied without an erasure, and an erasure that keeps data.
        (
            "UPDATE observers SET travel_document_number = NULL WHERE id = 'bo'",
            "observers_personal_data_erased",
        ),
        (
            "UPDATE observers SET personal_data_erase_time = now(), travel_document_number = NULL, \
             date_of_birth = NULL, email = '' WHERE id = 'bo'",
            "observers_personal_data_erased",
        ),
        // A decided observer's document changes only by a correction, or by the erasure.
        (
            "UPDATE observers SET travel_document_number = 'F9999999' WHERE id = 'anna'",
            "observers_identity_after_decision",
        ),
        (
            "UPDATE observers SET personal_data_erase_time = now(), travel_document_number = NULL, \
             date_of_birth = NULL, email = '', phone = '', given_name = 'Someone' WHERE id = 'anna'",
            "observers_identity_after_decision",
        ),
        (
            "INSERT INTO observers (election_id, id, given_name, family_name, citizenship, \
             organization_id, travel_document_number, personal_data_erase_time) \
             VALUES ('kz-2023', 'new', 'N', 'N', 'FR', 'sco', 'F7777777', now())",
            "observers_personal_data_erased",
        ),
    ];
    for (sql, constraint) in refusals {
        assert_eq!(refused(&pool, sql).await, constraint, "{sql}");
    }
    // The erasure itself passes every rule, for a decided observer too.
    sqlx::query(
        "UPDATE observers SET personal_data_erase_time = now(), travel_document_number = NULL, \
         date_of_birth = NULL, email = '', phone = '' WHERE election_id = 'kz-2023'",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE elections SET personal_data_erase_time = now() WHERE id = 'kz-2023'")
        .execute(&pool)
        .await
        .unwrap();
    let after_erasure = [
        (
            "UPDATE observers SET email = 'anna@back.example' WHERE id = 'anna'",
            "observers_personal_data_erased",
        ),
        (
            "UPDATE observers SET travel_document_number = 'F1000002' WHERE id = 'bo'",
            "observers_personal_data_erased",
        ),
        (
            "UPDATE observers SET personal_data_erase_time = NULL, travel_document_number = 'F1000002' \
             WHERE id = 'bo'",
            "observers_personal_data_erased",
        ),
        (
            "UPDATE elections SET personal_data_erase_time = NULL WHERE id = 'kz-2023'",
            "elections_personal_data_erased",
        ),
        (
            "INSERT INTO observers (election_id, id, given_name, family_name, citizenship, \
             organization_id, travel_document_number) \
             VALUES ('kz-2023', 'late', 'L', 'L', 'FR', 'sco', 'F8888888')",
            "observers_personal_data_erased",
        ),
    ];
    for (sql, constraint) in after_erasure {
        assert_eq!(refused(&pool, sql).await, constraint, "{sql}");
    }
    // Two erased observers of one citizenship are not one person.
    let erased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM observers WHERE citizenship = 'FR' AND travel_document_number IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(erased, 2);
}
