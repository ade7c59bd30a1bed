//! DelegationService end to end: a real server, the generated client, a fresh database.
//! Delegations of the Astana 2023 story: who sent them, who heads them, how many members.

use crate::common::{self, registry};

use common::*;
use observer_registry::pb::v1 as pb;
use pb::OrganizationKind as Kind;
use registry::*;
use sqlx::PgPool;
use tonic::Code;

const SCO: &str = "elections/kz-2023/delegations/sco";

fn sco_delegation() -> pb::Delegation {
    pb::Delegation {
        arrival_date: "2023-03-16".into(),
        departure_date: "2023-03-20".into(),
        notes: "Met the CEC chairman on 17 March".into(),
        ..delegation("SCO observation mission", "sco")
    }
}

#[sqlx::test]
async fn a_delegation_is_created_read_listed_updated_and_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;

    let created = create_delegation(&app, KZ, "sco", sco_delegation()).await;
    assert_eq!(created.name, SCO);
    assert_eq!(created.display_name, "SCO observation mission");
    assert_eq!(created.organization, "organizations/sco");
    assert_eq!(created.head, "");
    assert_eq!(created.arrival_date, "2023-03-16");
    assert_eq!(created.departure_date, "2023-03-20");
    assert_eq!(created.notes, "Met the CEC chairman on 17 March");
    assert_eq!(created.member_count, 0);
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert!(created.delete_time.is_none());
    assert!(!created.etag.is_empty());

    assert_eq!(get_delegation(&app, SCO).await, created);
    let listed = list_delegations(
        &app,
        pb::ListDelegationsRequest {
            parent: KZ.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.delegations, vec![created.clone()]);
    assert_eq!(listed.total_size, 1);
    assert!(listed.next_page_token.is_empty());

    let updated = update_delegation(
        &app,
        pb::Delegation {
            name: SCO.into(),
            display_name: "Ignored: not in the mask".into(),
            departure_date: "2023-03-21".into(),
            etag: created.etag.clone(),
            ..Default::default()
        },
        &["departureDate"],
    )
    .await
    .unwrap();
    assert_eq!(updated.departure_date, "2023-03-21");
    assert_eq!(updated.display_name, created.display_name);
    assert_eq!(updated.arrival_date, created.arrival_date);
    assert_eq!(updated.notes, created.notes);
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.create_time, created.create_time);
    assert_eq!(get_delegation(&app, SCO).await, updated);

    let deleted = delete_delegation(&app, SCO, &updated.etag).await.unwrap();
    assert!(deleted.delete_time.is_some());
    assert_eq!(
        get_delegation(&app, SCO).await.delete_time,
        deleted.delete_time
    );
    assert!(delegation_ids(&app, KZ, "", false).await.is_empty());
    assert_eq!(app.count("delegations").await, 1, "deletes are soft");
}

#[sqlx::test]
async fn an_empty_delegation_id_gets_a_generated_uuid(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let created = create_delegation(&app, KZ, "", delegation("SCO mission", "sco")).await;
    let id = created
        .name
        .strip_prefix("elections/kz-2023/delegations/")
        .unwrap();
    assert!(uuid::Uuid::try_parse(id).is_ok(), "{id} is not a UUID");
    assert_eq!(get_delegation(&app, &created.name).await, created);
}

