//! OrganizationService end to end: a real server, the generated client, a fresh database.

use crate::common;

use common::*;
use observer_registry::pb::v1 as pb;
use pb::OrganizationKind as Kind;
use prost_types::FieldMask;
use sqlx::PgPool;
use tonic::Code;

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn organization(display_name: &str, kind: Kind, country: &str) -> pb::Organization {
    pb::Organization {
        display_name: display_name.to_owned(),
        kind: kind.into(),
        country: country.to_owned(),
        ..Default::default()
    }
}

fn cis_ipa() -> pb::Organization {
    pb::Organization {
        abbreviation: "CIS IPA".into(),
        ..organization(
            "Interparliamentary Assembly of the CIS",
            Kind::ParliamentaryAssembly,
            "",
        )
    }
}

fn cec_azerbaijan() -> pb::Organization {
    organization(
        "Central Election Commission of Azerbaijan",
        Kind::ForeignElectionBody,
        "AZ",
    )
}

async fn create_organization(
    app: &TestApp,
    id: &str,
    organization: pb::Organization,
) -> pb::Organization {
    app.organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: id.to_owned(),
            organization: Some(organization),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Sends a create that must be refused with exactly these violations, and proves that
/// nothing was written.
async fn assert_create_refused(
    app: &TestApp,
    id: &str,
    organization: pb::Organization,
    fields: &[&str],
) {
    let before = app.count("organizations").await;
    let error = app
        .organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: id.to_owned(),
            organization: Some(organization.clone()),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", fields);
    assert_eq!(
        app.count("organizations").await,
        before,
        "a refused create of {organization:?} wrote a row"
    );
}

async fn list_with_filter(
    app: &TestApp,
    filter: &str,
) -> Result<pb::ListOrganizationsResponse, tonic::Status> {
    app.organizations()
        .list_organizations(pb::ListOrganizationsRequest {
            filter: filter.to_owned(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn names(organizations: &[pb::Organization]) -> Vec<&str> {
    organizations.iter().map(|o| o.name.as_str()).collect()
}

#[sqlx::test]
async fn an_organization_is_created_read_listed_updated_and_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut organizations = app.organizations();

    let created = organizations
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: "cis-ipa".into(),
            organization: Some(cis_ipa()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "organizations/cis-ipa");
    assert_eq!(
        created.display_name,
        "Interparliamentary Assembly of the CIS"
    );
    assert_eq!(created.abbreviation, "CIS IPA");
    assert_eq!(created.kind(), Kind::ParliamentaryAssembly);
    assert_eq!(created.country, "");
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert!(!created.etag.is_empty());
    let cec = create_organization(&app, "cec-az", cec_azerbaijan()).await;
    assert_eq!(cec.country, "AZ");
    assert_eq!(cec.kind(), Kind::ForeignElectionBody);

    let got = organizations
        .get_organization(pb::GetOrganizationRequest {
            name: "organizations/cis-ipa".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    let listed = organizations
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.organizations, vec![created.clone(), cec.clone()]);
    assert_eq!(listed.total_size, 2);
    assert!(listed.next_page_token.is_empty());

    let updated = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                name: created.name.clone(),
                display_name: "Ignored: not in the mask".into(),
                abbreviation: "IPA CIS".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["abbreviation"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.abbreviation, "IPA CIS");
    assert_eq!(updated.display_name, created.display_name);
    assert_eq!(updated.kind, created.kind);
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.create_time, created.create_time);
    assert!(updated.update_time.unwrap().seconds >= created.update_time.unwrap().seconds);
    let reread = organizations
        .get_organization(pb::GetOrganizationRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reread, updated);

    organizations
        .delete_organization(pb::DeleteOrganizationRequest {
            name: created.name.clone(),
            etag: updated.etag.clone(),
        })
        .await
        .unwrap();
    let gone = organizations
        .get_organization(pb::GetOrganizationRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&gone, Code::NotFound, "NOT_FOUND");
    assert_eq!(app.count("organizations").await, 1);
    let left = organizations
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(left.organizations, vec![cec]);
}

#[sqlx::test]
async fn an_empty_id_gets_a_generated_uuid(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = create_organization(&app, "", cis_ipa()).await;
    let id = created.name.strip_prefix("organizations/").unwrap();
    assert!(uuid::Uuid::try_parse(id).is_ok(), "{id} is not a UUID");
    let got = app
        .organizations()
        .get_organization(pb::GetOrganizationRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);
}

#[sqlx::test]
async fn a_missing_or_blank_display_name_is_invalid_and_nothing_is_written(pool: PgPool) {
    let app = spawn_app(pool).await;
    for display_name in ["", "   "] {
        assert_create_refused(
            &app,
            "cis-ipa",
            pb::Organization {
                display_name: display_name.into(),
                ..cis_ipa()
            },
            &["organization.display_name"],
        )
        .await;
    }
    assert_eq!(app.count("organizations").await, 0);
}

#[sqlx::test]
async fn a_display_name_over_200_characters_is_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert_create_refused(
        &app,
        "long",
        organization(&"a".repeat(201), Kind::InternationalOrganization, ""),
        &["organization.display_name"],
    )
    .await;
    assert_create_refused(
        &app,
        "long",
        organization(&"Ш".repeat(201), Kind::InternationalOrganization, ""),
        &["organization.display_name"],
    )
    .await;
    assert_eq!(app.count("organizations").await, 0);

    // The limit counts characters, not bytes: 200 Cyrillic letters (400 bytes) fit.
    let longest = create_organization(
        &app,
        "longest",
        organization(&"Ш".repeat(200), Kind::InternationalOrganization, ""),
    )
    .await;
    assert_eq!(longest.display_name.chars().count(), 200);
    assert_eq!(app.count("organizations").await, 1);
}

#[sqlx::test]
async fn an_unspecified_or_unknown_kind_is_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert_create_refused(
        &app,
        "sco",
        organization("Shanghai Cooperation Organisation", Kind::Unspecified, ""),
        &["organization.kind"],
    )
    .await;
    assert_create_refused(
        &app,
        "sco",
        pb::Organization {
            kind: 99,
            ..organization("Shanghai Cooperation Organisation", Kind::Unspecified, "")
        },
        &["organization.kind"],
    )
    .await;
    assert_eq!(app.count("organizations").await, 0);
}

#[sqlx::test]
async fn foreign_election_bodies_and_governments_need_a_country(pool: PgPool) {
    let app = spawn_app(pool).await;
    for kind in [Kind::ForeignElectionBody, Kind::ForeignGovernment] {
        assert_create_refused(
            &app,
            "foreign",
            organization("Foreign body", kind, ""),
            &["organization.country"],
        )
        .await;
    }
    assert_eq!(app.count("organizations").await, 0);

    let government = create_organization(
        &app,
        "mfa-kg",
        organization("Ministry of Foreign Affairs", Kind::ForeignGovernment, "KG"),
    )
    .await;
    assert_eq!(government.country, "KG");
}

#[sqlx::test]
async fn other_kinds_must_not_have_a_country(pool: PgPool) {
    let app = spawn_app(pool).await;
    for kind in [
        Kind::InternationalOrganization,
        Kind::ParliamentaryAssembly,
        Kind::NonGovernmentalOrganization,
    ] {
        assert_create_refused(
            &app,
            "with-country",
            organization("Some body", kind, "KZ"),
            &["organization.country"],
        )
        .await;
    }
    assert_eq!(app.count("organizations").await, 0);
}

#[sqlx::test]
async fn an_unknown_or_malformed_country_is_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    for country in ["XX", "az", "AZE", "A"] {
        assert_create_refused(
            &app,
            "cec",
            pb::Organization {
                country: country.into(),
                ..cec_azerbaijan()
            },
            &["organization.country"],
        )
        .await;
    }
    assert_eq!(app.count("organizations").await, 0);
}

#[sqlx::test]
async fn a_malformed_organization_id_is_invalid(pool: PgPool) {
    let app = spawn_app(pool).await;
    let too_long = "a".repeat(64);
    for id in [
        "2023-cec",
        "CEC",
        "cec_az",
        "cec-",
        "-cec",
        "cec az",
        too_long.as_str(),
    ] {
        assert_create_refused(&app, id, cis_ipa(), &["organization_id"]).await;
    }
    assert_eq!(app.count("organizations").await, 0);
    let longest = "a".repeat(63);
    let created = create_organization(&app, &longest, cis_ipa()).await;
    assert_eq!(created.name, format!("organizations/{longest}"));
}

#[sqlx::test]
async fn every_bad_field_is_named_at_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert_create_refused(
        &app,
        "Bad_Id",
        pb::Organization {
            abbreviation: "x".repeat(33),
            ..organization("  ", Kind::ForeignGovernment, "XX")
        },
        &[
            "organization_id",
            "organization.display_name",
            "organization.abbreviation",
            "organization.country",
        ],
    )
    .await;

    let missing = app
        .organizations()
        .create_organization(pb::CreateOrganizationRequest::default())
        .await
        .unwrap_err();
    assert_invalid(&missing, "INVALID_ARGUMENT", &["organization"]);

    let bad_request_id = app
        .organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: "cis-ipa".into(),
            organization: Some(cis_ipa()),
            request_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_invalid(&bad_request_id, "INVALID_ARGUMENT", &["request_id"]);
    assert_eq!(app.count("organizations").await, 0);
}

