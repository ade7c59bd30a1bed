//! ObserverService end to end: a real server, the generated client, a fresh database.
//! Registration, the one-person-once rule, delegations, accreditation and its numbers,
//! batches, soft delete and lists.

use crate::common::{self, registry};

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use common::*;
use observer_registry::pb::v1 as pb;
use pb::AccreditationState as State;
use pb::ObserverRole as Role;
use registry::*;
use sqlx::PgPool;
use tonic::Code;

const SCO: &str = "elections/kz-2023/delegations/sco";

fn name(id: &str) -> String {
    format!("{KZ}/observers/{id}")
}

fn huseynova() -> pb::Observer {
    observer("Leyla", "Huseynova", "AZ", "cec-az", "C01234567")
}

#[sqlx::test]
async fn an_observer_is_registered_pending_and_read_back(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(
        &app,
        KZ,
        "cec-az",
        delegation("CEC of Azerbaijan", "cec-az"),
    )
    .await;

    let created = create_observer(
        &app,
        KZ,
        "huseynova",
        pb::Observer {
            delegation: format!("{KZ}/delegations/cec-az"),
            role: Role::Coordinator.into(),
            travel_document_number: " c01234567 ".into(),
            date_of_birth: "1971-05-04".into(),
            email: "l.huseynova@example.org".into(),
            phone: "+994123456789".into(),
            deployment_region: "Astana".into(),
            ..huseynova()
        },
    )
    .await;
    assert_eq!(created.name, "elections/kz-2023/observers/huseynova");
    assert_eq!(created.given_name, "Leyla");
    assert_eq!(created.family_name, "Huseynova");
    assert_eq!(created.citizenship, "AZ");
    assert_eq!(created.organization, "organizations/cec-az");
    assert_eq!(created.delegation, "elections/kz-2023/delegations/cec-az");
    assert_eq!(created.role(), Role::Coordinator);
    assert_eq!(
        created.travel_document_number, "C01234567",
        "trimmed and upper-cased"
    );
    assert_eq!(created.date_of_birth, "1971-05-04");
    assert_eq!(created.email, "l.huseynova@example.org");
    assert_eq!(created.phone, "+994123456789");
    assert_eq!(created.deployment_region, "Astana");
    let decision = accreditation(&created);
    assert_eq!(decision.state(), State::Pending);
    assert_eq!(decision.number, "");
    assert!(decision.decide_time.is_none());
    assert_eq!(decision.reason, "");
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert!(created.delete_time.is_none());
    assert!(!created.etag.is_empty());

    assert_eq!(get_observer(&app, &created.name).await, created);
    let listed = list_observers(
        &app,
        pb::ListObserversRequest {
            parent: KZ.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.observers, vec![created.clone()]);
    assert_eq!(listed.total_size, 1);

    let generated = create_observer(
        &app,
        KZ,
        "",
        observer("Ion", "Rusu", "MD", "cec-az", "B00000001"),
    )
    .await;
    let id = generated
        .name
        .strip_prefix("elections/kz-2023/observers/")
        .unwrap();
    assert!(uuid::Uuid::try_parse(id).is_ok(), "{id} is not a UUID");
}

#[sqlx::test]
async fn every_missing_or_bad_field_is_named_and_nothing_is_written(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let error = try_create_observer(
        &app,
        KZ,
        "someone",
        pb::Observer {
            given_name: " ".into(),
            date_of_birth: "1971-02-30".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &[
            "observer.given_name",
            "observer.family_name",
            "observer.citizenship",
            "observer.organization",
            "observer.travel_document_number",
            "observer.date_of_birth",
        ],
    );

    let error = try_create_observer(
        &app,
        KZ,
        "huseynova",
        pb::Observer {
            travel_document_number: "   ".into(),
            date_of_birth: "04.05.1971".into(),
            ..huseynova()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["observer.travel_document_number", "observer.date_of_birth"],
    );

    let error = app
        .observers()
        .create_observer(pb::CreateObserverRequest {
            parent: KZ.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["observer"]);

    let error = try_create_observer(&app, KZ, "Huseynova", huseynova())
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["observer_id"]);
    assert_eq!(app.count("observers").await, 0);
}

#[sqlx::test]
async fn an_unknown_or_lower_case_citizenship_is_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    for citizenship in ["XX", "az", "AZE", "A1"] {
        let error = try_create_observer(
            &app,
            KZ,
            "huseynova",
            pb::Observer {
                citizenship: citizenship.into(),
                ..huseynova()
            },
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["observer.citizenship"]);
    }
    assert_eq!(app.count("observers").await, 0);
}

#[sqlx::test]
async fn a_citizen_of_the_host_country_is_refused_on_create_and_on_update(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let error = try_create_observer(
        &app,
        KZ,
        "abdirov",
        observer("Nurlan", "Abdirov", "KZ", "sco", "N0000001"),
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HOST_COUNTRY_CITIZEN");
    assert_eq!(violated_fields(&error), vec!["observer.citizenship"]);
    assert_eq!(app.count("observers").await, 0);

    let created = create_observer(&app, KZ, "huseynova", huseynova()).await;
    let error = update_observer(
        &app,
        pb::Observer {
            name: created.name.clone(),
            citizenship: "KZ".into(),
            ..Default::default()
        },
        &["citizenship"],
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HOST_COUNTRY_CITIZEN");
    assert_eq!(get_observer(&app, &created.name).await, created);

    // A Kazakh citizen may observe an election elsewhere.
    app.elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "az-2024".into(),
            election: Some(pb::Election {
                host_country: "AZ".into(),
                voting_day: "2024-02-07".into(),
                ..kz_election("Presidential election")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    create_observer(
        &app,
        "elections/az-2024",
        "abdirov",
        observer("Nurlan", "Abdirov", "KZ", "sco", "N0000001"),
    )
    .await;
}

#[sqlx::test]
async fn a_malformed_or_unknown_organization_is_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    for organization in ["cec-az", "organizations/CEC-AZ", "organizations/nowhere"] {
        let error = try_create_observer(
            &app,
            KZ,
            "huseynova",
            pb::Observer {
                organization: organization.into(),
                ..huseynova()
            },
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["observer.organization"]);
    }
    let error = try_create_observer(&app, "elections/nowhere", "huseynova", huseynova())
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    assert_eq!(app.count("observers").await, 0);
}

#[sqlx::test]
async fn the_delegation_must_be_a_live_one_of_the_same_election_and_organization(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_kz_election(&app, "kz-2024", None).await;
    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    create_delegation(&app, KZ, "cis-ipa", delegation("CIS IPA group", "cis-ipa")).await;
    create_delegation(&app, KZ, "gone", delegation("SCO, cancelled", "sco")).await;
    delete_delegation(&app, "elections/kz-2023/delegations/gone", "")
        .await
        .unwrap();
    create_delegation(
        &app,
        "elections/kz-2024",
        "sco",
        delegation("SCO mission 2024", "sco"),
    )
    .await;

    let wang = || observer("Lei", "Wang", "CN", "sco", "E20000001");
    for delegation in [
        "elections/kz-2023/delegations/cis-ipa",
        "elections/kz-2024/delegations/sco",
        "elections/kz-2023/delegations/gone",
        "elections/kz-2023/delegations/nowhere",
    ] {
        let error = try_create_observer(&app, KZ, "wang", member(wang(), delegation))
            .await
            .unwrap_err();
        assert_error(
            &error,
            Code::FailedPrecondition,
            "DELEGATION_ORGANIZATION_MISMATCH",
        );
    }
    assert_eq!(app.count("observers").await, 0);

    let wang = create_observer(&app, KZ, "wang", member(wang(), SCO)).await;
    assert_eq!(wang.delegation, SCO);

    // On update: another organization's delegation, or another organization while staying.
    let error = move_to(&app, &wang.name, "elections/kz-2023/delegations/cis-ipa")
        .await
        .unwrap_err();
    assert_error(
        &error,
        Code::FailedPrecondition,
        "DELEGATION_ORGANIZATION_MISMATCH",
    );
    let error = update_observer(
        &app,
        pb::Observer {
            name: wang.name.clone(),
            organization: "organizations/cis-ipa".into(),
            ..Default::default()
        },
        &["organization"],
    )
    .await
    .unwrap_err();
    assert_error(
        &error,
        Code::FailedPrecondition,
        "DELEGATION_ORGANIZATION_MISMATCH",
    );
    assert_eq!(get_observer(&app, &wang.name).await, wang);

    // Both together are a consistent move.
    let moved = update_observer(
        &app,
        pb::Observer {
            name: wang.name.clone(),
            organization: "organizations/cis-ipa".into(),
            delegation: "elections/kz-2023/delegations/cis-ipa".into(),
            ..Default::default()
        },
        &["organization", "delegation"],
    )
    .await
    .unwrap();
    assert_eq!(moved.delegation, "elections/kz-2023/delegations/cis-ipa");
    assert_eq!(
        member_count(&app, "elections/kz-2023/delegations/cis-ipa").await,
        1
    );
    assert_eq!(member_count(&app, SCO).await, 0);
}

#[sqlx::test]
async fn one_person_is_registered_once_per_election_among_observers_not_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_kz_election(&app, "kz-2024", None).await;
    let first = create_observer(&app, KZ, "huseynova", huseynova()).await;

    // Same citizenship and document, however the number is typed.
    let error = try_create_observer(
        &app,
        KZ,
        "huseynova-2",
        pb::Observer {
            given_name: "Leila".into(),
            travel_document_number: " c01234567".into(),
            ..huseynova()
        },
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::AlreadyExists, "DUPLICATE_OBSERVER");
    assert_eq!(app.count("observers").await, 1);

    // Another country's document with the same number is another person; so is the same
    // person in another election.
    create_observer(
        &app,
        KZ,
        "yilmaz",
        observer("Mehmet", "Yilmaz", "TR", "cec-az", "C01234567"),
    )
    .await;
    create_observer(&app, "elections/kz-2024", "huseynova", huseynova()).await;

    // The rule holds on update.
    let other = create_observer(
        &app,
        KZ,
        "mammadov",
        observer("Elchin", "Mammadov", "AZ", "cec-az", "C07654321"),
    )
    .await;
    let error = update_observer(
        &app,
        pb::Observer {
            name: other.name.clone(),
            travel_document_number: "c01234567".into(),
            ..Default::default()
        },
        &["travel_document_number"],
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::AlreadyExists, "DUPLICATE_OBSERVER");
    assert_eq!(get_observer(&app, &other.name).await, other);

    // Once deleted, the person may be registered again; the old record then cannot return.
    delete_observer(&app, &first.name, "").await.unwrap();
    let again = create_observer(&app, KZ, "huseynova-2", huseynova()).await;
    assert_eq!(again.travel_document_number, "C01234567");
    let error = undelete_observer(&app, &first.name, "").await.unwrap_err();
    assert_error(&error, Code::AlreadyExists, "DUPLICATE_OBSERVER");
    assert!(get_observer(&app, &first.name).await.delete_time.is_some());
}

#[sqlx::test]
async fn a_replayed_request_id_returns_the_first_observer_and_a_taken_id_is_already_exists(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let request = pb::CreateObserverRequest {
        request_id: new_request_id(),
        ..create_observer_request(KZ, "", huseynova())
    };
    let first = app
        .observers()
        .create_observer(request.clone())
        .await
        .unwrap()
        .into_inner();
    let second = app
        .observers()
        .create_observer(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    assert_eq!(app.count("observers").await, 1);

    create_observer(
        &app,
        KZ,
        "rusu",
        observer("Ion", "Rusu", "MD", "cec-az", "B00000001"),
    )
    .await;
    let error = try_create_observer(
        &app,
        KZ,
        "rusu",
        observer("Maria", "Rusu", "MD", "cec-az", "B00000002"),
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::AlreadyExists, "ALREADY_EXISTS");
    assert_eq!(app.count("observers").await, 2);
    assert_eq!(get_observer(&app, &name("rusu")).await.given_name, "Ion");
}

#[sqlx::test]
async fn concurrent_replays_of_one_request_id_register_one_observer_audited_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let request = pb::CreateObserverRequest {
        request_id: new_request_id(),
        ..create_observer_request(KZ, "", huseynova())
    };
    let calls = (0..10).map(|_| {
        let mut client = app.observers();
        let request = request.clone();
        tokio::spawn(async move {
            client
                .create_observer(request)
                .await
                .map(|r| r.into_inner())
        })
    });
    let observers: Vec<pb::Observer> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert!(
        observers.iter().all(|o| *o == observers[0]),
        "{observers:?}"
    );
    assert_eq!(app.count("observers").await, 1);
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE method LIKE '%/CreateObserver'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(events, 1);
}

#[sqlx::test]
async fn a_create_with_a_request_id_in_an_unknown_election_is_not_found_and_not_remembered(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let request = pb::CreateObserverRequest {
        request_id: new_request_id(),
        ..create_observer_request("elections/nowhere", "", huseynova())
    };
    for _ in 0..2 {
        let error = app
            .observers()
            .create_observer(request.clone())
            .await
            .unwrap_err();
        assert_error(&error, Code::NotFound, "NOT_FOUND");
    }
    assert_eq!(app.count("request_ids").await, 0);
}

#[sqlx::test]
async fn accreditation_numbers_are_assigned_in_order_and_never_reused(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    batch_create(&app, KZ, sco_people("p", 4, ""), "")
        .await
        .unwrap();

    let pending = get_observer(&app, &name("p-0")).await;
    let first = accredit(&app, &name("p-0")).await.unwrap();
    assert_eq!(state(&first), State::Accredited);
    assert_eq!(number(&first), "KZ-2023-000001");
    assert!(accreditation(&first).decide_time.is_some());
    assert_eq!(accreditation(&first).reason, "");
    assert_ne!(first.etag, pending.etag);
    assert_eq!(get_observer(&app, &first.name).await, first);

    let second = accredit(&app, &name("p-1")).await.unwrap();
    assert_eq!(number(&second), "KZ-2023-000002");

    let revoked = revoke(&app, &name("p-0"), "left the country on 18 March")
        .await
        .unwrap();
    assert_eq!(state(&revoked), State::Revoked);
    assert_eq!(
        number(&revoked),
        "KZ-2023-000001",
        "a revoked number is kept"
    );
    assert_eq!(
        accreditation(&revoked).reason,
        "left the country on 18 March"
    );
    assert!(
        instant(accreditation(&revoked).decide_time.as_ref())
            >= instant(accreditation(&first).decide_time.as_ref())
    );
    assert_eq!(get_observer(&app, &revoked.name).await, revoked);

    let third = accredit(&app, &name("p-2")).await.unwrap();
    assert_eq!(number(&third), "KZ-2023-000003", "number 1 is never reused");

    let rejected = reject(&app, &name("p-3"), "travel document expired")
        .await
        .unwrap();
    assert_eq!(state(&rejected), State::Rejected);
    assert_eq!(number(&rejected), "");
    assert_eq!(accreditation(&rejected).reason, "travel document expired");
    assert!(accreditation(&rejected).decide_time.is_some());
    assert_eq!(get_observer(&app, &rejected.name).await, rejected);

    // Each election counts on its own, with the year of its voting day.
    app.elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2024".into(),
            election: Some(pb::Election {
                voting_day: "2024-06-09".into(),
                accreditation_deadline: Some(timestamp(Utc::now() + Duration::days(1))),
                ..kz_election("Referendum")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let other = create_observer(
        &app,
        "elections/kz-2024",
        "p-0",
        observer("Given0", "Family0000", "CN", "sco", "P0000000"),
    )
    .await;
    let other = accredit(&app, &other.name).await.unwrap();
    assert_eq!(number(&other), "KZ-2024-000001");
}

#[sqlx::test]
async fn only_the_transitions_of_the_state_machine_are_allowed(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    batch_create(&app, KZ, sco_people("p", 5, ""), "")
        .await
        .unwrap();
    let (pending, accredited, rejected, revoked, deleted) = (
        name("p-0"),
        name("p-1"),
        name("p-2"),
        name("p-3"),
        name("p-4"),
    );
    accredit(&app, &accredited).await.unwrap();
    reject(&app, &rejected, "no invitation").await.unwrap();
    accredit(&app, &revoked).await.unwrap();
    revoke(&app, &revoked, "left early").await.unwrap();

    let before = futures::future::join_all(
        [&pending, &accredited, &rejected, &revoked].map(|n| get_observer(&app, n)),
    )
    .await;
    for observer in [&accredited, &rejected, &revoked] {
        let error = accredit(&app, observer).await.unwrap_err();
        assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    }
    for observer in [&accredited, &rejected, &revoked] {
        let error = reject(&app, observer, "a reason").await.unwrap_err();
        assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    }
    for observer in [&pending, &rejected, &revoked] {
        let error = revoke(&app, observer, "a reason").await.unwrap_err();
        assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    }

    // Rejection and revocation need a reason.
    let error = reject(&app, &pending, "").await.unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["reason"]);
    let error = revoke(&app, &accredited, "  ").await.unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["reason"]);

    let after = futures::future::join_all(
        [&pending, &accredited, &rejected, &revoked].map(|n| get_observer(&app, n)),
    )
    .await;
    assert_eq!(after, before, "refused decisions changed nothing");

    // A deleted observer gets no decision.
    delete_observer(&app, &deleted, "").await.unwrap();
    assert_error(
        &accredit(&app, &deleted).await.unwrap_err(),
        Code::NotFound,
        "NOT_FOUND",
    );
    assert_error(
        &reject(&app, &deleted, "a reason").await.unwrap_err(),
        Code::NotFound,
        "NOT_FOUND",
    );
    assert_error(
        &revoke(&app, &deleted, "a reason").await.unwrap_err(),
        Code::NotFound,
        "NOT_FOUND",
    );
    assert_error(
        &accredit(&app, &name("nobody")).await.unwrap_err(),
        Code::NotFound,
        "NOT_FOUND",
    );

    // A decision on a stale read is refused.
    let read = get_observer(&app, &pending).await;
    update_observer(
        &app,
        pb::Observer {
            name: pending.clone(),
            deployment_region: "Almaty".into(),
            ..Default::default()
        },
        &["deployment_region"],
    )
    .await
    .unwrap();
    let error = app
        .observers()
        .accredit_observer(pb::AccreditObserverRequest {
            name: pending.clone(),
            etag: read.etag.clone(),
            decision: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(state(&get_observer(&app, &pending).await), State::Pending);
    let current = get_observer(&app, &pending).await;
    let accredited_now = app
        .observers()
        .accredit_observer(pb::AccreditObserverRequest {
            name: pending.clone(),
            etag: current.etag.clone(),
            decision: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(number(&accredited_now), "KZ-2023-000003");
}

#[sqlx::test]
async fn accreditation_closes_exactly_at_the_deadline_and_rejection_stays_possible(pool: PgPool) {
    let clock = ManualClock::new(at("2023-03-10T09:00:00Z"));
    let app = spawn_app_at(pool, &clock).await;
    create_organizations(&app).await;
    let deadline = at("2023-03-17T18:00:00Z");
    create_kz_election(&app, "kz-2023", Some(deadline)).await;
    batch_create(&app, KZ, sco_people("p", 2, ""), "")
        .await
        .unwrap();

    clock.set(deadline);
    let on_time = accredit(&app, &name("p-0")).await.unwrap();
    assert_eq!(number(&on_time), "KZ-2023-000001");

    clock.set(deadline + Duration::microseconds(1));
    let error = accredit(&app, &name("p-1")).await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "ACCREDITATION_CLOSED");
    assert_eq!(
        state(&get_observer(&app, &name("p-1")).await),
        State::Pending
    );

    let rejected = reject(&app, &name("p-1"), "applied too late")
        .await
        .unwrap();
    assert_eq!(state(&rejected), State::Rejected);
}

#[sqlx::test]
async fn without_a_deadline_accreditation_closes_at_the_start_of_voting_day_utc(pool: PgPool) {
    let clock = ManualClock::new(at("2023-03-17T09:00:00Z"));
    let app = spawn_app_at(pool, &clock).await;
    create_organizations(&app).await;
    create_kz_election(&app, "kz-2023", None).await;
    batch_create(&app, KZ, sco_people("p", 2, ""), "")
        .await
        .unwrap();

    let start_of_voting_day = at("2023-03-19T00:00:00Z");
    clock.set(start_of_voting_day);
    accredit(&app, &name("p-0")).await.unwrap();

    clock.set(start_of_voting_day + Duration::microseconds(1));
    let error = accredit(&app, &name("p-1")).await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "ACCREDITATION_CLOSED");
}

#[sqlx::test]
async fn fifty_concurrent_accreditations_get_numbers_one_to_fifty_in_decision_order(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    batch_create(&app, KZ, sco_people("p", 50, ""), "")
        .await
        .unwrap();

    let calls = (0..50).map(|i| {
        let mut client = app.observers();
        let name = name(&format!("p-{i}"));
        tokio::spawn(async move {
            client
                .accredit_observer(pb::AccreditObserverRequest {
                    name,
                    etag: String::new(),
                    decision: String::new(),
                })
                .await
                .map(|r| r.into_inner())
        })
    });
    let mut accredited: Vec<pb::Observer> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| {
            r.unwrap()
                .unwrap_or_else(|e| panic!("accreditation failed: {e:?}"))
        })
        .collect();

    let numbers: BTreeSet<String> = accredited.iter().map(|o| number(o).to_owned()).collect();
    let expected: BTreeSet<String> = (1..=50).map(|i| format!("KZ-2023-{i:06}")).collect();
    assert_eq!(numbers, expected);

    accredited.sort_by(|a, b| number(a).cmp(number(b)));
    for pair in accredited.windows(2) {
        let (earlier, later) = (accreditation(&pair[0]), accreditation(&pair[1]));
        assert!(
            instant(earlier.decide_time.as_ref()) <= instant(later.decide_time.as_ref()),
            "{} was decided after {}",
            earlier.number,
            later.number
        );
    }
    assert_eq!(
        observer_ids(&app, KZ, "accreditation.state = ACCREDITED", "")
            .await
            .len(),
        50
    );
}

#[sqlx::test]
async fn twenty_concurrent_registrations_of_one_person_create_one_observer(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let calls = (0..20).map(|i| {
        let mut client = app.observers();
        let request = create_observer_request(KZ, &format!("huseynova-{i}"), huseynova());
        tokio::spawn(async move { client.create_observer(request).await })
    });
    let results: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 1, "{results:?}");
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_error(error, Code::AlreadyExists, "DUPLICATE_OBSERVER");
    }
    assert_eq!(app.count("observers").await, 1);
}

#[sqlx::test]
async fn a_batch_creates_every_observer_in_request_order(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    let mut requests = sco_people("p", 10, SCO);
    // Entries may name the batch's parent or leave it empty; the order is the caller's.
    requests[5].parent = KZ.into();
    requests.reverse();
    let ids: Vec<String> = requests.iter().map(|r| r.observer_id.clone()).collect();

    let created = batch_create(&app, KZ, requests, "").await.unwrap();
    let got: Vec<String> = created.iter().map(|o| id(&o.name).to_owned()).collect();
    assert_eq!(got, ids);
    for observer in &created {
        assert_eq!(state(observer), State::Pending);
        assert_eq!(observer.delegation, SCO);
        assert_eq!(get_observer(&app, &observer.name).await, *observer);
    }
    assert_eq!(app.count("observers").await, 10);
    assert_eq!(member_count(&app, SCO).await, 10);
}

#[sqlx::test]
async fn a_batch_with_one_bad_entry_writes_nothing_and_names_the_entry(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;

    let mut requests = sco_people("p", 20, "");
    requests[17].observer.as_mut().unwrap().citizenship = "XX".into();
    let error = batch_create(&app, KZ, requests, "").await.unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["requests[17].observer.citizenship"],
    );
    assert_eq!(app.count("observers").await, 0);

    let mut requests = sco_people("p", 20, "");
    requests[3].observer.as_mut().unwrap().citizenship = "KZ".into();
    let error = batch_create(&app, KZ, requests, "").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HOST_COUNTRY_CITIZEN");
    assert_eq!(
        violated_fields(&error),
        vec!["requests[3].observer.citizenship"]
    );
    assert_eq!(app.count("observers").await, 0);

    create_kz_election(&app, "kz-2024", None).await;
    let mut requests = sco_people("p", 20, "");
    requests[4].parent = "elections/kz-2024".into();
    let error = batch_create(&app, KZ, requests, "").await.unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["requests[4].parent"]);
    assert_eq!(app.count("observers").await, 0);

    let mut requests = sco_people("p", 20, "");
    requests[9].observer.as_mut().unwrap().delegation =
        "elections/kz-2023/delegations/nowhere".into();
    let error = batch_create(&app, KZ, requests, "").await.unwrap_err();
    assert_error(
        &error,
        Code::FailedPrecondition,
        "DELEGATION_ORGANIZATION_MISMATCH",
    );
    assert_eq!(app.count("observers").await, 0);
}

#[sqlx::test]
async fn a_batch_with_the_same_person_twice_or_an_already_registered_one_writes_nothing(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;

    let mut requests = sco_people("p", 10, "");
    let twin = requests[2].observer.clone().unwrap();
    let entry = requests[5].observer.as_mut().unwrap();
    entry.citizenship = twin.citizenship.clone();
    entry.travel_document_number = twin.travel_document_number.to_lowercase();
    let error = batch_create(&app, KZ, requests, "").await.unwrap_err();
    assert_error(&error, Code::AlreadyExists, "DUPLICATE_OBSERVER");
    assert_eq!(app.count("observers").await, 0);

    let requests = sco_people("p", 10, "");
    let registered = requests[7].observer.clone().unwrap();
    create_observer(&app, KZ, "registered-earlier", registered).await;
    let error = batch_create(&app, KZ, requests, "").await.unwrap_err();
    assert_error(&error, Code::AlreadyExists, "DUPLICATE_OBSERVER");
    assert_eq!(app.count("observers").await, 1);
}

#[sqlx::test]
async fn a_batch_without_entries_or_with_more_than_1000_is_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let error = batch_create(&app, KZ, Vec::new(), "").await.unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["requests"]);
    let error = batch_create(&app, KZ, sco_people("p", 1001, ""), "")
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["requests"]);
    assert_eq!(app.count("observers").await, 0);
}

