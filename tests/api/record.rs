//! The record is the official record (API.md), end to end as a hostile registrar would try
//! it: identities fixed once decided (CorrectObserver instead), accredited observers revoked
//! and never deleted, one number sequence per host country and year, elections with
//! decisions never wiped, canonical travel documents, clean text — and PostgreSQL refusing
//! the same changes when they come as plain SQL.

use crate::common::{self, agencies, registry};

use agencies::*;
use common::*;
use observer_registry::pb::v1 as pb;
use pb::AccreditationState as State;
use registry::*;
use sqlx::PgPool;
use tonic::Code;

fn name(id: &str) -> String {
    format!("{KZ}/observers/{id}")
}

fn anna() -> pb::Observer {
    observer("Anna", "Lee", "DE", "sco", "C01X00T47")
}

/// An election with one accredited observer, `anna`.
async fn with_accredited_anna(app: &TestApp) -> pb::Observer {
    open_election(app, "kz-2023").await;
    create_observer(app, KZ, "anna", anna()).await;
    accredit(app, &name("anna")).await.unwrap()
}

fn correct_request(
    observer: pb::Observer,
    paths: &[&str],
    reason: &str,
) -> pb::CorrectObserverRequest {
    pb::CorrectObserverRequest {
        observer: Some(observer),
        update_mask: mask(paths),
        reason: reason.to_owned(),
    }
}

async fn audit_events(app: &TestApp, resource: &str) -> Vec<pb::AuditEvent> {
    pb::audit_service_client::AuditServiceClient::new(app.channel.clone())
        .list_audit_events(pb::ListAuditEventsRequest {
            parent: KZ.to_owned(),
            filter: format!("resource = \"{resource}\""),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events
}

// ---- identity after a decision ----

#[sqlx::test]
async fn a_decided_observers_identity_cannot_be_rewritten_by_update(pool: PgPool) {
    let app = spawn_app(pool).await;
    let accredited = with_accredited_anna(&app).await;

    let rewritten = pb::Observer {
        name: name("anna"),
        given_name: "Someone".into(),
        family_name: "Else".into(),
        citizenship: "FR".into(),
        travel_document_number: "ZZ9999999".into(),
        ..anna()
    };
    let status = update_observer(
        &app,
        rewritten,
        &[
            "given_name",
            "family_name",
            "citizenship",
            "travel_document_number",
        ],
    )
    .await
    .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "OBSERVER_DECIDED");
    assert_eq!(
        violated_fields(&status),
        [
            "observer.given_name",
            "observer.family_name",
            "observer.citizenship",
            "observer.travel_document_number"
        ]
    );
    let unchanged = get_observer(&app, &name("anna")).await;
    assert_eq!(unchanged.given_name, "Anna");
    assert_eq!(unchanged.etag, accredited.etag);

    // Sending the identity again unchanged, with contacts that do change, is fine.
    let contacts = pb::Observer {
        name: name("anna"),
        email: "anna@example.org".into(),
        deployment_region: "Astana".into(),
        ..anna()
    };
    let updated = update_observer(&app, contacts, &[]).await.unwrap();
    assert_eq!(updated.email, "anna@example.org");
    assert_eq!(updated.deployment_region, "Astana");
    assert_eq!(updated.given_name, "Anna");
}

#[sqlx::test]
async fn rejected_and_revoked_observers_keep_their_identity_too(pool: PgPool) {
    let app = spawn_app(pool).await;
    with_accredited_anna(&app).await;
    revoke(&app, &name("anna"), "left the mission")
        .await
        .unwrap();
    create_observer(
        &app,
        KZ,
        "bo",
        observer("Bo", "Ray", "FR", "sco", "F00000001"),
    )
    .await;
    reject(&app, &name("bo"), "no invitation").await.unwrap();
    for id in ["anna", "bo"] {
        let changed = pb::Observer {
            name: name(id),
            date_of_birth: "1970-01-01".into(),
            ..Default::default()
        };
        let status = update_observer(&app, changed, &["date_of_birth"])
            .await
            .unwrap_err();
        assert_error(&status, Code::FailedPrecondition, "OBSERVER_DECIDED");
    }
}

#[sqlx::test]
async fn the_accreditation_office_corrects_an_identity_with_a_reason_on_record(pool: PgPool) {
    let app = spawn_app(pool).await;
    let accredited = with_accredited_anna(&app).await;

    let corrected = pb::Observer {
        name: name("anna"),
        family_name: "Leigh".into(),
        ..Default::default()
    };
    let missing_reason = app
        .observers()
        .correct_observer(correct_request(corrected.clone(), &["family_name"], "  "))
        .await
        .unwrap_err();
    assert_invalid(&missing_reason, "INVALID_ARGUMENT", &["reason"]);
    let not_identity = app
        .observers()
        .correct_observer(correct_request(
            corrected.clone(),
            &["family_name", "email"],
            "typo",
        ))
        .await
        .unwrap_err();
    assert_invalid(&not_identity, "INVALID_ARGUMENT", &["update_mask"]);

    let observer = app
        .observers()
        .correct_observer(correct_request(
            corrected,
            &["familyName"],
            "family name misspelled on the badge",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(observer.family_name, "Leigh");
    assert_eq!(state(&observer), State::Accredited);
    assert_eq!(number(&observer), number(&accredited));

    let events = audit_events(&app, &name("anna")).await;
    let correction = events.last().unwrap();
    assert_eq!(
        correction.method,
        "/observer_registry.v1.ObserverService/CorrectObserver"
    );
    assert_eq!(correction.reason, "family name misspelled on the badge");
    assert_eq!(correction.changed_fields, ["family_name"]);
}

#[sqlx::test]
async fn a_correction_still_obeys_the_registration_rules(pool: PgPool) {
    let app = spawn_app(pool).await;
    with_accredited_anna(&app).await;
    let to_host = pb::Observer {
        name: name("anna"),
        citizenship: "KZ".into(),
        ..Default::default()
    };
    let status = app
        .observers()
        .correct_observer(correct_request(to_host, &["citizenship"], "wrong country"))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "HOST_COUNTRY_CITIZEN");
}

// ---- deletion ----

#[sqlx::test]
async fn an_accredited_observer_is_revoked_never_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    with_accredited_anna(&app).await;
    let status = delete_observer(&app, &name("anna"), "").await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "OBSERVER_ACCREDITED");
    assert!(
        get_observer(&app, &name("anna"))
            .await
            .delete_time
            .is_none()
    );

    revoke(&app, &name("anna"), "left the mission")
        .await
        .unwrap();
    let deleted = delete_observer(&app, &name("anna"), "").await.unwrap();
    assert!(deleted.delete_time.is_some());
    assert_eq!(state(&deleted), State::Revoked);
}