#[sqlx::test]
async fn a_taken_id_is_already_exists(pool: PgPool) {
    let app = spawn_app(pool).await;
    let first = create_organization(&app, "cis-ipa", cis_ipa()).await;
    let error = app
        .organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: "cis-ipa".into(),
            organization: Some(organization(
                "Another assembly",
                Kind::ParliamentaryAssembly,
                "",
            )),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::AlreadyExists, "ALREADY_EXISTS");
    assert_eq!(app.count("organizations").await, 1);
    let kept = app
        .organizations()
        .get_organization(pb::GetOrganizationRequest {
            name: first.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept, first);
}

#[sqlx::test]
async fn a_replayed_request_id_returns_the_first_organization_and_creates_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    let request = pb::CreateOrganizationRequest {
        organization_id: String::new(),
        organization: Some(cis_ipa()),
        request_id: new_request_id(),
    };
    let first = app
        .organizations()
        .create_organization(request.clone())
        .await
        .unwrap()
        .into_inner();
    let second = app
        .organizations()
        .create_organization(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    assert_eq!(app.count("organizations").await, 1);

    let different = app
        .organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization: Some(cec_azerbaijan()),
            ..request
        })
        .await
        .unwrap_err();
    assert_invalid(&different, "INVALID_ARGUMENT", &["request_id"]);
    assert_eq!(app.count("organizations").await, 1);
}