#[sqlx::test]
async fn a_missing_display_name_and_organization_are_both_named_and_nothing_is_written(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let error = try_create_delegation(
        &app,
        KZ,
        "sco",
        pb::Delegation {
            display_name: "  ".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["delegation.display_name", "delegation.organization"],
    );

    let error = app
        .delegations()
        .create_delegation(pb::CreateDelegationRequest {
            parent: KZ.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["delegation"]);
    assert_eq!(app.count("delegations").await, 0);
}

#[sqlx::test]
async fn a_malformed_or_unknown_organization_is_invalid_and_nothing_is_written(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    for organization in [
        "sco",
        "organisations/sco",
        "organizations/SCO",
        "organizations/sco/extra",
        "organizations/nowhere",
    ] {
        let error = try_create_delegation(
            &app,
            KZ,
            "sco",
            pb::Delegation {
                organization: organization.into(),
                ..delegation("SCO mission", "sco")
            },
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["delegation.organization"]);
    }
    assert_eq!(app.count("delegations").await, 0);
}

#[sqlx::test]
async fn departure_before_arrival_and_impossible_dates_are_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let dated = |arrival: &str, departure: &str| pb::Delegation {
        arrival_date: arrival.into(),
        departure_date: departure.into(),
        ..delegation("SCO mission", "sco")
    };

    let error = try_create_delegation(&app, KZ, "sco", dated("2023-03-18", "2023-03-17"))
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["delegation.departure_date"]);

    let error = try_create_delegation(&app, KZ, "sco", dated("2023-02-30", "17.03.2023"))
        .await
        .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["delegation.arrival_date", "delegation.departure_date"],
    );
    assert_eq!(app.count("delegations").await, 0);

    // A one-day stay and a stay with only one end known are fine.
    create_delegation(&app, KZ, "one-day", dated("2023-03-18", "2023-03-18")).await;
    create_delegation(&app, KZ, "open-ended", dated("2023-03-16", "")).await;

    // The same rule on update, against the stored arrival date.
    let error = update_delegation(
        &app,
        pb::Delegation {
            name: "elections/kz-2023/delegations/open-ended".into(),
            departure_date: "2023-03-15".into(),
            ..Default::default()
        },
        &["departure_date"],
    )
    .await
    .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["delegation.departure_date"]);
    let unchanged = get_delegation(&app, "elections/kz-2023/delegations/open-ended").await;
    assert_eq!(unchanged.departure_date, "");
}

