//! Accreditation decisions (API.md, issue 18): the commission's act behind each decision,
//! elections that require one, badge validity, and BatchAccreditObservers — all or none,
//! numbered in the order given, audited and fed per observer, replayed by its request id.

use crate::common::{self, agencies, registry};

use agencies::*;
use common::*;
use observer_registry::pb::v1 as pb;
use pb::AccreditationState as State;
use registry::*;
use sqlx::PgPool;
use tonic::{Code, Status};

const RESOLUTION: &str = "Resolution No. 25/312 of 2023-03-14";

fn name(id: &str) -> String {
    format!("{KZ}/observers/{id}")
}

/// An open election with observers `ids` registered (PENDING), sent by `sco`.
async fn with_pending(app: &TestApp, ids: &[&str]) {
    open_election(app, "kz-2023").await;
    let citizenships = ["CN", "RU", "KG", "TJ", "UZ"];
    for (i, id) in ids.iter().enumerate() {
        let person = observer(
            &format!("Given{i}"),
            &format!("Family{i}"),
            citizenships[i % citizenships.len()],
            "sco",
            &format!("D{i:07}"),
        );
        create_observer(app, KZ, id, person).await;
    }
}

async fn set_election(
    app: &TestApp,
    changes: pb::Election,
    paths: &[&str],
) -> Result<pb::Election, Status> {
    app.elections()
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: KZ.to_owned(),
                ..changes
            }),
            update_mask: mask(paths),
        })
        .await
        .map(|r| r.into_inner())
}

async fn require_decisions(app: &TestApp) {
    let changes = pb::Election {
        decision_required: true,
        ..Default::default()
    };
    let updated = set_election(app, changes, &["decision_required"])
        .await
        .unwrap();
    assert!(updated.decision_required);
}

fn batch(ids: &[&str], decision: &str, request_id: &str) -> pb::BatchAccreditObserversRequest {
    pb::BatchAccreditObserversRequest {
        parent: KZ.to_owned(),
        names: ids.iter().map(|id| name(id)).collect(),
        decision: decision.to_owned(),
        request_id: request_id.to_owned(),
    }
}

async fn accredit_batch(
    app: &TestApp,
    request: pb::BatchAccreditObserversRequest,
) -> Result<Vec<pb::Observer>, Status> {
    app.observers()
        .batch_accredit_observers(request)
        .await
        .map(|r| r.into_inner().observers)
}