#[sqlx::test]
async fn a_stale_etag_on_update_or_delete_is_aborted_and_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = create_organization(&app, "cis-ipa", cis_ipa()).await;
    let mut organizations = app.organizations();
    let edited = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                name: created.name.clone(),
                abbreviation: "first edit".into(),
                ..Default::default()
            }),
            update_mask: mask(&["abbreviation"]),
        })
        .await
        .unwrap()
        .into_inner();

    let stale = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                name: created.name.clone(),
                abbreviation: "stale".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["abbreviation"]),
        })
        .await
        .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");

    let stale_delete = organizations
        .delete_organization(pb::DeleteOrganizationRequest {
            name: created.name.clone(),
            etag: created.etag.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&stale_delete, Code::Aborted, "ETAG_MISMATCH");

    assert_eq!(app.count("organizations").await, 1);
    let now = organizations
        .get_organization(pb::GetOrganizationRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now, edited);
    assert_eq!(now.abbreviation, "first edit");
}

#[sqlx::test]
async fn output_only_and_unknown_mask_paths_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = create_organization(&app, "cis-ipa", cis_ipa()).await;
    let mut organizations = app.organizations();
    for paths in [
        &["name"][..],
        &["create_time"],
        &["update_time"],
        &["etag"],
        &["createTime"],
        &["abbreviation", "etag"],
        &["seats"],
    ] {
        let error = organizations
            .update_organization(pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    name: created.name.clone(),
                    abbreviation: "changed".into(),
                    ..Default::default()
                }),
                update_mask: mask(paths),
            })
            .await
            .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["update_mask"]);
    }
    let unchanged = organizations
        .get_organization(pb::GetOrganizationRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, created);
}