#[sqlx::test]
async fn a_batch_of_1000_is_created_at_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    let requests = sco_people("p", 1000, SCO);
    let ids: Vec<String> = requests.iter().map(|r| r.observer_id.clone()).collect();
    let created = batch_create(&app, KZ, requests, "").await.unwrap();
    let got: Vec<String> = created.iter().map(|o| id(&o.name).to_owned()).collect();
    assert_eq!(got, ids);
    assert_eq!(app.count("observers").await, 1000);
    assert_eq!(member_count(&app, SCO).await, 1000);
    let page = list_observers(
        &app,
        pb::ListObserversRequest {
            parent: KZ.into(),
            filter: format!(r#"delegation = "{SCO}""#),
            page_size: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total_size, 1000);
}

#[sqlx::test]
async fn a_replayed_batch_returns_the_same_observers_and_creates_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    // Without ids, a second copy would get new names: the replay must not make one.
    let mut requests = sco_people("p", 5, "");
    for request in &mut requests {
        request.observer_id.clear();
    }
    let request_id = new_request_id();
    let first = batch_create(&app, KZ, requests.clone(), &request_id)
        .await
        .unwrap();
    let second = batch_create(&app, KZ, requests, &request_id).await.unwrap();
    let names = |observers: &[pb::Observer]| -> Vec<String> {
        observers.iter().map(|o| o.name.clone()).collect()
    };
    assert_eq!(names(&second), names(&first));
    assert_eq!(app.count("observers").await, 5);
}

