//! List mechanics end to end, through ListElections and ListOrganizations: keyset paging
//! while records are added, page sizes, page tokens, filters and ordering.

use crate::common;

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use common::*;
use observer_registry::pb::v1 as pb;
use prost_types::Timestamp;
use sqlx::PgPool;
use tonic::Status;

const PAGE: i32 = 7;
const ORIGINALS: usize = 250;

fn election(display_name: &str, host_country: &str, voting_day: &str) -> pb::Election {
    pb::Election {
        display_name: display_name.to_owned(),
        host_country: host_country.to_owned(),
        voting_day: voting_day.to_owned(),
        ..Default::default()
    }
}

fn create_request(id: &str, election: pb::Election) -> pb::CreateElectionRequest {
    pb::CreateElectionRequest {
        election_id: id.to_owned(),
        election: Some(election),
        request_id: String::new(),
    }
}

async fn create(app: &TestApp, id: &str, election: pb::Election) -> pb::Election {
    app.elections()
        .create_election(create_request(id, election))
        .await
        .unwrap()
        .into_inner()
}

/// Creates the elections with four concurrent clients; returns them in request order.
async fn create_all(app: &TestApp, requests: Vec<pb::CreateElectionRequest>) -> Vec<pb::Election> {
    let chunk = requests.len().div_ceil(4).max(1);
    let tasks: Vec<_> = requests
        .chunks(chunk)
        .map(|chunk| {
            let mut client = app.elections();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                let mut created = Vec::with_capacity(chunk.len());
                for request in chunk {
                    created.push(client.create_election(request).await.unwrap().into_inner());
                }
                created
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        created.extend(task.await.unwrap());
    }
    created
}

/// `count` elections `m-0000`… named `E0000`…, voting on nine different days.
async fn create_originals(app: &TestApp, count: usize) -> Vec<pb::Election> {
    let requests = (0..count)
        .map(|i| {
            let day = format!("2024-0{}-15", 1 + i % 9);
            create_request(
                &format!("m-{i:04}"),
                election(&format!("E{i:04}"), "KZ", &day),
            )
        })
        .collect();
    create_all(app, requests).await
}

fn list_request(filter: &str, order_by: &str, page_size: i32) -> pb::ListElectionsRequest {
    pb::ListElectionsRequest {
        page_size,
        page_token: String::new(),
        filter: filter.to_owned(),
        order_by: order_by.to_owned(),
    }
}

async fn list(
    app: &TestApp,
    request: pb::ListElectionsRequest,
) -> Result<pb::ListElectionsResponse, Status> {
    app.elections()
        .list_elections(request)
        .await
        .map(|r| r.into_inner())
}

/// Every election matching `filter` in `order_by` order, read in pages of `page_size`.
async fn list_all(
    app: &TestApp,
    filter: &str,
    order_by: &str,
    page_size: i32,
) -> Vec<pb::Election> {
    let mut request = list_request(filter, order_by, page_size);
    let mut all = Vec::new();
    loop {
        let page = list(app, request.clone()).await.unwrap();
        assert!(page.elections.len() <= page_size as usize);
        all.extend(page.elections);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
}

async fn names_matching(app: &TestApp, filter: &str) -> Vec<String> {
    let page = list(app, list_request(filter, "", 1000)).await.unwrap();
    assert_eq!(page.total_size as usize, page.elections.len(), "{filter}");
    page.elections.into_iter().map(|e| e.name).collect()
}

fn ids(names: &[String]) -> Vec<&str> {
    names
        .iter()
        .map(|n| n.strip_prefix("elections/").unwrap())
        .collect()
}

fn instant(timestamp: Option<Timestamp>) -> (i64, i32) {
    let timestamp = timestamp.expect("a timestamp");
    (timestamp.seconds, timestamp.nanos)
}

fn rfc3339(timestamp: Option<Timestamp>) -> String {
    let (seconds, nanos) = instant(timestamp);
    DateTime::<Utc>::from_timestamp(seconds, nanos as u32)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The fewest pages of `page_size` that hold `originals` plus `visible_per_page` records
/// added after every page but the last, all of them sorting after the cursor.
fn expected_pages(originals: usize, visible_per_page: usize, page_size: usize) -> usize {
    (1..)
        .find(|pages| pages * page_size >= originals + visible_per_page * (pages - 1))
        .unwrap()
}

#[track_caller]
fn assert_each_once(seen: &[pb::Election], expected: &[String]) {
    let mut unique = HashSet::new();
    for election in seen {
        assert!(
            unique.insert(election.name.as_str()),
            "{} was listed twice",
            election.name
        );
    }
    for name in expected {
        assert!(unique.contains(name.as_str()), "{name} was never listed");
    }
}

#[sqlx::test]
async fn paging_by_create_time_lists_every_election_once_while_new_ones_are_added(pool: PgPool) {
    let app = spawn_app(pool).await;
    let originals = create_originals(&app, ORIGINALS).await;

    let mut request = list_request("", "", PAGE);
    let mut seen: Vec<pb::Election> = Vec::new();
    let mut added = Vec::new();
    let mut pages = 0;
    loop {
        let count_now = app.count("elections").await;
        let page = list(&app, request.clone()).await.unwrap();
        pages += 1;
        assert_eq!(i64::from(page.total_size), count_now, "page {pages}");
        assert!(page.elections.len() <= PAGE as usize);
        seen.extend(page.elections);
        if page.next_page_token.is_empty() {
            break;
        }
        // Created now, so it sorts after the cursor: it must show up later, exactly once.
        let new = create(
            &app,
            &format!("n-{pages:04}"),
            kz_election("Added while paging"),
        )
        .await;
        added.push(new.name);
        request.page_token = page.next_page_token;
    }

    let original_names: Vec<String> = originals.iter().map(|e| e.name.clone()).collect();
    assert_each_once(&seen, &original_names);
    assert_each_once(&seen, &added);
    assert_eq!(seen.len(), ORIGINALS + added.len());
    for pair in seen.windows(2) {
        assert!(
            (instant(pair[0].create_time), &pair[0].name)
                < (instant(pair[1].create_time), &pair[1].name),
            "{} is listed before {} against (create_time, name)",
            pair[0].name,
            pair[1].name
        );
    }
    assert_eq!(pages, expected_pages(ORIGINALS, 1, PAGE as usize));
    assert_eq!(pages, 42);
}

/// A name just before `name` in byte order (the database collation is C).
fn just_before(name: &str) -> String {
    let mut bytes = name.as_bytes().to_vec();
    let last = bytes.last_mut().unwrap();
    *last -= 1;
    format!("{}~", String::from_utf8(bytes).unwrap())
}

#[sqlx::test]
async fn paging_by_display_name_lists_every_original_once_while_names_are_added_around_the_cursor(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let originals = create_originals(&app, ORIGINALS).await;

    let mut request = list_request("", "display_name", PAGE);
    let mut seen: Vec<pb::Election> = Vec::new();
    let mut behind = Vec::new();
    let mut ahead = Vec::new();
    let mut pages = 0;
    loop {
        let count_now = app.count("elections").await;
        let page = list(&app, request.clone()).await.unwrap();
        pages += 1;
        assert_eq!(i64::from(page.total_size), count_now, "page {pages}");
        let Some(cursor) = page.elections.last().cloned() else {
            panic!("page {pages} is empty");
        };
        seen.extend(page.elections);
        if page.next_page_token.is_empty() {
            break;
        }
        // Around the last row of the page: a name just before it and the same name with a
        // smaller id sort before the cursor and must never show up; a name just after it
        // and the same name with a larger id sort after it and must show up once.
        let added = create_all(
            &app,
            vec![
                create_request(
                    &format!("b-{pages:04}"),
                    kz_election(&just_before(&cursor.display_name)),
                ),
                create_request(&format!("a-{pages:04}"), kz_election(&cursor.display_name)),
                create_request(
                    &format!("y-{pages:04}"),
                    kz_election(&format!("{}a", cursor.display_name)),
                ),
                create_request(&format!("z-{pages:04}"), kz_election(&cursor.display_name)),
            ],
        )
        .await;
        behind.extend([added[0].name.clone(), added[1].name.clone()]);
        ahead.extend([added[2].name.clone(), added[3].name.clone()]);
        request.page_token = page.next_page_token;
    }

    let original_names: Vec<String> = originals.iter().map(|e| e.name.clone()).collect();
    assert_each_once(&seen, &original_names);
    assert_each_once(&seen, &ahead);
    for name in &behind {
        assert!(
            seen.iter().all(|e| e.name != *name),
            "{name} sorts before the cursor it was added behind, yet was listed"
        );
    }
    assert_eq!(seen.len(), ORIGINALS + ahead.len());
    for pair in seen.windows(2) {
        assert!(
            (&pair[0].display_name, &pair[0].name) < (&pair[1].display_name, &pair[1].name),
            "{} ({}) is listed before {} ({}) against (display_name, name)",
            pair[0].name,
            pair[0].display_name,
            pair[1].name,
            pair[1].display_name
        );
    }
    assert_eq!(pages, expected_pages(ORIGINALS, 2, PAGE as usize));
    assert_eq!(pages, 50);
}

#[sqlx::test]
async fn total_size_counts_the_rows_matching_the_filter_at_the_time_of_each_call(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_all(
        &app,
        (0..20)
            .map(|i| {
                let country = if i % 2 == 0 { "KZ" } else { "UZ" };
                create_request(&format!("e-{i:02}"), election("E", country, "2024-03-01"))
            })
            .collect(),
    )
    .await;

    let mut request = list_request(r#"host_country = "KZ""#, "", 3);
    let mut seen = Vec::new();
    let mut matching = 10;
    loop {
        let page = list(&app, request.clone()).await.unwrap();
        assert_eq!(page.total_size, matching);
        assert!(page.elections.iter().all(|e| e.host_country == "KZ"));
        seen.extend(page.elections);
        if page.next_page_token.is_empty() {
            break;
        }
        let n = seen.len();
        create(
            &app,
            &format!("kz-{n:02}"),
            election("E", "KZ", "2024-03-01"),
        )
        .await;
        create(
            &app,
            &format!("uz-{n:02}"),
            election("E", "UZ", "2024-03-01"),
        )
        .await;
        matching += 1;
        request.page_token = page.next_page_token;
    }
    assert_eq!(seen.len() as i32, matching);
    let unfiltered = list(&app, list_request("", "", 1)).await.unwrap();
    assert_eq!(
        i64::from(unfiltered.total_size),
        app.count("elections").await
    );
}

#[sqlx::test]
async fn page_size_zero_means_fifty_and_sizes_above_the_maximum_are_capped(pool: PgPool) {
    let app = spawn_app(pool).await;
    let originals = create_originals(&app, 60).await;

    let first = list(&app, list_request("", "", 0)).await.unwrap();
    assert_eq!(first.elections.len(), 50);
    assert_eq!(first.total_size, 60);
    assert!(!first.next_page_token.is_empty());
    let rest = list(
        &app,
        pb::ListElectionsRequest {
            page_token: first.next_page_token.clone(),
            ..list_request("", "", 0)
        },
    )
    .await
    .unwrap();
    assert_eq!(rest.elections.len(), 10);
    assert!(rest.next_page_token.is_empty());

    // 5000 is not refused: it is capped (at 1000), which holds all 60.
    let everything = list(&app, list_request("", "", 5000)).await.unwrap();
    assert_eq!(everything.elections.len(), 60);
    assert!(everything.next_page_token.is_empty());
    let mut listed: Vec<String> = everything.elections.into_iter().map(|e| e.name).collect();
    let mut created: Vec<String> = originals.into_iter().map(|e| e.name).collect();
    listed.sort();
    created.sort();
    assert_eq!(listed, created);

    let everything = app
        .organizations()
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: i32::MAX,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(everything.organizations.is_empty() && everything.next_page_token.is_empty());
}

#[sqlx::test]
async fn a_negative_page_size_is_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_originals(&app, 3).await;
    for page_size in [-1, i32::MIN] {
        let error = list(&app, list_request("", "", page_size))
            .await
            .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["page_size"]);
        let error = app
            .organizations()
            .list_organizations(pb::ListOrganizationsRequest {
                page_size,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["page_size"]);
    }
}

/// The token with the character in its middle replaced by another base64url character.
fn flip_middle(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[sqlx::test]
async fn tampered_and_garbage_page_tokens_are_invalid_page_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_originals(&app, 10).await;
    let first = list(&app, list_request("", "", 3)).await.unwrap();
    let token = first.next_page_token;
    assert!(!token.is_empty());

    for bad in [flip_middle(&token), "abc".to_owned(), format!("{token}A")] {
        let error = list(
            &app,
            pb::ListElectionsRequest {
                page_token: bad.clone(),
                ..list_request("", "", 3)
            },
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_PAGE_TOKEN", &["page_token"]);
    }

    // The untouched token still works.
    let second = list(
        &app,
        pb::ListElectionsRequest {
            page_token: token,
            ..list_request("", "", 3)
        },
    )
    .await
    .unwrap();
    assert_eq!(second.elections.len(), 3);
}

#[sqlx::test]
async fn tampered_organization_page_tokens_are_invalid_page_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    for i in 0..4 {
        app.organizations()
            .create_organization(pb::CreateOrganizationRequest {
                organization_id: format!("org-{i}"),
                organization: Some(pb::Organization {
                    display_name: format!("Organization {i}"),
                    kind: pb::OrganizationKind::InternationalOrganization.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let mut organizations = app.organizations();
    let first = organizations
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.organizations.len(), 2);
    for bad in [flip_middle(&first.next_page_token), "abc".to_owned()] {
        let error = organizations
            .list_organizations(pb::ListOrganizationsRequest {
                page_size: 2,
                page_token: bad,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&error, "INVALID_PAGE_TOKEN", &["page_token"]);
    }
    let second = organizations
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second
            .organizations
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        ["organizations/org-2", "organizations/org-3"]
    );
}

#[sqlx::test]
async fn a_page_token_from_another_query_is_invalid_page_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_originals(&app, 10).await;
    let filter = r#"host_country = "KZ""#;
    let first = list(&app, list_request(filter, "display_name", 3))
        .await
        .unwrap();
    let token = first.next_page_token;
    assert!(!token.is_empty());

    for (other_filter, other_order_by) in [
        (r#"host_country = "UZ""#, "display_name"),
        ("", "display_name"),
        (filter, "display_name desc"),
        (filter, "voting_day"),
        (filter, ""),
    ] {
        let error = list(
            &app,
            pb::ListElectionsRequest {
                page_token: token.clone(),
                ..list_request(other_filter, other_order_by, 3)
            },
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_PAGE_TOKEN", &["page_token"]);
    }

    // An election token is no organization token either.
    let error = app
        .organizations()
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: 3,
            page_token: list(&app, list_request("", "", 3))
                .await
                .unwrap()
                .next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_PAGE_TOKEN", &["page_token"]);
}

#[sqlx::test]
async fn a_page_token_may_be_used_with_a_different_page_size(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_originals(&app, 30).await;
    let all = list_all(&app, "", "", 1000).await;
    assert_eq!(all.len(), 30);

    let first = list(&app, list_request("", "", 7)).await.unwrap();
    let bigger = list(
        &app,
        pb::ListElectionsRequest {
            page_token: first.next_page_token.clone(),
            ..list_request("", "", 20)
        },
    )
    .await
    .unwrap();
    assert_eq!(first.elections[..], all[..7]);
    assert_eq!(bigger.elections[..], all[7..27]);
    assert!(!bigger.next_page_token.is_empty());
    let smaller = list(
        &app,
        pb::ListElectionsRequest {
            page_token: bigger.next_page_token,
            ..list_request("", "", 2)
        },
    )
    .await
    .unwrap();
    assert_eq!(smaller.elections[..], all[27..29]);
}

#[sqlx::test]
async fn an_sql_injection_attempt_in_a_filter_is_compared_as_plain_text(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_originals(&app, 5).await;
    let injection = "x' OR '1'='1";
    let filter = format!(r#"display_name = "{injection}""#);

    let none = list(&app, list_request(&filter, "", 0)).await.unwrap();
    assert!(none.elections.is_empty());
    assert_eq!(none.total_size, 0);
    let dropping = list(
        &app,
        list_request(r#"display_name = "x'; DROP TABLE elections; --""#, "", 0),
    )
    .await
    .unwrap();
    assert!(dropping.elections.is_empty());
    assert_eq!(app.count("elections").await, 5);

    let literal = create(&app, "literal", election(injection, "KZ", "2024-03-01")).await;
    let found = list(&app, list_request(&filter, "", 0)).await.unwrap();
    assert_eq!(found.elections, vec![literal]);
    assert_eq!(found.total_size, 1);
    assert_eq!(app.count("elections").await, 6);
}

/// Elections that the filter tests select from, created one after the other.
async fn create_filter_fixture(app: &TestApp) -> Vec<pb::Election> {
    let mut created = Vec::new();
    for (id, display_name, country, day) in [
        ("kz-parl-2023", "Bolashak parliamentary", "KZ", "2023-03-19"),
        ("uz-pres-2023", "Bright presidential", "UZ", "2023-07-09"),
        ("tj-ref-2023", "Budget referendum", "TJ", "2023-12-31"),
        ("kg-parl-2024", "Parliamentary", "KG", "2024-01-01"),
        ("kz-pres-2024", "Baiterek presidential", "KZ", "2024-11-20"),
        ("kz-local-2025", "Local maslikhat", "KZ", "2025-10-05"),
    ] {
        created.push(create(app, id, election(display_name, country, day)).await);
    }
    created
}

#[sqlx::test]
async fn voting_day_comparisons_partition_the_elections_at_the_boundary(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_filter_fixture(&app).await;

    let later = names_matching(&app, r#"voting_day >= "2024-01-01""#).await;
    let earlier = names_matching(&app, r#"voting_day < "2024-01-01""#).await;
    assert_eq!(
        ids(&later),
        ["kg-parl-2024", "kz-pres-2024", "kz-local-2025"]
    );
    assert_eq!(
        ids(&earlier),
        ["kz-parl-2023", "uz-pres-2023", "tj-ref-2023"]
    );
    assert_eq!(
        ids(&names_matching(&app, r#"voting_day = "2024-01-01""#).await),
        ["kg-parl-2024"]
    );
    assert_eq!(
        ids(&names_matching(&app, r#"voting_day > "2024-01-01""#).await),
        ["kz-pres-2024", "kz-local-2025"]
    );
    assert_eq!(
        ids(&names_matching(&app, r#"voting_day <= "2023-12-31""#).await),
        ["kz-parl-2023", "uz-pres-2023", "tj-ref-2023"]
    );
}

#[sqlx::test]
async fn a_trailing_star_is_a_prefix_match_that_combines_with_and(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_filter_fixture(&app).await;
    assert_eq!(
        ids(&names_matching(&app, r#"host_country = "KZ" AND display_name = "B*""#).await),
        ["kz-parl-2023", "kz-pres-2024"]
    );
    assert_eq!(
        ids(&names_matching(&app, r#"display_name = "B*""#).await),
        [
            "kz-parl-2023",
            "uz-pres-2023",
            "tj-ref-2023",
            "kz-pres-2024"
        ]
    );
    assert!(
        names_matching(&app, r#"display_name = "B""#)
            .await
            .is_empty()
    );
}

#[sqlx::test]
async fn not_excludes_the_matching_elections(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_filter_fixture(&app).await;
    assert_eq!(
        ids(&names_matching(&app, r#"NOT host_country = "KZ""#).await),
        ["uz-pres-2023", "tj-ref-2023", "kg-parl-2024"]
    );
    assert_eq!(
        ids(&names_matching(&app, r#"host_country != "KZ""#).await),
        ["uz-pres-2023", "tj-ref-2023", "kg-parl-2024"]
    );
}

#[sqlx::test]
async fn or_in_parentheses_combines_with_and(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_filter_fixture(&app).await;
    assert_eq!(
        ids(&names_matching(
            &app,
            r#"(host_country = "UZ" OR host_country = "KG") AND voting_day >= "2024-01-01""#
        )
        .await),
        ["kg-parl-2024"]
    );
    assert_eq!(
        ids(&names_matching(
            &app,
            r#"(host_country = "UZ" OR host_country = "KG") AND voting_day < "2024-01-01""#
        )
        .await),
        ["uz-pres-2023"]
    );
    assert_eq!(
        ids(&names_matching(
            &app,
            r#"(display_name = "Local*" OR voting_day < "2023-06-01") AND NOT host_country = "UZ""#
        )
        .await),
        ["kz-parl-2023", "kz-local-2025"]
    );
}

#[sqlx::test]
async fn create_time_filters_compare_instants(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fixture = create_filter_fixture(&app).await;
    let third = rfc3339(fixture[2].create_time);

    assert_eq!(
        ids(&names_matching(&app, &format!(r#"create_time > "{third}""#)).await),
        ["kg-parl-2024", "kz-pres-2024", "kz-local-2025"]
    );
    assert_eq!(
        ids(&names_matching(&app, &format!(r#"create_time <= "{third}""#)).await),
        ["kz-parl-2023", "uz-pres-2023", "tj-ref-2023"]
    );
    assert_eq!(
        ids(&names_matching(&app, &format!(r#"create_time = "{third}""#)).await),
        ["tj-ref-2023"]
    );
    assert!(
        names_matching(&app, r#"create_time < "2000-01-01T00:00:00Z""#)
            .await
            .is_empty()
    );
}

#[sqlx::test]
async fn malformed_filters_are_invalid_filter(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_filter_fixture(&app).await;
    for filter in [
        r#"display_name = = "x""#,
        "seats = 3",
        r#"voting_day = "2023-02-30""#,
        r#"display_name = "unterminated"#,
        r#"host_country = "KZ" AND"#,
        "create_time > 2024-01-01T00:00:00Z",
    ] {
        let error = list(&app, list_request(filter, "", 0)).await.unwrap_err();
        assert_invalid(&error, "INVALID_FILTER", &["filter"]);
    }
    let error = app
        .organizations()
        .list_organizations(pb::ListOrganizationsRequest {
            filter: "host_country = \"KZ\"".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_FILTER", &["filter"]);
}

#[sqlx::test]
async fn voting_day_desc_lists_descending_voting_days_across_pages(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_originals(&app, 40).await;
    let listed = list_all(&app, "", "voting_day desc", 3).await;
    assert_eq!(listed.len(), 40);
    assert_each_once(&listed, &[]);
    for pair in listed.windows(2) {
        assert!(
            pair[0].voting_day > pair[1].voting_day
                || (pair[0].voting_day == pair[1].voting_day && pair[0].name < pair[1].name),
            "{} ({}) before {} ({})",
            pair[0].name,
            pair[0].voting_day,
            pair[1].name,
            pair[1].voting_day
        );
    }
    assert_ne!(
        listed.first().unwrap().voting_day,
        listed.last().unwrap().voting_day
    );
}

#[sqlx::test]
async fn display_name_desc_then_voting_day_orders_by_both_across_pages(pool: PgPool) {
    let app = spawn_app(pool).await;
    // Four names, five voting days each, every pair twice, created in an order that
    // matches none of the keys.
    let requests = (0..40)
        .map(|i| {
            let name = ["Alpha", "Delta", "Bravo", "Charlie"][i % 4];
            let day = format!("2024-0{}-01", 9 - i % 5);
            create_request(&format!("e-{:02}", 39 - i), election(name, "KZ", &day))
        })
        .collect();
    create_all(&app, requests).await;

    let listed = list_all(&app, "", "display_name desc, voting_day", 3).await;
    assert_eq!(listed.len(), 40);
    assert_each_once(&listed, &[]);
    for pair in listed.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.display_name > b.display_name
                || (a.display_name == b.display_name && a.voting_day < b.voting_day)
                || (a.display_name == b.display_name
                    && a.voting_day == b.voting_day
                    && a.name < b.name),
            "{} ({}, {}) before {} ({}, {})",
            a.name,
            a.display_name,
            a.voting_day,
            b.name,
            b.display_name,
            b.voting_day
        );
    }
    assert_eq!(listed.first().unwrap().display_name, "Delta");
    assert_eq!(listed.last().unwrap().display_name, "Alpha");
}

#[sqlx::test]
async fn an_unknown_or_malformed_order_by_is_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_originals(&app, 3).await;
    for order_by in ["seats", "voting_day sideways", "display_name, display_name"] {
        let error = list(&app, list_request("", order_by, 0)).await.unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["order_by"]);
    }
    let error = app
        .organizations()
        .list_organizations(pb::ListOrganizationsRequest {
            order_by: "seats".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["order_by"]);
}

/// The contract: `order_by` takes "comma-separated filterable fields". Every filterable
/// field of both lists must be accepted, and a list ordered by one must come back in that
/// order, also across pages.
#[sqlx::test]
async fn every_filterable_field_is_accepted_in_order_by(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_all(
        &app,
        ["UZ", "KZ", "TJ", "KG", "KZ", "AZ", "UZ"]
            .iter()
            .enumerate()
            .map(|(i, country)| {
                create_request(&format!("e-{i}"), election("E", country, "2024-03-01"))
            })
            .collect(),
    )
    .await;

    let mut refused = Vec::new();
    for field in [
        "display_name",
        "host_country",
        "voting_day",
        "create_time",
        "update_time",
    ] {
        if let Err(error) = list(&app, list_request("", field, 0)).await {
            refused.push(format!("ListElections `{field}`: {}", error.message()));
        }
    }
    for field in [
        "display_name",
        "abbreviation",
        "kind",
        "create_time",
        "update_time",
    ] {
        let listed = app
            .organizations()
            .list_organizations(pb::ListOrganizationsRequest {
                order_by: field.into(),
                ..Default::default()
            })
            .await;
        if let Err(error) = listed {
            refused.push(format!("ListOrganizations `{field}`: {}", error.message()));
        }
    }
    assert!(refused.is_empty(), "refused: {refused:#?}");

    let by_country = list_all(&app, "", "host_country desc", 2).await;
    let countries: Vec<&str> = by_country.iter().map(|e| e.host_country.as_str()).collect();
    assert_eq!(countries, ["UZ", "UZ", "TJ", "KZ", "KZ", "KG", "AZ"]);
}