#[sqlx::test]
async fn a_head_removed_with_its_observer_is_audited_and_fed_as_an_update_of_the_delegation(
    pool: PgPool,
) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    let sco = create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    create_observer(&app, KZ, "anna", member(anna(), &sco.name)).await;
    set_head(&app, &sco.name, &name("anna")).await.unwrap();

    delete_observer(&app, &name("anna"), "").await.unwrap();

    assert_eq!(get_delegation(&app, &sco.name).await.head, "");
    let events = audit_events(&app, &sco.name).await;
    let cleared = events.last().unwrap();
    assert_eq!(
        cleared.method,
        "/observer_registry.v1.ObserverService/DeleteObserver"
    );
    assert!(
        cleared.changed_fields.contains(&"head".to_owned()),
        "{:?}",
        cleared.changed_fields
    );
    let fed: Vec<String> = sqlx::query_scalar(
        "SELECT change_type FROM changes WHERE resource_type = 'delegation' ORDER BY serial",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(fed.last().map(String::as_str), Some("UPDATED"));
}

// ---- numbers ----

#[sqlx::test]
async fn numbers_run_on_across_elections_of_one_country_and_year(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_kz_election(
        &app,
        "kz-2023-runoff",
        Some(chrono::Utc::now() + chrono::Duration::days(1)),
    )
    .await;
    let runoff = "elections/kz-2023-runoff";
    create_observer(&app, KZ, "anna", anna()).await;
    create_observer(&app, runoff, "anna", anna()).await;
    let first = accredit(&app, &name("anna")).await.unwrap();
    let second = accredit(&app, &format!("{runoff}/observers/anna"))
        .await
        .unwrap();
    assert_eq!(number(&first), "KZ-2023-000001");
    assert_eq!(number(&second), "KZ-2023-000002");
}

