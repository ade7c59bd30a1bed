//! Headline figures and the public register, against hand-counted fixtures.

use crate::common::{self, registry};

use common::*;
use observer_registry::pb::v1 as pb;
use pb::AccreditationState as State;
use prost::Message;
use registry::*;
use sqlx::PgPool;
use tonic::Code;

async fn summary(app: &TestApp, name: &str) -> pb::ElectionSummary {
    app.elections()
        .get_election_summary(pb::GetElectionSummaryRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
}

async fn accredited_total(app: &TestApp) -> i32 {
    app.observers()
        .list_observers(pb::ListObserversRequest {
            parent: KZ.into(),
            filter: "accreditation.state = ACCREDITED".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total_size
}

/// Registers and accredits an observer; returns it as accredited.
async fn accredited(
    app: &TestApp,
    id: &str,
    citizenship: &str,
    org: &str,
    family: &str,
) -> pb::Observer {
    let doc = format!("{citizenship}{:0>7}", id.to_uppercase().replace('-', ""));
    let created = create_observer(
        app,
        KZ,
        id,
        observer("Given", family, citizenship, org, &doc),
    )
    .await;
    accredit(app, &created.name).await.unwrap()
}

#[sqlx::test]
async fn the_summary_counts_accredited_observers_only_and_agrees_with_the_list(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    accredited(&app, "sco-1", "CN", "sco", "Li").await;
    accredited(&app, "sco-2", "CN", "sco", "Wang").await;
    accredited(&app, "sco-3", "RU", "sco", "Ivanov").await;
    accredited(&app, "ipa-1", "RU", "cis-ipa", "Petrov").await;
    create_observer(
        &app,
        KZ,
        "ipa-2",
        observer("Pending", "Person", "BY", "cis-ipa", "BY0000001"),
    )
    .await;
    accredited(&app, "az-1", "AZ", "cec-az", "Aliyev").await;
    let rejected = create_observer(
        &app,
        KZ,
        "az-2",
        observer("Rejected", "Person", "AZ", "cec-az", "AZ0000002"),
    )
    .await;
    reject(&app, &rejected.name, "documents incomplete")
        .await
        .unwrap();
    let revoked = accredited(&app, "tj-1", "TJ", "cec-tj", "Rahimov").await;
    revoke(&app, &revoked.name, "left the mission")
        .await
        .unwrap();
    let deleted = accredited(&app, "tj-2", "TJ", "cec-tj", "Karimov").await;
    revoke(&app, &deleted.name, "left the mission")
        .await
        .unwrap();
    let deleted = delete_observer(&app, &deleted.name, "").await.unwrap();

    create_delegation(&app, KZ, "sco", delegation("SCO mission", "sco")).await;
    let gone = create_delegation(&app, KZ, "ipa", delegation("CIS IPA group", "cis-ipa")).await;
    delete_delegation(&app, &gone.name, "").await.unwrap();

    let figures = summary(&app, KZ).await;
    assert_eq!(figures.election, KZ);
    assert_eq!(figures.accredited_observers, 5);
    assert_eq!(figures.pending_observers, 1);
    assert_eq!(figures.international_organizations, 2);
    assert_eq!(figures.organizations, 3);
    assert_eq!(figures.countries, 3);
    assert_eq!(figures.delegations, 1);
    assert_eq!(figures.meetings, 0);
    assert_eq!(
        figures.headline,
        "5 observers from 2 international organizations and 3 countries"
    );
    let by_org: Vec<(String, i64)> = figures
        .by_organization
        .iter()
        .map(|o| (o.organization.clone(), o.observers))
        .collect();
    assert_eq!(by_org[0], ("organizations/sco".into(), 3));
    assert_eq!(by_org.len(), 3);
    assert!(by_org.contains(&("organizations/cec-az".into(), 1)));
    assert_eq!(
        figures.by_organization[0].display_name,
        "Shanghai Cooperation Organization"
    );
    let by_country: Vec<(String, i64)> = figures
        .by_country
        .iter()
        .map(|c| (c.country.clone(), c.observers))
        .collect();
    assert_eq!(
        by_country,
        vec![("CN".into(), 2), ("RU".into(), 2), ("AZ".into(), 1)]
    );
    assert_eq!(
        i64::from(accredited_total(&app).await),
        figures.accredited_observers
    );

    // An accredited observer is revoked before it can be deleted: undeleted, it comes back
    // revoked, and the figures, which count accredited observers only, do not move.
    let undeleted = undelete_observer(&app, &deleted.name, "").await.unwrap();
    assert_eq!(state(&undeleted), State::Revoked);
    let after = summary(&app, KZ).await;
    assert_eq!(after.accredited_observers, figures.accredited_observers);
    assert_eq!(after.countries, figures.countries);
    assert_eq!(after.organizations, figures.organizations);
    assert_eq!(
        i64::from(accredited_total(&app).await),
        after.accredited_observers
    );
}

#[sqlx::test]
async fn one_of_each_reads_in_the_singular(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    assert_eq!(
        summary(&app, KZ).await.headline,
        "0 observers from 0 international organizations and 0 countries"
    );
    accredited(&app, "sco-1", "CN", "sco", "Li").await;
    assert_eq!(
        summary(&app, KZ).await.headline,
        "1 observer from 1 international organization and 1 country"
    );
}

#[sqlx::test]
async fn the_summary_of_a_missing_or_malformed_election_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let missing = app
        .elections()
        .get_election_summary(pb::GetElectionSummaryRequest {
            name: "elections/nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_error(&missing, Code::NotFound, "NOT_FOUND");
    let malformed = app
        .elections()
        .get_election_summary(pb::GetElectionSummaryRequest {
            name: "nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_invalid(&malformed, "INVALID_ARGUMENT", &["name"]);
}

#[sqlx::test]
async fn the_public_register_lists_accredited_observers_by_name_without_personal_data(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let secret = "SECRETPASSPORT42";
    let named = create_observer(
        &app,
        KZ,
        "zhang",
        pb::Observer {
            email: "zhang@example.org".into(),
            phone: "+86 10 1234 5678".into(),
            date_of_birth: "1970-01-02".into(),
            ..observer("Wei", "Zhang", "CN", "sco", secret)
        },
    )
    .await;
    accredit(&app, &named.name).await.unwrap();
    accredited(&app, "a-1", "RU", "cis-ipa", "Abramov").await;
    accredited(&app, "a-2", "AZ", "cec-az", "Abbasov").await;
    accredited(&app, "m-1", "CN", "sco", "Ma").await;
    create_observer(
        &app,
        KZ,
        "pending",
        observer("Pending", "Aaron", "BY", "cis-ipa", "BY0000009"),
    )
    .await;
    let revoked = accredited(&app, "revoked", "TJ", "cec-tj", "Aardvark").await;
    revoke(&app, &revoked.name, "left").await.unwrap();
    let deleted = accredited(&app, "deleted", "TJ", "cec-tj", "Aaronov").await;
    revoke(&app, &deleted.name, "left").await.unwrap();
    delete_observer(&app, &deleted.name, "").await.unwrap();

    let mut register = app.observers();
    let mut families = Vec::new();
    let mut token = String::new();
    loop {
        let page = register
            .list_public_register(pb::ListPublicRegisterRequest {
                parent: KZ.into(),
                page_size: 2,
                page_token: token.clone(),
                filter: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 4);
        let bytes = page.encode_to_vec();
        for personal in [
            secret.as_bytes(),
            b"zhang@example.org",
            b"1970-01-02",
            b"1234 5678",
        ] {
            assert!(
                !bytes.windows(personal.len()).any(|w| w == personal),
                "personal data in the public register"
            );
        }
        for entry in &page.entries {
            assert!(
                entry.accreditation_number.starts_with("KZ-2023-"),
                "{entry:?}"
            );
            assert!(!entry.organization_display_name.is_empty());
        }
        families.extend(page.entries.into_iter().map(|e| e.family_name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(families, ["Abbasov", "Abramov", "Ma", "Zhang"]);

    let chinese = register
        .list_public_register(pb::ListPublicRegisterRequest {
            parent: KZ.into(),
            filter: r#"citizenship = "CN" AND organization = "organizations/sco""#.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<(String, String)> = chinese
        .entries
        .iter()
        .map(|e| (e.family_name.clone(), e.organization.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("Ma".to_owned(), "organizations/sco".to_owned()),
            ("Zhang".into(), "organizations/sco".into())
        ]
    );

    let bad = register
        .list_public_register(pb::ListPublicRegisterRequest {
            parent: KZ.into(),
            filter: r#"travel_document_number = "SECRETPASSPORT42""#.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&bad, "INVALID_FILTER", &["filter"]);
}