#[sqlx::test]
async fn changing_the_kind_to_foreign_election_body_needs_a_country(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = create_organization(
        &app,
        "odihr",
        organization("OSCE/ODIHR", Kind::InternationalOrganization, ""),
    )
    .await;
    let mut organizations = app.organizations();

    let error = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                name: created.name.clone(),
                kind: Kind::ForeignElectionBody.into(),
                ..Default::default()
            }),
            update_mask: mask(&["kind"]),
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["organization.country"]);
    let unchanged = organizations
        .get_organization(pb::GetOrganizationRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, created);

    let foreign = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                name: created.name.clone(),
                kind: Kind::ForeignElectionBody.into(),
                country: "PL".into(),
                ..Default::default()
            }),
            update_mask: mask(&["kind", "country"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(foreign.kind(), Kind::ForeignElectionBody);
    assert_eq!(foreign.country, "PL");

    // Back to a kind without a country: the country must be cleared in the same update.
    let error = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                name: created.name.clone(),
                kind: Kind::InternationalOrganization.into(),
                ..Default::default()
            }),
            update_mask: mask(&["kind"]),
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["organization.country"]);
    let back = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                name: created.name.clone(),
                kind: Kind::InternationalOrganization.into(),
                country: String::new(),
                ..Default::default()
            }),
            update_mask: mask(&["kind", "country"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.kind(), Kind::InternationalOrganization);
    assert_eq!(back.country, "");
}

#[sqlx::test]
async fn an_update_with_an_empty_mask_replaces_every_field_and_validates_them(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = create_organization(&app, "cis-ipa", cis_ipa()).await;
    let mut organizations = app.organizations();
    let error = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
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
        &["organization.display_name", "organization.kind"],
    );

    let replaced = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                name: created.name.clone(),
                ..cec_azerbaijan()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        replaced.display_name,
        "Central Election Commission of Azerbaijan"
    );
    assert_eq!(replaced.abbreviation, "");
    assert_eq!(replaced.kind(), Kind::ForeignElectionBody);
    assert_eq!(replaced.country, "AZ");
}

