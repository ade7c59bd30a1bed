//! ElectionService end to end: a real server, the generated client, a fresh database.

use crate::common;

use common::*;
use observer_registry::pb::v1 as pb;
use prost_types::{FieldMask, Timestamp};
use sqlx::PgPool;
use tonic::Code;

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

#[sqlx::test]
async fn an_election_is_created_read_listed_updated_and_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut elections = app.elections();

    let created = elections
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(pb::Election {
                description: "Majilis, early".into(),
                accreditation_deadline: Some(Timestamp {
                    seconds: 1_679_097_600,
                    nanos: 0,
                }),
                ..kz_election("Early parliamentary election")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "elections/kz-2023");
    assert_eq!(created.host_country, "KZ");
    assert_eq!(created.voting_day, "2023-03-19");
    assert_eq!(
        created.accreditation_deadline.unwrap().seconds,
        1_679_097_600
    );
    assert!(created.create_time.is_some() && !created.etag.is_empty());

    let got = elections
        .get_election(pb::GetElectionRequest {
            name: "elections/kz-2023".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    let listed = elections
        .list_elections(pb::ListElectionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.elections, vec![created.clone()]);
    assert_eq!(listed.total_size, 1);
    assert!(listed.next_page_token.is_empty());

    let updated = elections
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: created.name.clone(),
                display_name: "Ignored: not in the mask".into(),
                description: "Elections of Majilis deputies".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.description, "Elections of Majilis deputies");
    assert_eq!(updated.display_name, created.display_name);
    assert_ne!(updated.etag, created.etag);
    assert!(updated.update_time.unwrap().seconds >= created.update_time.unwrap().seconds);

    elections
        .delete_election(pb::DeleteElectionRequest {
            name: created.name.clone(),
            force: false,
            etag: updated.etag.clone(),
        })
        .await
        .unwrap();
    let gone = elections
        .get_election(pb::GetElectionRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&gone, Code::NotFound, "NOT_FOUND");
    assert_eq!(app.count("elections").await, 0);
}

#[sqlx::test]
async fn an_empty_id_gets_a_generated_uuid(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = app
        .elections()
        .create_election(pb::CreateElectionRequest {
            election: Some(kz_election("Presidential election")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let id = created.name.strip_prefix("elections/").unwrap();
    assert!(uuid::Uuid::try_parse(id).is_ok(), "{id} is not a UUID");
    let got = app
        .elections()
        .get_election(pb::GetElectionRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);
}

#[sqlx::test]
async fn every_bad_field_of_a_create_is_named_and_nothing_is_written(pool: PgPool) {
    let app = spawn_app(pool).await;
    let error = app
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "2023-kz".into(),
            election: Some(pb::Election {
                display_name: "   ".into(),
                host_country: "XX".into(),
                voting_day: "2023-02-30".into(),
                accreditation_deadline: Some(Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            }),
            request_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["request_id"]);

    let error = app
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "2023-kz".into(),
            election: Some(pb::Election {
                display_name: "   ".into(),
                host_country: "XX".into(),
                voting_day: "2023-02-30".into(),
                accreditation_deadline: Some(Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &[
            "election_id",
            "election.display_name",
            "election.host_country",
            "election.voting_day",
            "election.accreditation_deadline",
        ],
    );
    assert_eq!(app.count("elections").await, 0);

    let missing = app
        .elections()
        .create_election(pb::CreateElectionRequest::default())
        .await
        .unwrap_err();
    assert_invalid(&missing, "INVALID_ARGUMENT", &["election"]);

    let lower_case = app
        .elections()
        .create_election(pb::CreateElectionRequest {
            election: Some(pb::Election {
                host_country: "kz".into(),
                ..kz_election("x")
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&lower_case, "INVALID_ARGUMENT", &["election.host_country"]);
    assert_eq!(app.count("elections").await, 0);
}

#[sqlx::test]
async fn a_taken_id_is_already_exists(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_election(&app, "kz-2023").await;
    let error = app
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Another")),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::AlreadyExists, "ALREADY_EXISTS");
    assert_eq!(app.count("elections").await, 1);
}

#[sqlx::test]
async fn a_replayed_request_id_returns_the_first_election_and_creates_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    let request = pb::CreateElectionRequest {
        election_id: String::new(),
        election: Some(kz_election("Early parliamentary election")),
        request_id: new_request_id(),
    };
    let first = app
        .elections()
        .create_election(request.clone())
        .await
        .unwrap()
        .into_inner();
    let second = app
        .elections()
        .create_election(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    assert_eq!(app.count("elections").await, 1);

    let different = app
        .elections()
        .create_election(pb::CreateElectionRequest {
            election: Some(kz_election("Something else")),
            ..request
        })
        .await
        .unwrap_err();
    assert_invalid(&different, "INVALID_ARGUMENT", &["request_id"]);
    assert_eq!(app.count("elections").await, 1);
}

#[sqlx::test]
async fn concurrent_replays_of_one_request_id_create_one_election(pool: PgPool) {
    let app = spawn_app(pool).await;
    let request = pb::CreateElectionRequest {
        election_id: String::new(),
        election: Some(kz_election("Early parliamentary election")),
        request_id: new_request_id(),
    };
    let calls = (0..10).map(|_| {
        let mut client = app.elections();
        let request = request.clone();
        tokio::spawn(async move {
            client
                .create_election(request)
                .await
                .map(|r| r.into_inner())
        })
    });
    let results = futures::future::join_all(calls).await;
    let names: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap().unwrap().name)
        .collect();
    assert!(names.iter().all(|n| *n == names[0]), "{names:?}");
    assert_eq!(app.count("elections").await, 1);
}

#[sqlx::test]
async fn a_stale_etag_is_aborted_and_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = create_election(&app, "kz-2023").await;
    let mut elections = app.elections();
    elections
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: created.name.clone(),
                description: "first edit".into(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
        .unwrap();

    let stale = elections
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: created.name.clone(),
                description: "second edit from a stale read".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
        .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");

    let stale_delete = elections
        .delete_election(pb::DeleteElectionRequest {
            name: created.name.clone(),
            force: false,
            etag: created.etag.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&stale_delete, Code::Aborted, "ETAG_MISMATCH");

    let now = elections
        .get_election(pb::GetElectionRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.description, "first edit");
}

#[sqlx::test]
async fn updates_refuse_output_only_and_unknown_mask_paths_and_bad_values(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = create_election(&app, "kz-2023").await;
    let mut elections = app.elections();
    for paths in [
        &["create_time"][..],
        &["etag"],
        &["name"],
        &["updateTime"],
        &["seats"],
    ] {
        let error = elections
            .update_election(pb::UpdateElectionRequest {
                election: Some(pb::Election {
                    name: created.name.clone(),
                    ..Default::default()
                }),
                update_mask: mask(paths),
            })
            .await
            .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["update_mask"]);
    }

    let error = elections
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: created.name.clone(),
                host_country: "XX".into(),
                voting_day: "2023-13-01".into(),
                ..Default::default()
            }),
            update_mask: mask(&["hostCountry", "voting_day"]),
        })
        .await
        .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["election.host_country", "election.voting_day"],
    );

    // An empty mask means every updatable field: required ones must then be present.
    let error = elections
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: created.name.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &[
            "election.display_name",
            "election.host_country",
            "election.voting_day",
        ],
    );

    let unchanged = elections
        .get_election(pb::GetElectionRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, created);

    let full = elections
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: created.name.clone(),
                ..kz_election("Renamed")
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(full.display_name, "Renamed");
}

#[sqlx::test]
async fn malformed_names_are_invalid_and_unknown_ones_not_found(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut elections = app.elections();
    for name in [
        "",
        "elections/",
        "elections/KZ",
        "organizations/kz",
        "elections/kz/extra",
    ] {
        let error = elections
            .get_election(pb::GetElectionRequest { name: name.into() })
            .await
            .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["name"]);
    }
    let error = elections
        .get_election(pb::GetElectionRequest {
            name: "elections/nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    let error = elections
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: "elections/nowhere".into(),
                ..kz_election("x")
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    let error = elections
        .delete_election(pb::DeleteElectionRequest {
            name: "elections/nowhere".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
}