async fn accredit_with(app: &TestApp, id: &str, decision: &str) -> Result<pb::Observer, Status> {
    app.observers()
        .accredit_observer(pb::AccreditObserverRequest {
            name: name(id),
            etag: String::new(),
            decision: decision.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn states(app: &TestApp, ids: &[&str]) -> Vec<State> {
    let mut found = Vec::new();
    for id in ids {
        found.push(state(&get_observer(app, &name(id)).await));
    }
    found
}

/// How often the resource appears in the audit trail under `method`, and in the change feed.
async fn trail(app: &TestApp, id: &str, method: &str) -> (i64, i64) {
    let audited = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE resource = $1 AND method LIKE '%/' || $2",
    )
    .bind(name(id))
    .bind(method)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let fed = sqlx::query_scalar(
        "SELECT count(*) FROM changes WHERE resource_type = 'observer' \
         AND change_type = 'UPDATED' AND resource->>'id' = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (audited, fed)
}

// ---- the decision on the record ----

#[sqlx::test]
async fn each_decision_keeps_the_commissions_act_behind_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    with_pending(&app, &["anna", "bo"]).await;

    let accredited = accredit_with(&app, "anna", RESOLUTION).await.unwrap();
    assert_eq!(accreditation(&accredited).decision, RESOLUTION);
    let rejected = app
        .observers()
        .reject_observer(pb::RejectObserverRequest {
            name: name("bo"),
            reason: "Travel document expired".into(),
            etag: String::new(),
            decision: "  Resolution No. 25/313  ".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accreditation(&rejected).decision, "Resolution No. 25/313");
    let revoked = app
        .observers()
        .revoke_accreditation(pb::RevokeAccreditationRequest {
            name: name("anna"),
            reason: "Left the mission".into(),
            etag: String::new(),
            decision: "Resolution No. 25/400".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accreditation(&revoked).decision, "Resolution No. 25/400");
    // The number stays; the decision is that of the last act.
    assert_eq!(number(&revoked), "KZ-2023-000001");
    assert_eq!(get_observer(&app, &name("anna")).await, revoked);

    // Decisions are text as the registry keeps it: one line, no control characters.
    let refused = accredit_with(&app, "nobody", "Resolution\n25/1")
        .await
        .unwrap_err();
    assert_invalid(&refused, "INVALID_ARGUMENT", &["decision"]);
}

#[sqlx::test]
async fn an_election_that_requires_decisions_refuses_a_decision_without_one(pool: PgPool) {
    let app = spawn_app(pool).await;
    with_pending(&app, &["anna", "bo"]).await;
    require_decisions(&app).await;

    let refused = accredit_with(&app, "anna", "  ").await.unwrap_err();
    assert_invalid(&refused, "INVALID_ARGUMENT", &["decision"]);
    let refused = reject(&app, &name("bo"), "Incomplete").await.unwrap_err();
    assert_invalid(&refused, "INVALID_ARGUMENT", &["decision"]);
    let refused = accredit_batch(&app, batch(&["anna", "bo"], "", ""))
        .await
        .unwrap_err();
    assert_invalid(&refused, "INVALID_ARGUMENT", &["decision"]);
    assert_eq!(states(&app, &["anna", "bo"]).await, [State::Pending; 2]);
    assert_eq!(app.count("accreditation_sequences").await, 0);

    // With the decision, the first number is still the first.
    let accredited = accredit_with(&app, "anna", RESOLUTION).await.unwrap();
    assert_eq!(number(&accredited), "KZ-2023-000001");
}

// ---- the election's terms ----

#[sqlx::test]
async fn elections_keep_their_decision_rule_and_badge_validity(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = open_election(&app, "kz-2023").await;
    assert_eq!(
        (created.decision_required, created.badge_validity_days),
        (false, 30)
    );

    let changes = pb::Election {
        decision_required: true,
        badge_validity_days: 45,
        display_name: "Not in the mask".into(),
        ..Default::default()
    };
    let updated = set_election(&app, changes, &["decision_required", "badge_validity_days"])
        .await
        .unwrap();
    assert_eq!(
        (updated.decision_required, updated.badge_validity_days),
        (true, 45)
    );
    assert_eq!(updated.display_name, created.display_name);

    for days in [-1, 3651] {
        let changes = pb::Election {
            badge_validity_days: days,
            ..Default::default()
        };
        let refused = set_election(&app, changes, &["badge_validity_days"])
            .await
            .unwrap_err();
        assert_invalid(
            &refused,
            "INVALID_ARGUMENT",
            &["election.badge_validity_days"],
        );
        let refused = app
            .elections()
            .create_election(pb::CreateElectionRequest {
                election_id: "kz-2024".into(),
                election: Some(pb::Election {
                    badge_validity_days: days,
                    ..kz_election("Presidential election")
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(
            &refused,
            "INVALID_ARGUMENT",
            &["election.badge_validity_days"],
        );
    }
    let kept = app
        .elections()
        .get_election(pb::GetElectionRequest { name: KZ.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.badge_validity_days, 45);
}

/// Issue 19's terms: whether invitations are required, and how long personal data is kept
/// (unset means 90 days, 0 keeps it: proto3 `optional` tells the two apart).
#[sqlx::test]
async fn elections_keep_their_invitation_rule_and_retention(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = open_election(&app, "kz-2023").await;
    assert_eq!(
        (
            created.invitation_required,
            created.personal_data_retention_days,
            created.personal_data_erase_time
        ),
        (false, Some(90), None)
    );

    let changes = pb::Election {
        invitation_required: true,
        personal_data_retention_days: Some(0),
        ..Default::default()
    };
    let paths = ["invitation_required", "personal_data_retention_days"];
    let updated = set_election(&app, changes, &paths).await.unwrap();
    assert_eq!(
        (
            updated.invitation_required,
            updated.personal_data_retention_days
        ),
        (true, Some(0)),
        "0 keeps personal data"
    );
    // Named in the mask but unset: back to the default.
    let updated = set_election(&app, pb::Election::default(), &paths[1..])
        .await
        .unwrap();
    assert_eq!(updated.personal_data_retention_days, Some(90));
    assert!(updated.invitation_required, "not in the mask");

    for days in [-1, 3651] {
        let changes = pb::Election {
            personal_data_retention_days: Some(days),
            ..Default::default()
        };
        let refused = set_election(&app, changes, &paths[1..]).await.unwrap_err();
        assert_invalid(
            &refused,
            "INVALID_ARGUMENT",
            &["election.personal_data_retention_days"],
        );
        let refused = app
            .elections()
            .create_election(pb::CreateElectionRequest {
                election_id: "kz-2024".into(),
                election: Some(pb::Election {
                    personal_data_retention_days: Some(days),
                    ..kz_election("Presidential election")
                }),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(
            &refused,
            "INVALID_ARGUMENT",
            &["election.personal_data_retention_days"],
        );
    }
    let output_only = pb::Election {
        personal_data_erase_time: Some(prost_types::Timestamp::default()),
        ..Default::default()
    };
    let refused = set_election(&app, output_only, &["personal_data_erase_time"])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
}

// ---- BatchAccreditObservers ----

#[sqlx::test]
async fn a_batch_accredits_in_the_order_given_with_consecutive_numbers(pool: PgPool) {
    let app = spawn_app(pool).await;
    with_pending(&app, &["anna", "bo", "cy", "di"]).await;
    accredit_with(&app, "di", "").await.unwrap();

    let accredited = accredit_batch(&app, batch(&["cy", "anna", "bo"], RESOLUTION, ""))
        .await
        .unwrap();
    let got: Vec<(&str, &str)> = accredited
        .iter()
        .map(|o| (id(&o.name), number(o)))
        .collect();
    assert_eq!(
        got,
        [
            ("cy", "KZ-2023-000002"),
            ("anna", "KZ-2023-000003"),
            ("bo", "KZ-2023-000004")
        ]
    );
    for observer in &accredited {
        assert_eq!(state(observer), State::Accredited);
        assert_eq!(accreditation(observer).decision, RESOLUTION);
        assert_eq!(&get_observer(&app, &observer.name).await, observer);
        // Each observer's own audit event and feed event, as AccreditObserver leaves them.
        assert_eq!(
            trail(&app, id(&observer.name), "BatchAccreditObservers").await,
            (1, 1)
        );
    }
    assert_eq!(trail(&app, "di", "AccreditObserver").await, (1, 1));
}

#[sqlx::test]
async fn a_batch_with_one_bad_entry_changes_nothing_and_names_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    with_pending(&app, &["anna", "bo", "cy", "di"]).await;
    accredit_with(&app, "bo", "").await.unwrap();
    let sequences = || async {
        sqlx::query_scalar::<_, i32>("SELECT last_number FROM accreditation_sequences")
            .fetch_all(&app.pool)
            .await
            .unwrap()
    };
    let before = sequences().await;
    let audited = app.count("audit_events").await;

    // Not PENDING: FAILED_PRECONDITION, one violation per such entry.
    let refused = accredit_batch(&app, batch(&["anna", "bo", "cy"], "", ""))
        .await
        .unwrap_err();
    assert_error(
        &refused,
        Code::FailedPrecondition,
        "INVALID_STATE_TRANSITION",
    );
    assert_eq!(violated_fields(&refused), ["names[1]"]);

    // Not found (or deleted): NOT_FOUND naming the entry.
    delete_observer(&app, &name("di"), "").await.unwrap();
    let refused = accredit_batch(&app, batch(&["anna", "di", "nobody"], "", ""))
        .await
        .unwrap_err();
    assert_error(&refused, Code::NotFound, "NOT_FOUND");
    assert_eq!(violated_fields(&refused), ["names[1]", "names[2]"]);

    // Malformed, of another election, or twice: INVALID_ARGUMENT before anything is read.
    let mut request = batch(&["anna", "cy", "anna"], "", "");
    request.names.push("elections/kz-2024/observers/eve".into());
    request.names.push("observers/anna".into());
    let refused = accredit_batch(&app, request).await.unwrap_err();
    assert_invalid(
        &refused,
        "INVALID_ARGUMENT",
        &["names[2]", "names[3]", "names[4]"],
    );
    let refused = accredit_batch(&app, batch(&[], "", "")).await.unwrap_err();
    assert_invalid(&refused, "INVALID_ARGUMENT", &["names"]);

    assert_eq!(states(&app, &["anna", "cy"]).await, [State::Pending; 2]);
    assert_eq!(sequences().await, before);
    assert_eq!(
        app.count("audit_events").await,
        audited + 1,
        "only the deletion"
    );
}

#[sqlx::test]
async fn a_batch_replayed_with_its_request_id_returns_the_first_result(pool: PgPool) {
    let app = spawn_app(pool).await;
    with_pending(&app, &["anna", "bo"]).await;
    let request_id = new_request_id();

    let first = accredit_batch(&app, batch(&["bo", "anna"], RESOLUTION, &request_id))
        .await
        .unwrap();
    let replayed = accredit_batch(&app, batch(&["bo", "anna"], RESOLUTION, &request_id))
        .await
        .unwrap();
    assert_eq!(replayed, first);
    assert_eq!(trail(&app, "anna", "BatchAccreditObservers").await, (1, 1));
    let issued: i32 = sqlx::query_scalar("SELECT last_number FROM accreditation_sequences")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(issued, 2);

    // The same id for another request is refused, not answered with the first.
    let refused = accredit_batch(&app, batch(&["anna"], RESOLUTION, &request_id))
        .await
        .unwrap_err();
    assert_invalid(&refused, "INVALID_ARGUMENT", &["request_id"]);
}

#[sqlx::test]
async fn a_batch_after_the_accreditation_deadline_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_organizations(&app).await;
    // No deadline: accreditation closed at the start of voting day, 2023-03-19.
    create_kz_election(&app, "kz-2023", None).await;
    create_observer(
        &app,
        KZ,
        "anna",
        observer("Anna", "Lee", "DE", "sco", "C01X00T47"),
    )
    .await;

    let refused = accredit_batch(&app, batch(&["anna"], "", ""))
        .await
        .unwrap_err();
    assert_error(&refused, Code::FailedPrecondition, "ACCREDITATION_CLOSED");
    assert_eq!(states(&app, &["anna"]).await, [State::Pending]);
}

#[sqlx::test]
async fn only_the_accreditation_office_accredits_in_a_batch(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool, "batch-accredit").await;
    let request = || batch(&["anna"], "", "");
    for agency in [READER, PERSONAL_DATA_READER, REGISTRAR, PROTOCOL] {
        let refused = agencies
            .client(&app, agency)
            .observers()
            .batch_accredit_observers(request())
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{agency}: {refused:?}"
        );
    }
    // The accreditor gets past the role check to the missing election.
    let missing = agencies
        .client(&app, ACCREDITOR)
        .observers()
        .batch_accredit_observers(request())
        .await
        .unwrap_err();
    assert_error(&missing, Code::NotFound, "NOT_FOUND");
}

// ---- PostgreSQL holds the same rules ----

#[sqlx::test]
async fn postgresql_refuses_bad_decisions_and_badge_validity_as_sql(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    with_pending(&app, &["anna"]).await;
    for (sql, constraint) in [
        (
            "UPDATE elections SET badge_validity_days = 0 WHERE id = 'kz-2023'",
            "elections_badge_validity_days_range",
        ),
        (
            "UPDATE elections SET badge_validity_days = 3651 WHERE id = 'kz-2023'",
            "elections_badge_validity_days_range",
        ),
        (
            "UPDATE elections SET personal_data_retention_days = -1 WHERE id = 'kz-2023'",
            "elections_personal_data_retention_days_range",
        ),
        (
            "UPDATE elections SET personal_data_retention_days = 3651 WHERE id = 'kz-2023'",
            "elections_personal_data_retention_days_range",
        ),
        (
            "UPDATE observers SET decision = E'Resolution\\x07' WHERE id = 'anna'",
            "observers_decision_text",
        ),
        (
            "UPDATE elections SET decision_required = true WHERE id = 'kz-2023'; \
             UPDATE observers SET accreditation_state = 'REJECTED', decide_time = now(), \
             decision_reason = 'Incomplete' WHERE id = 'anna'",
            "observers_decision_required",
        ),
    ] {
        assert_eq!(refused(&pool, sql).await, constraint, "{sql}");
    }
    assert_eq!(
        state(&get_observer(&app, &name("anna")).await),
        State::Pending
    );
}
