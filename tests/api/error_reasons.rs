//! The client crate's `ErrorReason` and field violations, read from the real server's errors.

use crate::common;

use common::*;
use observer_registry::client::{ErrorDetails, ErrorReason};
use observer_registry::pb::v1 as pb;
use sqlx::PgPool;

#[sqlx::test]
async fn an_invalid_election_reads_as_invalid_argument_naming_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;

    let error = app
        .elections()
        .create_election(pb::CreateElectionRequest {
            election: Some(pb::Election {
                host_country: "kz".into(),
                ..kz_election("Lower-case host country")
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();

    assert_eq!(error.reason(), Some(ErrorReason::InvalidArgument));
    let fields: Vec<String> = error
        .field_violations()
        .into_iter()
        .map(|violation| violation.field)
        .collect();
    assert_eq!(fields, ["election.host_country"]);
}

#[sqlx::test]
async fn a_missing_election_reads_as_not_found_without_violations(pool: PgPool) {
    let app = spawn_app(pool).await;

    let error = app
        .elections()
        .get_election(pb::GetElectionRequest {
            name: "elections/nowhere-2031".into(),
        })
        .await
        .unwrap_err();

    assert_eq!(error.reason(), Some(ErrorReason::NotFound));
    assert!(error.field_violations().is_empty());
}