#[sqlx::test]
async fn malformed_names_are_invalid_and_unknown_ones_not_found(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut organizations = app.organizations();
    for name in [
        "",
        "organizations/",
        "organizations/CIS",
        "elections/cis",
        "organizations/cis/extra",
    ] {
        let error = organizations
            .get_organization(pb::GetOrganizationRequest { name: name.into() })
            .await
            .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["name"]);
    }
    let error = organizations
        .get_organization(pb::GetOrganizationRequest {
            name: "organizations/nowhere".into(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    let error = organizations
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                name: "organizations/nowhere".into(),
                ..cis_ipa()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    let error = organizations
        .delete_organization(pb::DeleteOrganizationRequest {
            name: "organizations/nowhere".into(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
}

#[sqlx::test]
async fn a_kind_filter_returns_only_organizations_of_that_kind(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ipa = create_organization(&app, "cis-ipa", cis_ipa()).await;
    let sco = create_organization(
        &app,
        "sco",
        organization(
            "Shanghai Cooperation Organisation",
            Kind::InternationalOrganization,
            "",
        ),
    )
    .await;
    let cec = create_organization(&app, "cec-az", cec_azerbaijan()).await;
    let csto = create_organization(
        &app,
        "csto-pa",
        organization(
            "Parliamentary Assembly of the CSTO",
            Kind::ParliamentaryAssembly,
            "",
        ),
    )
    .await;
    create_organization(
        &app,
        "ngo",
        organization("Civic monitors", Kind::NonGovernmentalOrganization, ""),
    )
    .await;

    let assemblies = list_with_filter(&app, "kind = PARLIAMENTARY_ASSEMBLY")
        .await
        .unwrap();
    assert_eq!(
        names(&assemblies.organizations),
        [ipa.name.as_str(), csto.name.as_str()]
    );
    assert_eq!(assemblies.total_size, 2);
    assert!(
        assemblies
            .organizations
            .iter()
            .all(|o| o.kind() == Kind::ParliamentaryAssembly)
    );

    let quoted = list_with_filter(&app, r#"kind = "PARLIAMENTARY_ASSEMBLY""#)
        .await
        .unwrap();
    assert_eq!(quoted.organizations, assemblies.organizations);

    let international = list_with_filter(
        &app,
        "kind = PARLIAMENTARY_ASSEMBLY OR kind = INTERNATIONAL_ORGANIZATION",
    )
    .await
    .unwrap();
    assert_eq!(
        names(&international.organizations),
        [ipa.name.as_str(), sco.name.as_str(), csto.name.as_str()]
    );
    assert_eq!(international.total_size, 3);

    let not_assemblies = list_with_filter(&app, "kind != PARLIAMENTARY_ASSEMBLY")
        .await
        .unwrap();
    assert_eq!(not_assemblies.total_size, 3);
    assert!(
        not_assemblies
            .organizations
            .iter()
            .all(|o| o.kind() != Kind::ParliamentaryAssembly)
    );

    let azerbaijani = list_with_filter(&app, r#"country = "AZ""#).await.unwrap();
    assert_eq!(azerbaijani.organizations, vec![cec.clone()]);
    // Organizations without a country are not in Azerbaijan either.
    for filter in [r#"country != "AZ""#, r#"NOT country = "AZ""#] {
        let elsewhere = list_with_filter(&app, filter).await.unwrap();
        assert_eq!(elsewhere.total_size, 4, "{filter}");
        assert!(!names(&elsewhere.organizations).contains(&cec.name.as_str()));
    }
}

#[sqlx::test]
async fn a_kind_filter_with_an_unknown_value_is_invalid_filter(pool: PgPool) {
    let app = spawn_app(pool).await;
    create_organization(&app, "cis-ipa", cis_ipa()).await;
    for filter in [
        "kind = PARLIAMENT",
        r#"kind = "INTERNATIONAL""#,
        "kind < PARLIAMENTARY_ASSEMBLY",
        "seats = 3",
    ] {
        let error = list_with_filter(&app, filter).await.unwrap_err();
        assert_invalid(&error, "INVALID_FILTER", &["filter"]);
    }
}

#[sqlx::test]
async fn control_characters_in_text_are_invalid_arguments_naming_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert_create_refused(
        &app,
        "cis-ipa",
        pb::Organization {
            display_name: "Interparliamentary\0Assembly".into(),
            abbreviation: "CIS\u{202E}IPA".into(),
            ..cis_ipa()
        },
        &["organization.display_name", "organization.abbreviation"],
    )
    .await;
    let created = create_organization(
        &app,
        "cis-ipa",
        pb::Organization {
            display_name: "  Interparliamentary Assembly of the CIS ".into(),
            ..cis_ipa()
        },
    )
    .await;
    assert_eq!(
        created.display_name,
        "Interparliamentary Assembly of the CIS"
    );
}