#[sqlx::test]
async fn an_election_with_decisions_is_never_wiped_and_a_wiped_one_issues_no_number_twice(
    pool: PgPool,
) {
    let app = spawn_app(pool.clone()).await;
    with_accredited_anna(&app).await;
    let status = delete_election(&app, KZ, true).await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "HAS_DECIDED_OBSERVERS");
    assert_eq!(
        state(&get_observer(&app, &name("anna")).await),
        State::Accredited
    );

    // Another election of the same country and year, with pending observers only, goes with
    // force; each removed child has its own audit event and DELETED feed event.
    let deadline = Some(chrono::Utc::now() + chrono::Duration::days(1));
    create_kz_election(&app, "kz-2023-b", deadline).await;
    let other = "elections/kz-2023-b";
    create_observer(
        &app,
        other,
        "bo",
        observer("Bo", "Ray", "FR", "sco", "F00000001"),
    )
    .await;
    create_observer(
        &app,
        other,
        "cy",
        observer("Cy", "Ng", "CN", "sco", "G00000001"),
    )
    .await;
    delete_election(&app, other, true).await.unwrap();
    let removed: Vec<(String, String)> = sqlx::query_as(
        "SELECT resource, method FROM audit_events WHERE election_id = 'kz-2023-b' \
         AND resource LIKE '%/observers/%' AND method LIKE '%/DeleteElection' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        removed.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        [
            format!("{other}/observers/bo"),
            format!("{other}/observers/cy")
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
    );
    let deleted_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM changes WHERE election_id = 'kz-2023-b' AND change_type = 'DELETED' \
         AND resource_type = 'observer'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(deleted_events, 2);

    // Created again under the same id, it continues the sequence.
    create_kz_election(&app, "kz-2023-b", deadline).await;
    create_observer(
        &app,
        other,
        "bo",
        observer("Bo", "Ray", "FR", "sco", "F00000001"),
    )
    .await;
    let again = accredit(&app, &format!("{other}/observers/bo"))
        .await
        .unwrap();
    assert_eq!(number(&again), "KZ-2023-000002");
}

#[sqlx::test]
async fn the_numbering_of_decided_observers_cannot_move(pool: PgPool) {
    let app = spawn_app(pool).await;
    with_accredited_anna(&app).await;
    let status = app
        .elections()
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: KZ.into(),
                voting_day: "2024-03-19".into(),
                ..Default::default()
            }),
            update_mask: mask(&["voting_day"]),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "HAS_DECIDED_OBSERVERS");
}

// ---- travel documents and text ----

#[sqlx::test]
async fn a_travel_document_written_differently_is_the_same_person(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let first = create_observer(
        &app,
        KZ,
        "anna",
        observer("Anna", "Lee", "DE", "sco", "AB 123 4567"),
    )
    .await;
    assert_eq!(first.travel_document_number, "AB1234567");
    for (i, written) in ["AB-1234567", "ab1234567", "AB.123.4567"]
        .into_iter()
        .enumerate()
    {
        let status = try_create_observer(
            &app,
            KZ,
            &format!("again-{i}"),
            observer("Anna", "Lee", "DE", "sco", written),
        )
        .await
        .unwrap_err();
        assert_error(&status, Code::AlreadyExists, "DUPLICATE_OBSERVER");
    }
    // A filter on the document finds it however the caller writes it.
    let found = list_observers(
        &app,
        pb::ListObserversRequest {
            parent: KZ.into(),
            filter: r#"travel_document_number = "ab 123-4567""#.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(found.observers.len(), 1);
    assert_eq!(found.observers[0].name, name("anna"));
}

#[sqlx::test]
async fn look_alike_and_invisible_characters_in_a_document_number_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    for written in [
        "AB1234567\u{200b}",
        "\u{410}\u{412}1234567",
        "AB\t1234567",
        "A1",
    ] {
        let status = try_create_observer(
            &app,
            KZ,
            "anna",
            observer("Anna", "Lee", "DE", "sco", written),
        )
        .await
        .unwrap_err();
        assert_invalid(
            &status,
            "INVALID_ARGUMENT",
            &["observer.travel_document_number"],
        );
    }
    assert!(observer_ids(&app, KZ, "", "").await.is_empty());
}

#[sqlx::test]
async fn control_characters_in_text_are_invalid_arguments_never_internal(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    for (given, family) in [
        ("An\u{0}na", "Lee"),
        ("Anna", "L\u{7}ee"),
        ("Anna\u{202e}", "Lee"),
    ] {
        let status = try_create_observer(
            &app,
            KZ,
            "anna",
            observer(given, family, "DE", "sco", "C01X00T47"),
        )
        .await
        .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{given:?} {family:?}: {status:?}"
        );
        assert_eq!(violated_fields(&status).len(), 1);
    }
    // Text is stored composed (NFC): "é" sent as e + U+0301 comes back as one character.
    let composed = create_observer(
        &app,
        KZ,
        "jose",
        observer("Jose\u{301}", "Lee", "DE", "sco", "C01X00T48"),
    )
    .await;
    assert_eq!(composed.given_name, "Jos\u{e9}");
    let status = app
        .elections()
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: KZ.into(),
                description: "line one\nline two\u{0}".into(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "INVALID_ARGUMENT", &["election.description"]);
}