#[sqlx::test]
async fn a_delegation_of_a_missing_election_is_not_found(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let error = try_create_delegation(
        &app,
        "elections/nowhere",
        "sco",
        delegation("SCO mission", "sco"),
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    let error = list_delegations(
        &app,
        pb::ListDelegationsRequest {
            parent: "elections/nowhere".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    let error = app
        .delegations()
        .get_delegation(pb::GetDelegationRequest {
            name: "elections/kz-2023/delegations/nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    assert_eq!(app.count("delegations").await, 0);
}

#[sqlx::test]
async fn a_taken_delegation_id_is_already_exists_and_a_replayed_request_id_creates_nothing(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let request = pb::CreateDelegationRequest {
        parent: KZ.into(),
        delegation_id: String::new(),
        delegation: Some(delegation("CIS IPA observer group", "cis-ipa")),
        request_id: new_request_id(),
    };
    let first = app
        .delegations()
        .create_delegation(request.clone())
        .await
        .unwrap()
        .into_inner();
    let second = app
        .delegations()
        .create_delegation(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    assert_eq!(app.count("delegations").await, 1);

    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    let error = try_create_delegation(&app, KZ, "sco", delegation("Another", "cis-ipa"))
        .await
        .unwrap_err();
    assert_error(&error, Code::AlreadyExists, "ALREADY_EXISTS");
    assert_eq!(app.count("delegations").await, 2);
    assert_eq!(get_delegation(&app, SCO).await.display_name, "SCO mission");
}

#[sqlx::test]
async fn a_head_on_create_is_refused_because_a_new_delegation_has_no_members(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let ivanov = create_observer(
        &app,
        KZ,
        "ivanov",
        observer("Sergei", "Ivanov", "RU", "sco", "RU1000001"),
    )
    .await;
    let error = try_create_delegation(
        &app,
        KZ,
        "sco",
        pb::Delegation {
            head: ivanov.name.clone(),
            ..delegation("SCO mission", "sco")
        },
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HEAD_NOT_MEMBER");
    assert_eq!(app.count("delegations").await, 0);
}

#[sqlx::test]
async fn only_a_current_member_can_be_made_head(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    let other = create_delegation(&app, KZ, "sco-experts", delegation("SCO experts", "sco"))
        .await
        .name;
    let li = create_observer(
        &app,
        KZ,
        "li",
        member(observer("Wei", "Li", "CN", "sco", "E10000001"), SCO),
    )
    .await;
    let elsewhere = create_observer(
        &app,
        KZ,
        "karimov",
        member(
            observer("Bakhtiyor", "Karimov", "UZ", "sco", "FA0000001"),
            &other,
        ),
    )
    .await;
    let loose = create_observer(
        &app,
        KZ,
        "petrov",
        observer("Pavel", "Petrov", "RU", "sco", "RU7000001"),
    )
    .await;
    let gone = create_observer(
        &app,
        KZ,
        "sultanov",
        member(
            observer("Rustam", "Sultanov", "TJ", "sco", "TJ4000001"),
            SCO,
        ),
    )
    .await;
    delete_observer(&app, &gone.name, "").await.unwrap();

    let before = get_delegation(&app, SCO).await;
    for head in [
        elsewhere.name.as_str(),
        loose.name.as_str(),
        gone.name.as_str(),
        "elections/kz-2023/observers/nobody",
    ] {
        let error = set_head(&app, SCO, head).await.unwrap_err();
        assert_error(&error, Code::FailedPrecondition, "HEAD_NOT_MEMBER");
    }
    assert_eq!(get_delegation(&app, SCO).await, before);

    let headed = set_head(&app, SCO, &li.name).await.unwrap();
    assert_eq!(headed.head, li.name);
    assert_eq!(get_delegation(&app, SCO).await.head, li.name);

    let cleared = set_head(&app, SCO, "").await.unwrap();
    assert_eq!(cleared.head, "");
}

#[sqlx::test]
async fn a_head_who_leaves_the_delegation_or_is_deleted_is_no_longer_its_head(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    let experts = create_delegation(&app, KZ, "sco-experts", delegation("SCO experts", "sco"))
        .await
        .name;
    let li = create_observer(
        &app,
        KZ,
        "li",
        member(observer("Wei", "Li", "CN", "sco", "E10000001"), SCO),
    )
    .await
    .name;

    // Moved to another delegation.
    set_head(&app, SCO, &li).await.unwrap();
    move_to(&app, &li, &experts).await.unwrap();
    let sco = get_delegation(&app, SCO).await;
    assert_eq!((sco.head.as_str(), sco.member_count), ("", 0));
    assert_eq!(member_count(&app, &experts).await, 1);

    // Leaves every delegation.
    set_head(&app, &experts, &li).await.unwrap();
    move_to(&app, &li, "").await.unwrap();
    let left = get_delegation(&app, &experts).await;
    assert_eq!((left.head.as_str(), left.member_count), ("", 0));

    // Deleted.
    move_to(&app, &li, SCO).await.unwrap();
    set_head(&app, SCO, &li).await.unwrap();
    delete_observer(&app, &li, "").await.unwrap();
    let sco = get_delegation(&app, SCO).await;
    assert_eq!((sco.head.as_str(), sco.member_count), ("", 0));

    // Back, as a member again (the head stays to be set by the protocol office).
    undelete_observer(&app, &li, "").await.unwrap();
    assert_eq!(member_count(&app, SCO).await, 1);
    assert_eq!(set_head(&app, SCO, &li).await.unwrap().head, li);
}

#[sqlx::test]
async fn member_count_follows_creates_batches_moves_deletes_and_undeletes(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    let experts = create_delegation(&app, KZ, "sco-experts", delegation("SCO experts", "sco"))
        .await
        .name;
    assert_eq!(member_count(&app, SCO).await, 0);

    let li = create_observer(
        &app,
        KZ,
        "li",
        member(observer("Wei", "Li", "CN", "sco", "E10000001"), SCO),
    )
    .await
    .name;
    create_observer(
        &app,
        KZ,
        "petrov",
        observer("Pavel", "Petrov", "RU", "sco", "RU7000001"),
    )
    .await;
    assert_eq!(member_count(&app, SCO).await, 1);

    batch_create(&app, KZ, sco_people("b", 5, SCO), "")
        .await
        .unwrap();
    batch_create(&app, KZ, sco_people("x", 2, &experts), "")
        .await
        .unwrap();
    assert_eq!(member_count(&app, SCO).await, 6);
    assert_eq!(member_count(&app, &experts).await, 2);

    move_to(&app, &li, &experts).await.unwrap();
    assert_eq!(member_count(&app, SCO).await, 5);
    assert_eq!(member_count(&app, &experts).await, 3);
    move_to(&app, "elections/kz-2023/observers/petrov", SCO)
        .await
        .unwrap();
    assert_eq!(member_count(&app, SCO).await, 6);

    delete_observer(&app, "elections/kz-2023/observers/b-0", "")
        .await
        .unwrap();
    delete_observer(&app, "elections/kz-2023/observers/b-1", "")
        .await
        .unwrap();
    assert_eq!(member_count(&app, SCO).await, 4);
    undelete_observer(&app, "elections/kz-2023/observers/b-1", "")
        .await
        .unwrap();
    assert_eq!(member_count(&app, SCO).await, 5);

    // The count is also right in lists.
    let listed = list_delegations(
        &app,
        pb::ListDelegationsRequest {
            parent: KZ.into(),
            order_by: "display_name".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let counts: Vec<(String, i32)> = listed
        .delegations
        .iter()
        .map(|d| (id(&d.name).to_owned(), d.member_count))
        .collect();
    assert_eq!(
        counts,
        vec![("sco-experts".to_owned(), 3), ("sco".to_owned(), 5)]
    );
}

#[sqlx::test]
async fn the_organization_of_a_delegation_with_members_cannot_change(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    create_observer(
        &app,
        KZ,
        "li",
        member(observer("Wei", "Li", "CN", "sco", "E10000001"), SCO),
    )
    .await;
    let before = get_delegation(&app, SCO).await;
    let error = update_delegation(
        &app,
        pb::Delegation {
            name: SCO.into(),
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
    assert_eq!(get_delegation(&app, SCO).await, before);

    // A delegation without members may be re-assigned (e.g. a typo on entry).
    let empty = create_delegation(&app, KZ, "ipa", delegation("CIS IPA group", "sco")).await;
    let fixed = update_delegation(
        &app,
        pb::Delegation {
            name: empty.name.clone(),
            organization: "organizations/cis-ipa".into(),
            ..Default::default()
        },
        &["organization"],
    )
    .await
    .unwrap();
    assert_eq!(fixed.organization, "organizations/cis-ipa");

    // And an unknown organization is invalid, as on create.
    let error = update_delegation(
        &app,
        pb::Delegation {
            name: empty.name.clone(),
            organization: "organizations/nowhere".into(),
            ..Default::default()
        },
        &["organization"],
    )
    .await
    .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["delegation.organization"]);
}

#[sqlx::test]
async fn a_soft_deleted_delegation_is_hidden_from_lists_until_undeleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let sco = create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    create_delegation(&app, KZ, "cis-ipa", delegation("CIS IPA group", "cis-ipa")).await;

    let stale = delete_delegation(&app, SCO, "not-the-etag")
        .await
        .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");
    assert!(get_delegation(&app, SCO).await.delete_time.is_none());

    let deleted = delete_delegation(&app, SCO, &sco.etag).await.unwrap();
    assert!(deleted.delete_time.is_some());
    assert_ne!(deleted.etag, sco.etag);
    assert_eq!(get_delegation(&app, SCO).await, deleted);
    assert_eq!(
        delegation_ids(&app, KZ, "", false).await,
        strings(&["cis-ipa"])
    );
    assert_eq!(
        sorted(delegation_ids(&app, KZ, "", true).await),
        strings(&["cis-ipa", "sco"])
    );

    let again = delete_delegation(&app, SCO, "").await.unwrap_err();
    assert_error(&again, Code::NotFound, "NOT_FOUND");

    let stale = undelete_delegation(&app, SCO, &sco.etag).await.unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");
    let restored = undelete_delegation(&app, SCO, &deleted.etag).await.unwrap();
    assert!(restored.delete_time.is_none());
    assert_eq!(restored.display_name, "SCO mission");
    assert_eq!(
        sorted(delegation_ids(&app, KZ, "", false).await),
        strings(&["cis-ipa", "sco"])
    );

    let not_deleted = undelete_delegation(&app, SCO, "").await.unwrap_err();
    assert_error(&not_deleted, Code::AlreadyExists, "ALREADY_EXISTS");
    let missing = undelete_delegation(&app, "elections/kz-2023/delegations/nowhere", "")
        .await
        .unwrap_err();
    assert_error(&missing, Code::NotFound, "NOT_FOUND");
}

#[sqlx::test]
async fn a_stale_etag_on_update_is_aborted_and_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let created = create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    let first = update_delegation(
        &app,
        pb::Delegation {
            name: SCO.into(),
            notes: "first edit".into(),
            ..Default::default()
        },
        &["notes"],
    )
    .await
    .unwrap();
    let error = update_delegation(
        &app,
        pb::Delegation {
            name: SCO.into(),
            notes: "second edit from a stale read".into(),
            etag: created.etag.clone(),
            ..Default::default()
        },
        &["notes"],
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(get_delegation(&app, SCO).await, first);
}

#[sqlx::test]
async fn output_only_and_unknown_mask_paths_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let created = create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    for path in [
        "member_count",
        "memberCount",
        "create_time",
        "name",
        "etag",
        "delete_time",
        "seats",
    ] {
        let error = update_delegation(
            &app,
            pb::Delegation {
                name: SCO.into(),
                member_count: 7,
                ..Default::default()
            },
            &[path],
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["update_mask"]);
    }
    assert_eq!(get_delegation(&app, SCO).await, created);
}

#[sqlx::test]
async fn delegations_are_filtered_by_organization_with_an_exact_total(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    create_delegation(&app, KZ, "ipa-1", delegation("CIS IPA group 1", "cis-ipa")).await;
    create_delegation(&app, KZ, "ipa-2", delegation("CIS IPA group 2", "cis-ipa")).await;
    create_delegation(
        &app,
        KZ,
        "cec-az",
        delegation("CEC of Azerbaijan", "cec-az"),
    )
    .await;
    assert_eq!(
        delegation_ids(&app, KZ, r#"organization = "organizations/cis-ipa""#, false).await,
        strings(&["ipa-1", "ipa-2"])
    );

    // Other elections' delegations are not listed.
    create_kz_election(&app, "kz-2024", None).await;
    create_delegation(
        &app,
        "elections/kz-2024",
        "ipa-1",
        delegation("CIS IPA group", "cis-ipa"),
    )
    .await;
    assert_eq!(delegation_ids(&app, KZ, "", false).await.len(), 4);

    let first = list_delegations(
        &app,
        pb::ListDelegationsRequest {
            parent: KZ.into(),
            page_size: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((first.delegations.len(), first.total_size), (3, 4));
    let second = list_delegations(
        &app,
        pb::ListDelegationsRequest {
            parent: KZ.into(),
            page_size: 3,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((second.delegations.len(), second.total_size), (1, 4));
    assert!(second.next_page_token.is_empty());
}

#[sqlx::test]
async fn an_organization_referenced_by_a_delegation_cannot_be_deleted_even_a_soft_deleted_one(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(&app, KZ, "cis-ipa", delegation("CIS IPA group", "cis-ipa")).await;
    let error = delete_organization(&app, "cis-ipa").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HAS_CHILDREN");

    delete_delegation(&app, "elections/kz-2023/delegations/cis-ipa", "")
        .await
        .unwrap();
    let error = delete_organization(&app, "cis-ipa").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HAS_CHILDREN");
    assert_eq!(app.count("organizations").await, 4);

    // An unreferenced one goes.
    delete_organization(&app, "cec-tj").await.unwrap();
    assert_eq!(app.count("organizations").await, 3);
}

#[sqlx::test]
async fn an_election_with_delegations_is_deleted_only_with_force_and_takes_them_along(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    create_delegation(&app, KZ, "cis-ipa", delegation("CIS IPA group", "cis-ipa")).await;
    create_observer(
        &app,
        KZ,
        "li",
        member(observer("Wei", "Li", "CN", "sco", "E10000001"), SCO),
    )
    .await;
    delete_delegation(&app, "elections/kz-2023/delegations/cis-ipa", "")
        .await
        .unwrap();

    let error = delete_election(&app, KZ, false).await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HAS_CHILDREN");
    assert_eq!(app.count("delegations").await, 2);

    delete_election(&app, KZ, true).await.unwrap();
    assert_eq!(app.count("elections").await, 0);
    assert_eq!(app.count("delegations").await, 0);
    assert_eq!(app.count("observers").await, 0);
    // The organizations exist across elections and stay.
    assert_eq!(app.count("organizations").await, 4);
}

/// The first acceptance story (seed-article-astana-2023.txt): on 17 and 18 March 2023 the
/// CEC chairman met the delegations sent to the early parliamentary elections of 19 March.
#[sqlx::test]
async fn the_astana_2023_delegations_are_recorded_with_their_heads_and_members(pool: PgPool) {
    // The registry as it stood on 16 March 2023, before the meetings.
    let clock = ManualClock::new(at("2023-03-16T09:00:00Z"));
    let app = spawn_app_at(pool, &clock).await;
    let senders: [(&str, &str, Kind, &str); 10] = [
        (
            "sco",
            "Shanghai Cooperation Organization",
            Kind::InternationalOrganization,
            "",
        ),
        (
            "csto-pa",
            "CSTO Parliamentary Assembly",
            Kind::ParliamentaryAssembly,
            "",
        ),
        (
            "pa-turkic",
            "Parliamentary Assembly of Turkic States",
            Kind::ParliamentaryAssembly,
            "",
        ),
        (
            "pa-union-by-ru",
            "Parliamentary Assembly of the Union of Belarus and Russia",
            Kind::ParliamentaryAssembly,
            "",
        ),
        (
            "cis-ipa",
            "CIS Interparliamentary Assembly",
            Kind::ParliamentaryAssembly,
            "",
        ),
        (
            "cec-az",
            "Central Election Commission of Azerbaijan",
            Kind::ForeignElectionBody,
            "AZ",
        ),
        (
            "cec-md",
            "Central Election Commission of Moldova",
            Kind::ForeignElectionBody,
            "MD",
        ),
        (
            "gec-mn",
            "General Election Commission of Mongolia",
            Kind::ForeignElectionBody,
            "MN",
        ),
        (
            "sec-tr",
            "Supreme Election Council of Türkiye",
            Kind::ForeignElectionBody,
            "TR",
        ),
        (
            "ccer-tj",
            "Central Commission on Election and Referendum of Tajikistan",
            Kind::ForeignElectionBody,
            "TJ",
        ),
    ];
    for (id, display_name, kind, country) in senders {
        create_organization(&app, id, display_name, kind, country).await;
    }
    let election = create_election(&app, "kz-2023").await;
    assert_eq!(election.name, KZ);
    for (id, display_name, _, _) in senders {
        let created = create_delegation(
            &app,
            KZ,
            id,
            pb::Delegation {
                arrival_date: "2023-03-16".into(),
                departure_date: "2023-03-20".into(),
                ..delegation(&format!("Delegation: {display_name}"), id)
            },
        )
        .await;
        assert_eq!(created.organization, format!("organizations/{id}"));
    }
    assert_eq!(delegation_ids(&app, KZ, "", false).await.len(), 10);

    // The observers the delegations brought (names other than the article's are invented).
    let people: [(&str, &str, &str, &str, &str); 12] = [
        ("hudoerzoda", "Bakhtiyor", "Hudoerzoda", "TJ", "ccer-tj"),
        ("nazarov", "Farhod", "Nazarov", "TJ", "ccer-tj"),
        ("huseynova", "Leyla", "Huseynova", "AZ", "cec-az"),
        ("rusu", "Ion", "Rusu", "MD", "cec-md"),
        ("bat-erdene", "Tsetseg", "Bat-Erdene", "MN", "gec-mn"),
        ("yilmaz", "Mehmet", "Yilmaz", "TR", "sec-tr"),
        ("wang", "Lei", "Wang", "CN", "sco"),
        ("sokolov", "Andrei", "Sokolov", "RU", "csto-pa"),
        ("aliev", "Nurlan", "Aliev", "KG", "pa-turkic"),
        ("kovalenko", "Olga", "Kovalenko", "BY", "pa-union-by-ru"),
        ("grigoryan", "Armen", "Grigoryan", "AM", "cis-ipa"),
        ("ismoilov", "Sherzod", "Ismoilov", "UZ", "cis-ipa"),
    ];
    for (i, (id, given, family, citizenship, sender)) in people.into_iter().enumerate() {
        let registered = create_observer(
            &app,
            KZ,
            id,
            member(
                observer(given, family, citizenship, sender, &format!("P{i:08}")),
                &format!("{KZ}/delegations/{sender}"),
            ),
        )
        .await;
        assert_eq!(state(&registered), pb::AccreditationState::Pending);
    }

    // The host, a citizen of Kazakhstan, cannot be registered as an international observer.
    let host = try_create_observer(
        &app,
        KZ,
        "abdirov",
        observer("Nurlan", "Abdirov", "KZ", "sco", "N0000001"),
    )
    .await
    .unwrap_err();
    assert_error(&host, Code::FailedPrecondition, "HOST_COUNTRY_CITIZEN");
    assert_eq!(app.count("observers").await, 12);

    // The chairman of Tajikistan's commission heads its delegation.
    let tajikistan = format!("{KZ}/delegations/ccer-tj");
    let hudoerzoda = format!("{KZ}/observers/hudoerzoda");
    let headed = set_head(&app, &tajikistan, &hudoerzoda).await.unwrap();
    assert_eq!(headed.head, hudoerzoda);
    assert_eq!(headed.member_count, 2);
    let got = get_observer(&app, &hudoerzoda).await;
    assert_eq!(
        (got.given_name.as_str(), got.family_name.as_str()),
        ("Bakhtiyor", "Hudoerzoda")
    );
    assert_eq!(got.citizenship, "TJ");

    // Accredited on 17 March, in this order.
    clock.set(at("2023-03-17T08:00:00Z"));
    for (i, id) in ["hudoerzoda", "huseynova", "grigoryan", "ismoilov", "wang"]
        .into_iter()
        .enumerate()
    {
        let accredited = accredit(&app, &format!("{KZ}/observers/{id}"))
            .await
            .unwrap();
        assert_eq!(state(&accredited), pb::AccreditationState::Accredited);
        assert_eq!(number(&accredited), format!("KZ-2023-{:06}", i + 1));
    }
    assert_eq!(
        sorted(observer_ids(&app, KZ, "accreditation.state = ACCREDITED", "").await),
        strings(&["grigoryan", "hudoerzoda", "huseynova", "ismoilov", "wang"])
    );
    assert_eq!(
        sorted(observer_ids(&app, KZ, r#"organization = "organizations/cis-ipa""#, "").await),
        strings(&["grigoryan", "ismoilov"])
    );

    let mut counts: Vec<(String, i32)> = list_delegations(
        &app,
        pb::ListDelegationsRequest {
            parent: KZ.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .delegations
    .into_iter()
    .map(|d| (id(&d.name).to_owned(), d.member_count))
    .collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("ccer-tj".to_owned(), 2),
            ("cec-az".to_owned(), 1),
            ("cec-md".to_owned(), 1),
            ("cis-ipa".to_owned(), 2),
            ("csto-pa".to_owned(), 1),
            ("gec-mn".to_owned(), 1),
            ("pa-turkic".to_owned(), 1),
            ("pa-union-by-ru".to_owned(), 1),
            ("sco".to_owned(), 1),
            ("sec-tr".to_owned(), 1),
        ]
    );
    let tj = get_delegation(&app, &tajikistan).await;
    assert_eq!(tj.head, hudoerzoda);
    assert_eq!(
        delegation_ids(&app, KZ, &format!(r#"head = "{hudoerzoda}""#), false).await,
        strings(&["ccer-tj"])
    );
}

#[sqlx::test]
async fn control_characters_in_text_are_invalid_arguments_naming_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;

    let error = try_create_delegation(
        &app,
        KZ,
        "sco",
        pb::Delegation {
            display_name: "SCO\0mission".into(),
            notes: "Met the chairman\u{7}".into(),
            ..sco_delegation()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["delegation.display_name", "delegation.notes"],
    );
    assert_eq!(app.count("delegations").await, 0);

    // Notes may run over several lines; stored text is NFC and trimmed.
    let created = create_delegation(
        &app,
        KZ,
        "sco",
        pb::Delegation {
            display_name: " SCO observation mission ".into(),
            notes: "First day\nSecond day ".into(),
            ..sco_delegation()
        },
    )
    .await;
    assert_eq!(created.display_name, "SCO observation mission");
    assert_eq!(created.notes, "First day\nSecond day");
}