#[sqlx::test]
async fn an_update_changes_only_the_masked_fields(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let created = create_observer(&app, KZ, "huseynova", huseynova()).await;
    let updated = update_observer(
        &app,
        pb::Observer {
            name: created.name.clone(),
            given_name: "Ignored: not in the mask".into(),
            family_name: "Huseynova-Aliyeva".into(),
            role: Role::Expert.into(),
            travel_document_number: " c09999999 ".into(),
            etag: created.etag.clone(),
            ..Default::default()
        },
        &["family_name", "role", "travelDocumentNumber"],
    )
    .await
    .unwrap();
    assert_eq!(updated.family_name, "Huseynova-Aliyeva");
    assert_eq!(updated.role(), Role::Expert);
    assert_eq!(updated.travel_document_number, "C09999999");
    assert_eq!(updated.given_name, "Leyla");
    assert_eq!(updated.citizenship, "AZ");
    assert_eq!(updated.organization, created.organization);
    assert_eq!(updated.accreditation, created.accreditation);
    assert_eq!(updated.create_time, created.create_time);
    assert_ne!(updated.etag, created.etag);
    assert_eq!(get_observer(&app, &created.name).await, updated);

    // The old document number is free again, the new one taken.
    create_observer(&app, KZ, "other", huseynova()).await;
    let error = try_create_observer(
        &app,
        KZ,
        "third",
        pb::Observer {
            travel_document_number: "C09999999".into(),
            ..huseynova()
        },
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::AlreadyExists, "DUPLICATE_OBSERVER");
}