// ---- who may learn who holds a document ----

#[sqlx::test]
async fn a_duplicate_names_the_existing_observer_only_to_personal_data_readers(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool, "duplicate").await;
    let admin = agencies.client(&app, ADMIN);
    let organization = pb::CreateOrganizationRequest {
        organization_id: "sco".into(),
        organization: Some(pb::Organization {
            display_name: "Shanghai Cooperation Organization".into(),
            kind: pb::OrganizationKind::InternationalOrganization.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    admin
        .organizations()
        .create_organization(organization)
        .await
        .unwrap();
    admin
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Early parliamentary election")),
            ..Default::default()
        })
        .await
        .unwrap();
    let registrar = agencies.client(&app, REGISTRAR);
    registrar
        .observers()
        .create_observer(create_observer_request(KZ, "anna", anna()))
        .await
        .unwrap();

    let probe = pb::BatchCreateObserversRequest {
        parent: KZ.into(),
        requests: vec![create_observer_request("", "probe", anna())],
        validate_only: true,
        ..Default::default()
    };
    let withheld = registrar
        .observers()
        .batch_create_observers(probe.clone())
        .await
        .unwrap_err();
    assert_error(&withheld, Code::AlreadyExists, "DUPLICATE_OBSERVER");
    let details = format!("{withheld:?}");
    assert!(!details.contains("observers/anna"), "{details}");

    let named = agencies
        .client(&app, REGISTRAR_PD)
        .observers()
        .batch_create_observers(probe)
        .await
        .unwrap_err();
    assert_error(&named, Code::AlreadyExists, "DUPLICATE_OBSERVER");
    assert!(format!("{named:?}").contains("observers/anna"));
}

// ---- PostgreSQL holds the rules for every code path ----

#[sqlx::test]
async fn postgresql_refuses_what_the_rules_forbid_when_it_comes_as_sql(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    with_accredited_anna(&app).await;
    create_observer(
        &app,
        KZ,
        "bo",
        observer("Bo", "Ray", "FR", "sco", "F00000001"),
    )
    .await;
    let refusals = [
        (
            "UPDATE observers SET given_name = 'Someone' WHERE id = 'anna'",
            "observers_identity_after_decision",
        ),
        (
            "UPDATE observers SET delete_time = now() WHERE id = 'anna'",
            "observers_accredited_not_deleted",
        ),
        (
            "DELETE FROM observers WHERE id = 'anna'",
            "observers_decided_kept",
        ),
        (
            "UPDATE observers SET accreditation_state = 'PENDING', accreditation_number = NULL WHERE id = 'anna'",
            "observers_accreditation_transition",
        ),
        (
            "UPDATE observers SET accreditation_state = 'ACCREDITED', decide_time = now(), \
             accreditation_number = 'KZ-2023-000001' WHERE id = 'bo'",
            "observers_accreditation_number_next",
        ),
        (
            "UPDATE observers SET accreditation_state = 'ACCREDITED', decide_time = now(), \
             accreditation_number = 'KZ-2023-000005' WHERE id = 'bo'",
            "observers_accreditation_number_next",
        ),
        (
            "INSERT INTO observers (election_id, id, given_name, family_name, citizenship, \
             organization_id, travel_document_number, accreditation_state, accreditation_number, \
             decide_time) VALUES ('kz-2023', 'cy', 'Cy', 'Ng', 'CN', 'sco', 'G00000001', \
             'ACCREDITED', 'KZ-2023-000009', now())",
            "observers_accreditation_transition",
        ),
        (
            "UPDATE observers SET travel_document_number = 'f 0000-0001' WHERE id = 'bo'",
            "observers_travel_document_canonical",
        ),
        (
            "UPDATE observers SET family_name = E'Ray\\x07' WHERE id = 'bo'",
            "observers_text",
        ),
        (
            "UPDATE observers SET family_name = 'Ray' || chr(8203) WHERE id = 'bo'",
            "observers_text",
        ),
        (
            "UPDATE elections SET display_name = E'Vote\\x01' WHERE id = 'kz-2023'",
            "elections_text",
        ),
        (
            "UPDATE accreditation_sequences SET last_number = last_number + 2",
            "accreditation_sequences_forward_only",
        ),
        (
            "UPDATE accreditation_sequences SET last_number = last_number - 1",
            "accreditation_sequences_forward_only",
        ),
        (
            "DELETE FROM accreditation_sequences",
            "accreditation_sequences_forward_only",
        ),
        // A number taken but not issued would leave a gap: refused at commit.
        (
            "UPDATE accreditation_sequences SET last_number = last_number + 1",
            "accreditation_sequences_without_gaps",
        ),
    ];
    for (sql, constraint) in refusals {
        assert_eq!(refused(&pool, sql).await, constraint, "{sql}");
    }
    let anna = get_observer(&app, &name("anna")).await;
    assert_eq!(
        (anna.given_name.as_str(), number(&anna)),
        ("Anna", "KZ-2023-000001")
    );

    // The sequence issues the next number itself when SQL accredits without one.
    sqlx::query(
        "UPDATE observers SET accreditation_state = 'ACCREDITED', decide_time = now() WHERE id = 'bo'",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        number(&get_observer(&app, &name("bo")).await),
        "KZ-2023-000002"
    );
}

