//! AIP-155: a `request_id` is unique per calling agency. Another agency that sends the same
//! id gets its own create, never the first agency's resource, and is not held up by it.

use std::borrow::Cow;
use std::time::Duration;

use observer_registry::pb::v1 as pb;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::common::agencies::*;
use crate::common::*;

fn create(election_id: &str, display_name: &str, request_id: &str) -> pb::CreateElectionRequest {
    pb::CreateElectionRequest {
        election_id: election_id.to_owned(),
        election: Some(kz_election(display_name)),
        request_id: request_id.to_owned(),
    }
}

fn two_admins() -> Agencies {
    Agencies::new(
        "request-ids",
        vec![
            Agency::with_token("agency-a", &["admin"]),
            Agency::with_token("agency-b", &["admin"]),
        ],
    )
}

#[sqlx::test]
async fn the_same_request_id_from_another_agency_is_a_create_of_its_own(pool: PgPool) {
    let agencies = two_admins();
    let app = spawn_app_with_options(pool.clone(), pool, agencies.options()).await;
    let (a, b) = (
        agencies.client(&app, "agency-a"),
        agencies.client(&app, "agency-b"),
    );
    let shared_id = new_request_id();

    let by_a = a
        .elections()
        .create_election(create("a-2023", "Agency A's election", &shared_id))
        .await
        .unwrap()
        .into_inner();
    let by_b = b
        .elections()
        .create_election(create("b-2023", "Agency B's election", &shared_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        by_b.name, "elections/b-2023",
        "B was answered with A's create"
    );
    assert_eq!(by_b.display_name, "Agency B's election");

    // Each agency's replay is answered from its own first call.
    let replayed_by_a = a
        .elections()
        .create_election(create("a-2023", "Agency A's election", &shared_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed_by_a, by_a);
    let replayed_by_b = b
        .elections()
        .create_election(create("b-2023", "Agency B's election", &shared_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed_by_b, by_b);
    assert_eq!(app.count("elections").await, 2);
    let remembered: Vec<String> =
        sqlx::query_scalar("SELECT agency FROM request_ids ORDER BY agency")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(remembered, ["agency-a", "agency-b"]);
}

#[sqlx::test]
async fn another_agency_does_not_wait_for_a_create_in_flight_with_the_same_id(pool: PgPool) {
    let agencies = two_admins();
    let app = spawn_app_with_options(pool.clone(), pool, agencies.options()).await;
    let shared_id = new_request_id();
    // Agency A's create holds its key, uncommitted, as a call in flight does.
    let mut in_flight = app.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO request_ids (agency, request_id, method, fingerprint, response) \
         VALUES ('agency-a', $1::uuid, '/observer_registry.v1.ElectionService/CreateElection', '', '')",
    )
    .bind(&shared_id)
    .execute(&mut *in_flight)
    .await
    .unwrap();

    let by_b = tokio::time::timeout(
        Duration::from_secs(10),
        agencies
            .client(&app, "agency-b")
            .elections()
            .create_election(create("b-2023", "Agency B's election", &shared_id)),
    )
    .await
    .expect("agency B waited for agency A's create")
    .unwrap()
    .into_inner();
    assert_eq!(by_b.name, "elections/b-2023");
    in_flight.rollback().await.unwrap();
}

/// The keys remembered before the upgrade go to the agency the audit trail names.
#[sqlx::test(migrations = false)]
async fn the_migration_gives_existing_request_ids_to_the_agency_that_made_them(pool: PgPool) {
    let all = &observer_registry::database::MIGRATOR;
    let per_agency = all
        .migrations
        .iter()
        .position(|m| m.description.contains("request ids per agency"))
        .expect("the migration of request ids per agency");
    let before = Migrator {
        migrations: Cow::Owned(all.migrations[..per_agency].to_vec()),
        ..Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    let method = "/observer_registry.v1.ElectionService/CreateElection";
    let (made, unaccounted) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for request_id in [made, unaccounted] {
        sqlx::query(
            "INSERT INTO request_ids (request_id, method, fingerprint, response) \
             VALUES ($1, $2, '', '')",
        )
        .bind(request_id)
        .bind(method)
        .execute(&pool)
        .await
        .unwrap();
    }
    // The client wrote the id in upper case; the audit keeps it as written.
    sqlx::query(
        "INSERT INTO audit_events (election_id, actor, method, resource, request_id) \
         VALUES ('kz-2023', 'border-service', $1, 'elections/kz-2023', $2)",
    )
    .bind(method)
    .bind(made.to_string().to_uppercase())
    .execute(&pool)
    .await
    .unwrap();

    all.run(&pool).await.unwrap();
    let agency = |request_id: uuid::Uuid| {
        sqlx::query_scalar::<_, String>("SELECT agency FROM request_ids WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(&pool)
    };
    assert_eq!(agency(made).await.unwrap(), "border-service");
    // No agency made it, as far as the trail knows: nobody's, so nobody replays it.
    assert_eq!(agency(unaccounted).await.unwrap(), "");
}