#[sqlx::test]
async fn output_only_and_unknown_mask_paths_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let created = create_observer(&app, KZ, "huseynova", huseynova()).await;
    for path in [
        "accreditation",
        "accreditation.state",
        "create_time",
        "name",
        "etag",
        "delete_time",
        "updateTime",
        "seats",
    ] {
        let error = update_observer(
            &app,
            pb::Observer {
                name: created.name.clone(),
                accreditation: Some(pb::Accreditation {
                    state: State::Accredited.into(),
                    number: "KZ-2023-000042".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &[path],
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["update_mask"]);
    }
    assert_eq!(get_observer(&app, &created.name).await, created);
}

#[sqlx::test]
async fn a_stale_etag_on_update_is_aborted_and_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let created = create_observer(&app, KZ, "huseynova", huseynova()).await;
    let first = update_observer(
        &app,
        pb::Observer {
            name: created.name.clone(),
            deployment_region: "Astana".into(),
            ..Default::default()
        },
        &["deployment_region"],
    )
    .await
    .unwrap();
    let error = update_observer(
        &app,
        pb::Observer {
            name: created.name.clone(),
            deployment_region: "Shymkent".into(),
            etag: created.etag.clone(),
            ..Default::default()
        },
        &["deployment_region"],
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(get_observer(&app, &created.name).await, first);
}

#[sqlx::test]
async fn a_stale_etag_on_reject_or_revoke_is_aborted_and_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;

    // A rejection decided on a read the observer has since moved past.
    let read = create_observer(&app, KZ, "huseynova", huseynova()).await;
    let current = update_observer(
        &app,
        pb::Observer {
            name: read.name.clone(),
            deployment_region: "Almaty".into(),
            ..Default::default()
        },
        &["deployment_region"],
    )
    .await
    .unwrap();
    let reject_with = |etag: &str| {
        let mut observers = app.observers();
        let request = pb::RejectObserverRequest {
            name: read.name.clone(),
            reason: "incomplete file".into(),
            etag: etag.to_owned(),
            decision: String::new(),
        };
        async move { observers.reject_observer(request).await }
    };
    let error = reject_with(&read.etag).await.unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(get_observer(&app, &read.name).await, current);
    let rejected = reject_with(&current.etag).await.unwrap().into_inner();
    assert_eq!(state(&rejected), State::Rejected);

    // A revocation decided on the observer as it was before its accreditation.
    let registered = create_observer(
        &app,
        KZ,
        "rusu",
        observer("Ion", "Rusu", "MD", "cec-az", "B00000001"),
    )
    .await;
    let accredited = accredit(&app, &registered.name).await.unwrap();
    let revoke_with = |etag: &str| {
        let mut observers = app.observers();
        let request = pb::RevokeAccreditationRequest {
            name: registered.name.clone(),
            reason: "left the mission".into(),
            etag: etag.to_owned(),
            decision: String::new(),
        };
        async move { observers.revoke_accreditation(request).await }
    };
    let error = revoke_with(&registered.etag).await.unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(get_observer(&app, &registered.name).await, accredited);
    let revoked = revoke_with(&accredited.etag).await.unwrap().into_inner();
    assert_eq!(state(&revoked), State::Revoked);
}

#[sqlx::test]
async fn a_soft_deleted_observer_is_hidden_from_lists_until_undeleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let created = create_observer(&app, KZ, "huseynova", huseynova()).await;
    create_observer(
        &app,
        KZ,
        "rusu",
        observer("Ion", "Rusu", "MD", "cec-az", "B00000001"),
    )
    .await;

    let stale = delete_observer(&app, &created.name, "not-the-etag")
        .await
        .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");
    assert!(
        get_observer(&app, &created.name)
            .await
            .delete_time
            .is_none()
    );

    let deleted = delete_observer(&app, &created.name, &created.etag)
        .await
        .unwrap();
    assert!(deleted.delete_time.is_some());
    assert_eq!(get_observer(&app, &created.name).await, deleted);
    assert_eq!(observer_ids(&app, KZ, "", "").await, strings(&["rusu"]));
    let all = list_observers(
        &app,
        pb::ListObserversRequest {
            parent: KZ.into(),
            show_deleted: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.total_size, 2);
    assert_eq!(
        sorted(
            all.observers
                .iter()
                .map(|o| id(&o.name).to_owned())
                .collect()
        ),
        strings(&["huseynova", "rusu"])
    );

    let again = delete_observer(&app, &created.name, "").await.unwrap_err();
    assert_error(&again, Code::NotFound, "NOT_FOUND");

    let stale = undelete_observer(&app, &created.name, &created.etag)
        .await
        .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");
    let restored = undelete_observer(&app, &created.name, &deleted.etag)
        .await
        .unwrap();
    assert!(restored.delete_time.is_none());
    assert_eq!(state(&restored), State::Pending);
    assert_eq!(
        observer_ids(&app, KZ, "", "").await,
        strings(&["huseynova", "rusu"])
    );

    let not_deleted = undelete_observer(&app, &created.name, "")
        .await
        .unwrap_err();
    assert_error(&not_deleted, Code::AlreadyExists, "ALREADY_EXISTS");
    let missing = undelete_observer(&app, &name("nobody"), "")
        .await
        .unwrap_err();
    assert_error(&missing, Code::NotFound, "NOT_FOUND");
}

/// Seven observers of kz-2023 registered in this order; abdullayev, ivanov and zhang
/// accredited; ceban deleted.
async fn list_fixture(app: &TestApp) -> Vec<pb::Observer> {
    open_election(app, "kz-2023").await;
    create_delegation(app, KZ, "sco", delegation("SCO mission", "sco")).await;
    let people = [
        (
            "abdullayev",
            "Ramil",
            "Abdullayev",
            "AZ",
            "cec-az",
            "",
            Role::Coordinator,
        ),
        (
            "abbasov",
            "Anar",
            "Abbasov",
            "AZ",
            "cec-az",
            "",
            Role::Expert,
        ),
        (
            "aliyev",
            "Elvin",
            "Aliyev",
            "AZ",
            "cec-az",
            "",
            Role::ShortTermObserver,
        ),
        (
            "ivanov",
            "Sergei",
            "Ivanov",
            "RU",
            "sco",
            SCO,
            Role::LongTermObserver,
        ),
        ("zhang", "Min", "Zhang", "CN", "sco", "", Role::Expert),
        (
            "karimov",
            "Timur",
            "Karimov",
            "UZ",
            "cis-ipa",
            "",
            Role::ShortTermObserver,
        ),
        (
            "ceban",
            "Ion",
            "Ceban",
            "MD",
            "cis-ipa",
            "",
            Role::Interpreter,
        ),
    ];
    let mut created = Vec::new();
    for (i, (id, given, family, citizenship, sender, delegation, role)) in
        people.into_iter().enumerate()
    {
        let observer = pb::Observer {
            delegation: delegation.into(),
            role: role.into(),
            ..observer(given, family, citizenship, sender, &format!("D{i:07}"))
        };
        created.push(create_observer(app, KZ, id, observer).await);
    }
    for id in ["abdullayev", "ivanov", "zhang"] {
        accredit(app, &name(id)).await.unwrap();
    }
    delete_observer(app, &name("ceban"), "").await.unwrap();
    created
}

#[sqlx::test]
async fn observers_are_filtered_by_each_documented_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = list_fixture(&app).await;
    let cases: [(&str, &[&str]); 8] = [
        (
            r#"citizenship = "AZ""#,
            &["abbasov", "abdullayev", "aliyev"],
        ),
        (
            r#"organization = "organizations/sco""#,
            &["ivanov", "zhang"],
        ),
        (
            r#"delegation = "elections/kz-2023/delegations/sco""#,
            &["ivanov"],
        ),
        ("role = EXPERT", &["abbasov", "zhang"]),
        (
            "accreditation.state = ACCREDITED",
            &["abdullayev", "ivanov", "zhang"],
        ),
        (r#"family_name = "Ab*""#, &["abbasov", "abdullayev"]),
        (
            r#"citizenship = "AZ" AND accreditation.state = PENDING"#,
            &["abbasov", "aliyev"],
        ),
        (
            r#"role = EXPERT OR citizenship = "UZ""#,
            &["abbasov", "karimov", "zhang"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            sorted(observer_ids(&app, KZ, filter, "").await),
            strings(expected),
            "{filter}"
        );
    }

    let ivanov = &created[3];
    let after_ivanov = format!(
        r#"create_time > "{}""#,
        rfc3339(ivanov.create_time.as_ref())
    );
    assert_eq!(
        observer_ids(&app, KZ, &after_ivanov, "").await,
        strings(&["zhang", "karimov"])
    );
    let with_deleted = list_observers(
        &app,
        pb::ListObserversRequest {
            parent: KZ.into(),
            filter: after_ivanov.clone(),
            show_deleted: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(with_deleted.total_size, 3);
    assert_eq!(
        with_deleted
            .observers
            .iter()
            .map(|o| id(&o.name))
            .collect::<Vec<_>>(),
        vec!["zhang", "karimov", "ceban"]
    );

    let error = list_observers(
        &app,
        pb::ListObserversRequest {
            parent: KZ.into(),
            filter: r#"passport = "X""#.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::InvalidArgument, "INVALID_FILTER");
}

#[sqlx::test]
async fn observers_are_ordered_and_paged_with_an_exact_total(pool: PgPool) {
    let app = spawn_app(pool).await;
    list_fixture(&app).await;
    assert_eq!(
        observer_ids(&app, KZ, "", "").await,
        strings(&[
            "abdullayev",
            "abbasov",
            "aliyev",
            "ivanov",
            "zhang",
            "karimov"
        ])
    );
    assert_eq!(
        observer_ids(&app, KZ, "", "family_name").await,
        strings(&[
            "abbasov",
            "abdullayev",
            "aliyev",
            "ivanov",
            "karimov",
            "zhang"
        ])
    );
    assert_eq!(
        observer_ids(&app, KZ, "", "create_time desc").await,
        strings(&[
            "karimov",
            "zhang",
            "ivanov",
            "aliyev",
            "abbasov",
            "abdullayev"
        ])
    );

    let mut request = pb::ListObserversRequest {
        parent: KZ.into(),
        page_size: 4,
        order_by: "family_name".into(),
        ..Default::default()
    };
    let first = list_observers(&app, request.clone()).await.unwrap();
    assert_eq!((first.observers.len(), first.total_size), (4, 6));
    assert!(!first.next_page_token.is_empty());
    request.page_token = first.next_page_token.clone();
    let second = list_observers(&app, request).await.unwrap();
    assert_eq!((second.observers.len(), second.total_size), (2, 6));
    assert!(second.next_page_token.is_empty());
    let paged: Vec<&str> = first
        .observers
        .iter()
        .chain(&second.observers)
        .map(|o| id(&o.name))
        .collect();
    assert_eq!(
        paged,
        vec![
            "abbasov",
            "abdullayev",
            "aliyev",
            "ivanov",
            "karimov",
            "zhang"
        ]
    );

    let error = list_observers(
        &app,
        pb::ListObserversRequest {
            parent: "elections/nowhere".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
}

#[sqlx::test]
async fn an_organization_referenced_only_by_a_deleted_observer_cannot_be_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let nazarov = create_observer(
        &app,
        KZ,
        "nazarov",
        observer("Farhod", "Nazarov", "TJ", "cec-tj", "TJ1000001"),
    )
    .await;
    let error = delete_organization(&app, "cec-tj").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HAS_CHILDREN");
    delete_observer(&app, &nazarov.name, "").await.unwrap();
    let error = delete_organization(&app, "cec-tj").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HAS_CHILDREN");
    assert_eq!(app.count("organizations").await, 4);
}

#[sqlx::test]
async fn an_election_with_observers_is_deleted_only_with_force(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_kz_election(&app, "kz-2024", None).await;
    create_observer(&app, KZ, "huseynova", huseynova()).await;
    create_observer(&app, "elections/kz-2024", "huseynova", huseynova()).await;

    let error = delete_election(&app, KZ, false).await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HAS_CHILDREN");
    assert_eq!(app.count("observers").await, 2);

    delete_election(&app, KZ, true).await.unwrap();
    assert_eq!(app.count("elections").await, 1);
    assert_eq!(
        app.count("observers").await,
        1,
        "only kz-2023's observers go"
    );
    let left = get_observer(&app, "elections/kz-2024/observers/huseynova").await;
    assert_eq!(left.citizenship, "AZ");
}

#[sqlx::test]
async fn an_empty_page_still_counts_every_match(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_observer(&app, KZ, "huseynova", huseynova()).await;
    let rusu = create_observer(
        &app,
        KZ,
        "rusu",
        observer("Ion", "Rusu", "MD", "cec-az", "B00000001"),
    )
    .await;
    let first = list_observers(
        &app,
        pb::ListObserversRequest {
            parent: KZ.into(),
            page_size: 1,
            order_by: "family_name".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((first.observers.len(), first.total_size), (1, 2));
    // The page after the last match is empty; the count comes from a statement of its own.
    delete_observer(&app, &rusu.name, &rusu.etag).await.unwrap();
    let past_the_end = list_observers(
        &app,
        pb::ListObserversRequest {
            parent: KZ.into(),
            page_size: 1,
            order_by: "family_name".into(),
            page_token: first.next_page_token,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(past_the_end.observers.is_empty());
    assert_eq!(past_the_end.total_size, 1);
}

#[sqlx::test]
async fn a_kept_observer_answers_only_while_its_election_is_unchanged(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    let wei = create_observer(
        &app,
        KZ,
        "wei",
        observer("Wei", "Wang", "CN", "sco", "E0000001"),
    )
    .await;
    let other = create_observer(
        &app,
        KZ,
        "li",
        observer("Li", "Na", "CN", "sco", "E0000002"),
    )
    .await;
    assert_eq!(get_observer(&app, &wei.name).await, wei);
    let late = format!("{KZ}/observers/late");
    assert_eq!(
        try_get_observer(&app, &late).await.unwrap_err().code(),
        Code::NotFound
    );

    // A row changed behind the change feed's back (its trigger off) does not move the
    // election's position: the observer read before is answered, so it was kept.
    let behind_the_feed = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("ALTER TABLE observers DISABLE TRIGGER observers_changes_update")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
            sqlx::query("ALTER TABLE observers ENABLE TRIGGER observers_changes_update")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    };
    behind_the_feed("UPDATE observers SET given_name = 'Hidden' WHERE id = 'wei'").await;
    assert_eq!(get_observer(&app, &wei.name).await.given_name, "Wei");

    // Any committed change to the election's observers moves its position, also one made
    // outside the service (another replica, an operator's SQL) to another observer: the
    // next call reads the row again.
    sqlx::query("UPDATE observers SET phone = '+7 700 000 0000' WHERE id = 'li'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(get_observer(&app, &wei.name).await.given_name, "Hidden");
    assert_eq!(
        get_observer(&app, &other.name).await.phone,
        "+7 700 000 0000"
    );

    // An id found absent is kept as absent only until the election changes.
    create_observer(
        &app,
        KZ,
        "late",
        observer("Late", "Comer", "CN", "sco", "E0000003"),
    )
    .await;
    assert_eq!(get_observer(&app, &late).await.given_name, "Late");

    // The metrics count the calls answered from kept observers, and the statements the
    // batches ran: one at least, and no more than the calls, which came one at a time.
    let metrics = app.metrics_text();
    let kept = sample(&metrics, "observer_registry_point_reads_kept_total ");
    assert!(kept >= 1.0, "no call answered from kept observers: {kept}");
    let batches = sample(&metrics, "observer_registry_point_read_batches_total ");
    let gets = metrics
        .lines()
        .filter(|line| {
            line.starts_with("grpc_server_handled_total{")
                && line.contains("grpc_method=\"GetObserver\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    assert!(
        (1.0..=gets).contains(&batches),
        "{batches} point-read batches for {gets} GetObserver calls"
    );
}

#[sqlx::test]
async fn a_changed_elections_kept_observers_are_forgotten_at_once(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    let wei = create_observer(
        &app,
        KZ,
        "wei",
        observer("Wei", "Wang", "CN", "sco", "E0000001"),
    )
    .await;
    let li = create_observer(
        &app,
        KZ,
        "li",
        observer("Li", "Na", "CN", "sco", "E0000002"),
    )
    .await;
    let gauge = |name: &str| sample(&app.metrics_text(), &format!("{name} "));
    let wait = std::time::Duration::from_secs(5);
    // Read one at a time, so that each batch keeps what it read; again until the notices of
    // the two creations, which forget the election too, have come in.
    wait_until(wait, "both observers kept", || async {
        get_observer(&app, &wei.name).await;
        get_observer(&app, &li.name).await;
        gauge("observer_registry_point_reads_kept_observers") == 2.0
    })
    .await;
    let bytes = gauge("observer_registry_point_reads_kept_bytes");
    assert!((100.0..=1024.0).contains(&bytes), "{bytes} bytes for two");

    // A change made outside the service is notified after its commit, and the election's
    // kept observers go without waiting for the next read of them.
    sqlx::query("UPDATE observers SET phone = '+7 700 000 0000' WHERE id = 'li'")
        .execute(&pool)
        .await
        .unwrap();
    wait_until(wait, "the election's kept observers forgotten", || async {
        gauge("observer_registry_point_reads_kept_observers") == 0.0
    })
    .await;
    assert_eq!(gauge("observer_registry_point_reads_kept_bytes"), 0.0);
    assert_eq!(get_observer(&app, &li.name).await.phone, "+7 700 000 0000");
}

#[sqlx::test]
async fn a_reader_answered_from_kept_observers_sees_no_personal_data(pool: PgPool) {
    use common::agencies::{Agencies, READER};
    let setup = spawn_app(pool.clone()).await;
    open_election(&setup, "kz-2023").await;
    let wei = create_observer(
        &setup,
        KZ,
        "wei",
        observer("Wei", "Wang", "CN", "sco", "E0000001"),
    )
    .await;
    let agencies = Agencies::standard("kept-reader");
    let app = spawn_app_with_options(pool.clone(), pool.clone(), agencies.options()).await;
    let anonymous = client_without_retries(&app, None);
    let error = anonymous
        .observers()
        .get_observer(pb::GetObserverRequest {
            name: wei.name.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::Unauthenticated, "UNAUTHENTICATED");

    let reader = agencies.client(&app, READER);
    for _ in 0..3 {
        let seen = reader
            .observers()
            .get_observer(pb::GetObserverRequest {
                name: wei.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(seen.given_name, "Wei");
        assert_eq!(seen.travel_document_number, "");
        assert_eq!(seen.email, "");
    }
    let kept = sample(
        &app.metrics_text(),
        "observer_registry_point_reads_kept_total ",
    );
    assert!(kept >= 1.0, "no call answered from kept observers: {kept}");
}

#[sqlx::test]
async fn a_kept_page_answers_only_while_its_election_is_unchanged(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    create_observer(
        &app,
        KZ,
        "wei",
        observer("Wei", "Wang", "CN", "sco", "E0000001"),
    )
    .await;
    create_observer(
        &app,
        KZ,
        "li",
        observer("Li", "Na", "CN", "sco", "E0000002"),
    )
    .await;
    let names = || async {
        list_observers(
            &app,
            pb::ListObserversRequest {
                parent: KZ.into(),
                page_size: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .observers
        .into_iter()
        .map(|o| o.given_name)
        .collect::<Vec<_>>()
    };
    assert_eq!(names().await, ["Wei", "Li"]);

    // Changed behind the change feed's back, the election's position stays: the page read
    // before is answered, so it was kept.
    let mut tx = pool.begin().await.unwrap();
    for sql in [
        "ALTER TABLE observers DISABLE TRIGGER observers_changes_update",
        "UPDATE observers SET given_name = 'Hidden' WHERE id = 'wei'",
        "ALTER TABLE observers ENABLE TRIGGER observers_changes_update",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(names().await, ["Wei", "Li"]);

    // A committed change, made outside the service too, moves the position: read again.
    sqlx::query("UPDATE observers SET phone = '+7 700 000 0000' WHERE id = 'li'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(names().await, ["Hidden", "Li"]);
    create_observer(
        &app,
        KZ,
        "late",
        observer("Late", "Comer", "CN", "sco", "E0000003"),
    )
    .await;
    assert_eq!(names().await, ["Hidden", "Li", "Late"]);
}

#[sqlx::test]
async fn a_list_total_is_reused_only_while_the_election_is_unchanged(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    open_election(&app, "kz-2023").await;
    for (id, document) in [
        ("wei", "E0000001"),
        ("li", "E0000002"),
        ("zhang", "E0000003"),
    ] {
        create_observer(&app, KZ, id, observer("Wei", id, "CN", "sco", document)).await;
    }
    let total = || async {
        list_observers(
            &app,
            pb::ListObserversRequest {
                parent: KZ.into(),
                filter: "citizenship = \"CN\"".into(),
                page_size: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .total_size
    };
    assert_eq!(total().await, 3);
    assert_eq!(total().await, 3);

    // A row added behind the change feed's back (its triggers off) does not move the
    // election's position: the stored total is reused, so it was not counted again.
    sqlx::query("ALTER TABLE observers DISABLE TRIGGER observers_changes_insert")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO observers (election_id, id, given_name, family_name, citizenship, \
         organization_id, travel_document_number) \
         VALUES ('kz-2023', 'hidden', 'Hidden', 'Row', 'CN', 'sco', 'E0000009')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE observers ENABLE TRIGGER observers_changes_insert")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(total().await, 3);

    // Any committed change to the election's observers moves it: counted afresh.
    create_observer(
        &app,
        KZ,
        "rusu",
        observer("Ion", "Rusu", "MD", "cec-az", "B00000001"),
    )
    .await;
    assert_eq!(total().await, 4);
    // A change made straight in SQL, not through the service, too.
    sqlx::query("UPDATE observers SET citizenship = 'MD' WHERE id = 'li'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(total().await, 3);
}