// ---- existing data ----

/// The migrations up to the one that made the record official, on a fresh database.
async fn migrated_before_official_record(pool: &PgPool) -> sqlx::migrate::Migrator {
    let all = &observer_registry::database::MIGRATOR;
    let official = all
        .migrations
        .iter()
        .position(|m| m.description.contains("official record"))
        .expect("the official record migration");
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(all.migrations[..official].to_vec()),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO elections (id, display_name, host_country, voting_day) \
           VALUES ('kz-2023', 'Election', 'KZ', '2023-03-19'); \
         INSERT INTO organizations (id, display_name, kind) \
           VALUES ('sco', 'SCO', 'INTERNATIONAL_ORGANIZATION');",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(all.migrations.to_vec()),
        ..sqlx::migrate::Migrator::DEFAULT
    }
}

#[sqlx::test(migrations = false)]
async fn existing_document_numbers_are_canonicalized_by_the_migration(pool: PgPool) {
    let migrator = migrated_before_official_record(&pool).await;
    sqlx::raw_sql(
        "INSERT INTO observers (election_id, id, given_name, family_name, citizenship, \
         organization_id, travel_document_number) VALUES \
         ('kz-2023', 'anna', E'Anna\\x07', 'Lee', 'DE', 'sco', 'ab 123-4567')",
    )
    .execute(&pool)
    .await
    .unwrap();
    migrator.run(&pool).await.unwrap();
    let (given, document): (String, String) = sqlx::query_as(
        "SELECT given_name, travel_document_number FROM observers WHERE id = 'anna'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((given.as_str(), document.as_str()), ("Anna", "AB1234567"));
}

#[sqlx::test(migrations = false)]
async fn a_migration_that_would_merge_two_people_stops_and_names_them(pool: PgPool) {
    let migrator = migrated_before_official_record(&pool).await;
    sqlx::raw_sql(
        "INSERT INTO observers (election_id, id, given_name, family_name, citizenship, \
         organization_id, travel_document_number) VALUES \
         ('kz-2023', 'anna', 'Anna', 'Lee', 'DE', 'sco', 'AB 123 4567'), \
         ('kz-2023', 'anna-again', 'Anna', 'Lee', 'DE', 'sco', 'ab1234567')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let error = migrator.run(&pool).await.unwrap_err().to_string();
    assert!(error.contains("one person"), "{error}");
    assert!(error.contains("anna, anna-again"), "{error}");
    let documents: Vec<String> =
        sqlx::query_scalar("SELECT travel_document_number FROM observers ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(documents, ["AB 123 4567", "ab1234567"]);
}
