//! InvitationService end to end, and NOT_INVITED where the election requires invitations:
//! the protocol office invites the SCO and the CIS IPA to the Astana 2023 election, records
//! their replies, and only accepted invitations send observers.

use std::time::Duration;

use crate::common::{self, agencies, registry};

use agencies::*;
use common::*;
use observer_registry::pb::v1 as pb;
use pb::InvitationState as State;
use registry::*;
use sqlx::PgPool;
use tonic::{Code, Status};
use tonic_types::StatusExt;

// ---- fixtures ----

fn invitation_name(id: &str) -> String {
    format!("{KZ}/invitations/{id}")
}

fn observer_name(id: &str) -> String {
    format!("{KZ}/observers/{id}")
}

fn letter(organization_id: &str) -> pb::Invitation {
    pb::Invitation {
        organization: format!("organizations/{organization_id}"),
        send_date: "2023-01-20".into(),
        reference: "No. 12-3/1456".into(),
        ..Default::default()
    }
}

fn create_request(id: &str, invitation: pb::Invitation) -> pb::CreateInvitationRequest {
    pb::CreateInvitationRequest {
        parent: KZ.into(),
        invitation_id: id.into(),
        invitation: Some(invitation),
        request_id: String::new(),
    }
}

async fn try_invite(
    app: &TestApp,
    id: &str,
    organization_id: &str,
) -> Result<pb::Invitation, Status> {
    app.invitations()
        .create_invitation(create_request(id, letter(organization_id)))
        .await
        .map(|r| r.into_inner())
}

async fn invite(app: &TestApp, id: &str, organization_id: &str) -> pb::Invitation {
    try_invite(app, id, organization_id).await.unwrap()
}

async fn try_accept(app: &TestApp, id: &str, observers: i32) -> Result<pb::Invitation, Status> {
    app.invitations()
        .accept_invitation(pb::AcceptInvitationRequest {
            name: invitation_name(id),
            reply_date: "2023-02-01".into(),
            expected_observers: observers,
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn try_decline(app: &TestApp, id: &str) -> Result<pb::Invitation, Status> {
    app.invitations()
        .decline_invitation(pb::DeclineInvitationRequest {
            name: invitation_name(id),
            reply_date: "2023-02-02".into(),
            reason: "no mission this year".into(),
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn try_withdraw(app: &TestApp, id: &str) -> Result<pb::Invitation, Status> {
    app.invitations()
        .withdraw_invitation(pb::WithdrawInvitationRequest {
            name: invitation_name(id),
            reason: "the organization's statement breached neutrality".into(),
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn try_delete(app: &TestApp, id: &str) -> Result<pb::Invitation, Status> {
    app.invitations()
        .delete_invitation(pb::DeleteInvitationRequest {
            name: invitation_name(id),
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn try_update(
    app: &TestApp,
    invitation: pb::Invitation,
    paths: &[&str],
) -> Result<pb::Invitation, Status> {
    app.invitations()
        .update_invitation(pb::UpdateInvitationRequest {
            invitation: Some(invitation),
            update_mask: mask(paths),
        })
        .await
        .map(|r| r.into_inner())
}

async fn list(app: &TestApp, filter: &str) -> Vec<String> {
    app.invitations()
        .list_invitations(pb::ListInvitationsRequest {
            parent: KZ.into(),
            filter: filter.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations
        .into_iter()
        .map(|i| id(&i.name).to_owned())
        .collect()
}

/// `elections/kz-2023`, open for accreditation, with `invitation_required` as given and the
/// four organizations of `create_organizations`.
async fn election(app: &TestApp, invitation_required: bool) {
    create_organizations(app).await;
    app.elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(pb::Election {
                accreditation_deadline: Some(timestamp(
                    chrono::Utc::now() + chrono::Duration::days(1),
                )),
                invitation_required,
                ..kz_election("Early parliamentary election")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
}

async fn audit_count(app: &TestApp, resource: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE resource = $1")
        .bind(resource)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[track_caller]
fn assert_not_invited(status: &Status, fields: &[&str]) {
    assert_error(status, Code::FailedPrecondition, "NOT_INVITED");
    assert_eq!(violated_fields(status), fields, "{status:?}");
}

// ---- the lifecycle ----

#[sqlx::test]
async fn an_invitation_is_sent_accepted_and_withdrawn_each_step_audited(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    let sent = invite(&app, "sco", "sco").await;
    assert_eq!(sent.name, invitation_name("sco"));
    assert_eq!(sent.state(), State::Sent);
    assert_eq!((sent.reply_date.as_str(), sent.expected_observers), ("", 0));

    let accepted = try_accept(&app, "sco", 350).await.unwrap();
    assert_eq!(accepted.state(), State::Accepted);
    assert_eq!(accepted.reply_date, "2023-02-01");
    assert_eq!(accepted.expected_observers, 350);
    assert_ne!(accepted.etag, sent.etag);

    let withdrawn = try_withdraw(&app, "sco").await.unwrap();
    assert_eq!(withdrawn.state(), State::Withdrawn);
    // What the reply said stays on record.
    assert_eq!(
        (withdrawn.reply_date.as_str(), withdrawn.expected_observers),
        ("2023-02-01", 350)
    );
    assert_eq!(
        withdrawn.reason,
        "the organization's statement breached neutrality"
    );
    let got = app
        .invitations()
        .get_invitation(pb::GetInvitationRequest {
            name: invitation_name("sco"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, withdrawn);
    assert_eq!(audit_count(&app, &invitation_name("sco")).await, 3);
    let reason: String = sqlx::query_scalar(
        "SELECT after->>'reason' FROM audit_events WHERE resource = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(invitation_name("sco"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(reason, "the organization's statement breached neutrality");
}

#[sqlx::test]
async fn a_declined_invitation_takes_no_other_reply_and_refused_transitions_change_nothing(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    invite(&app, "cis-ipa", "cis-ipa").await;
    let declined = try_decline(&app, "cis-ipa").await.unwrap();
    assert_eq!(declined.state(), State::Declined);
    assert_eq!(declined.reason, "no mission this year");
    for refused in [
        try_accept(&app, "cis-ipa", 10).await,
        try_withdraw(&app, "cis-ipa").await,
        try_decline(&app, "cis-ipa").await,
    ] {
        let error = refused.unwrap_err();
        assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
        assert_eq!(
            error.get_details_error_info().unwrap().metadata["state"],
            "DECLINED"
        );
    }
    invite(&app, "sco", "sco").await;
    try_accept(&app, "sco", 5).await.unwrap();
    let error = try_accept(&app, "sco", 5).await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    try_withdraw(&app, "sco").await.unwrap();
    let error = try_withdraw(&app, "sco").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    // Two successful calls each: a refused one audits nothing.
    assert_eq!(audit_count(&app, &invitation_name("cis-ipa")).await, 2);
    assert_eq!(audit_count(&app, &invitation_name("sco")).await, 3);
}

#[sqlx::test]
async fn replies_are_checked_field_by_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    invite(&app, "sco", "sco").await;
    let error = app
        .invitations()
        .accept_invitation(pb::AcceptInvitationRequest {
            name: invitation_name("sco"),
            reply_date: "2023-02-31".into(),
            expected_observers: -3,
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["reply_date", "expected_observers"],
    );
    let error = try_accept(&app, "sco", 10_001).await.unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["expected_observers"]);
    // A reply dated before the letter (sent 2023-01-20).
    let error = app
        .invitations()
        .decline_invitation(pb::DeclineInvitationRequest {
            name: invitation_name("sco"),
            reply_date: "2023-01-19".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["reply_date"]);
    let error = app
        .invitations()
        .withdraw_invitation(pb::WithdrawInvitationRequest {
            name: invitation_name("sco"),
            reason: "  ".into(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["reason"]);
    let error = app
        .invitations()
        .create_invitation(create_request("Bad Id", pb::Invitation::default()))
        .await
        .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &[
            "invitation_id",
            "invitation.organization",
            "invitation.send_date",
        ],
    );
    let error = try_invite(&app, "nobody", "nobody").await.unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["invitation.organization"]);
    assert_eq!(
        get_state(&app, "sco").await,
        State::Sent,
        "refused replies change nothing"
    );
}

async fn get_state(app: &TestApp, id: &str) -> State {
    app.invitations()
        .get_invitation(pb::GetInvitationRequest {
            name: invitation_name(id),
        })
        .await
        .unwrap()
        .into_inner()
        .state()
}

#[sqlx::test]
async fn an_invitation_is_updated_and_deleted_only_while_sent(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    let sent = invite(&app, "sco", "sco").await;
    let updated = try_update(
        &app,
        pb::Invitation {
            reference: "No. 12-3/1457".into(),
            notes: "delivered by hand".into(),
            ..sent.clone()
        },
        &["reference", "notes"],
    )
    .await
    .unwrap();
    assert_eq!(updated.reference, "No. 12-3/1457");
    assert_eq!(updated.notes, "delivered by hand");
    // Output-only paths are not the caller's.
    let error = try_update(&app, updated.clone(), &["expected_observers"])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    // A stale etag.
    let error = try_update(
        &app,
        pb::Invitation {
            notes: "late".into(),
            ..sent
        },
        &["notes"],
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");

    let accepted = try_accept(&app, "sco", 20).await.unwrap();
    let error = try_update(
        &app,
        pb::Invitation {
            send_date: "2023-01-21".into(),
            ..accepted
        },
        &["send_date"],
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    let error = try_delete(&app, "sco").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");

    // A SENT one is deleted for good, and its organization may be invited again.
    invite(&app, "cis", "cis-ipa").await;
    let deleted = try_delete(&app, "cis").await.unwrap();
    assert_eq!(deleted.state(), State::Sent);
    let error = try_delete(&app, "cis").await.unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    invite(&app, "cis-again", "cis-ipa").await;
    assert_eq!(audit_count(&app, &invitation_name("cis")).await, 2);
    let after: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT after FROM audit_events WHERE resource = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(invitation_name("cis"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(after, None, "the deletion is audited with nothing after it");
}

#[sqlx::test]
async fn one_invitation_per_organization_and_a_create_is_answered_once_per_request_id(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    invite(&app, "sco", "sco").await;
    try_withdraw(&app, "sco").await.unwrap();
    // Withdrawn, the invitation stays the organization's one.
    let error = try_invite(&app, "sco-again", "sco").await.unwrap_err();
    assert_error(&error, Code::AlreadyExists, "ALREADY_EXISTS");
    assert_eq!(
        error.get_details_error_info().unwrap().metadata["resource"],
        invitation_name("sco")
    );
    let error = try_invite(&app, "sco", "cis-ipa").await.unwrap_err();
    assert_error(&error, Code::AlreadyExists, "ALREADY_EXISTS");
    // Moving another invitation onto the organization is refused the same way.
    let cis = invite(&app, "cis", "cis-ipa").await;
    let moved = pb::Invitation {
        name: cis.name,
        ..letter("sco")
    };
    let error = try_update(&app, moved, &["organization"])
        .await
        .unwrap_err();
    assert_error(&error, Code::AlreadyExists, "ALREADY_EXISTS");

    let request = pb::CreateInvitationRequest {
        request_id: new_request_id(),
        ..create_request("cec-az", letter("cec-az"))
    };
    let first = app
        .invitations()
        .create_invitation(request.clone())
        .await
        .unwrap()
        .into_inner();
    let replay = app
        .invitations()
        .create_invitation(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, replay);
    assert_eq!(audit_count(&app, &invitation_name("cec-az")).await, 1);
}

#[sqlx::test]
async fn etags_guard_every_reply(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    let sent = invite(&app, "sco", "sco").await;
    try_update(
        &app,
        pb::Invitation {
            notes: "called to confirm".into(),
            ..sent.clone()
        },
        &["notes"],
    )
    .await
    .unwrap();
    let error = app
        .invitations()
        .accept_invitation(pb::AcceptInvitationRequest {
            name: sent.name.clone(),
            reply_date: "2023-02-01".into(),
            expected_observers: 1,
            etag: sent.etag.clone(),
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    let error = app
        .invitations()
        .delete_invitation(pb::DeleteInvitationRequest {
            name: sent.name.clone(),
            etag: sent.etag,
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(get_state(&app, "sco").await, State::Sent);
}

#[sqlx::test]
async fn lists_filter_on_organization_and_state_and_page_by_keyset(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    for organization in ["sco", "cis-ipa", "cec-az", "cec-tj"] {
        invite(&app, organization, organization).await;
    }
    try_accept(&app, "sco", 300).await.unwrap();
    try_accept(&app, "cec-az", 12).await.unwrap();
    try_decline(&app, "cis-ipa").await.unwrap();

    assert_eq!(
        sorted(list(&app, "state = ACCEPTED").await),
        ["cec-az", "sco"]
    );
    assert_eq!(
        list(&app, "organization = \"organizations/cis-ipa\"").await,
        ["cis-ipa"]
    );
    assert_eq!(
        list(&app, "state = SENT OR expected_observers > 100")
            .await
            .len(),
        2
    );
    let error = app
        .invitations()
        .list_invitations(pb::ListInvitationsRequest {
            parent: KZ.into(),
            filter: "delete_time = 1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::InvalidArgument, "INVALID_FILTER");

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .invitations()
            .list_invitations(pb::ListInvitationsRequest {
                parent: KZ.into(),
                page_size: 3,
                page_token: token.clone(),
                order_by: "send_date desc".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 4);
        seen.extend(page.invitations.into_iter().map(|i| i.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 4);
    let error = app
        .invitations()
        .list_invitations(pb::ListInvitationsRequest {
            parent: KZ.into(),
            page_size: 3,
            page_token: format!("{token}x"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&error, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
}

#[sqlx::test]
async fn only_protocol_changes_invitations_and_readers_read_them(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool, "invitations").await;
    let admin = agencies.client(&app, ADMIN);
    for (id, kind) in [("sco", pb::OrganizationKind::InternationalOrganization)] {
        admin
            .organizations()
            .create_organization(pb::CreateOrganizationRequest {
                organization_id: id.into(),
                organization: Some(pb::Organization {
                    display_name: "Shanghai Cooperation Organization".into(),
                    kind: kind.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    admin
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Early parliamentary election")),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let request = || create_request("sco", letter("sco"));
    for agency in [READER, REGISTRAR, ACCREDITOR, ADMIN] {
        let error = agencies
            .client(&app, agency)
            .invitations()
            .create_invitation(request())
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::PermissionDenied, "{agency}");
    }
    // The role is checked before the resource's existence.
    let error = agencies
        .client(&app, READER)
        .invitations()
        .delete_invitation(pb::DeleteInvitationRequest {
            name: format!("{KZ}/invitations/nowhere"),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let protocol = agencies.client(&app, PROTOCOL);
    let error = protocol
        .invitations()
        .delete_invitation(pb::DeleteInvitationRequest {
            name: format!("{KZ}/invitations/nowhere"),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    let created = protocol
        .invitations()
        .create_invitation(request())
        .await
        .unwrap()
        .into_inner();
    let actor: String = sqlx::query_scalar("SELECT actor FROM audit_events WHERE resource = $1")
        .bind(&created.name)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(actor, PROTOCOL);
    for agency in [READER, PERSONAL_DATA_READER] {
        let got = agencies
            .client(&app, agency)
            .invitations()
            .get_invitation(pb::GetInvitationRequest {
                name: created.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got, created);
    }
    let error = agencies
        .client(&app, READER)
        .invitations()
        .accept_invitation(pb::AcceptInvitationRequest {
            name: created.name,
            reply_date: "2023-02-01".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
}

#[sqlx::test]
async fn the_feed_sends_creates_updates_and_deletions(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    let client = client_without_retries(&app, None);
    let mut feed = client.follow_invitations(KZ, "");
    feed.open().await.unwrap();
    invite(&app, "sco", "sco").await;
    try_accept(&app, "sco", 40).await.unwrap();
    invite(&app, "cis", "cis-ipa").await;
    try_delete(&app, "cis").await.unwrap();
    let mut events = Vec::new();
    for _ in 0..4 {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .unwrap()
            .unwrap();
        let kind = event.r#type();
        let invitation = event.invitation.unwrap();
        events.push((kind, id(&invitation.name).to_owned(), invitation.state()));
    }
    use pb::ChangeType::*;
    assert_eq!(
        events,
        [
            (Created, "sco".to_owned(), State::Sent),
            (Updated, "sco".to_owned(), State::Accepted),
            (Created, "cis".to_owned(), State::Sent),
            (Deleted, "cis".to_owned(), State::Sent),
        ]
    );
}

// ---- NOT_INVITED ----

#[sqlx::test]
async fn where_invitations_are_required_only_accepted_ones_send_observers(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, true).await;
    invite(&app, "sco", "sco").await;

    // Invited but not yet accepted: nothing yet.
    let error = try_create_delegation(&app, KZ, "sco-mission", delegation("SCO mission", "sco"))
        .await
        .unwrap_err();
    assert_not_invited(&error, &["delegation.organization"]);
    assert_eq!(
        error.get_details_error_info().unwrap().metadata["organization"],
        "organizations/sco"
    );
    let anna = observer("Anna", "Lee", "DE", "sco", "C01X00T47");
    let error = try_create_observer(&app, KZ, "anna", anna.clone())
        .await
        .unwrap_err();
    assert_not_invited(&error, &["observer.organization"]);

    try_accept(&app, "sco", 2).await.unwrap();
    create_delegation(&app, KZ, "sco-mission", delegation("SCO mission", "sco")).await;
    create_observer(&app, KZ, "anna", anna).await;
    let bob = observer("Bob", "Ray", "US", "cis-ipa", "C01X00T48");
    let people = vec![
        create_observer_request("", "li", observer("Li", "Wei", "CN", "sco", "E12345678")),
        create_observer_request("", "bob", bob.clone()),
    ];
    let error = batch_create(&app, KZ, people, "").await.unwrap_err();
    assert_not_invited(&error, &["requests[1].observer.organization"]);
    assert_eq!(
        app.count("observers").await,
        1,
        "a refused batch stores nobody"
    );

    // Moving the delegation or an observer to an organization not invited.
    let error = update_delegation(
        &app,
        pb::Delegation {
            name: format!("{KZ}/delegations/sco-mission"),
            organization: "organizations/cis-ipa".into(),
            ..Default::default()
        },
        &["organization"],
    )
    .await
    .unwrap_err();
    assert_not_invited(&error, &["delegation.organization"]);
    let error = update_observer(
        &app,
        pb::Observer {
            name: observer_name("anna"),
            organization: "organizations/cis-ipa".into(),
            ..Default::default()
        },
        &["organization"],
    )
    .await
    .unwrap_err();
    assert_not_invited(&error, &["observer.organization"]);

    let accredited = accredit(&app, &observer_name("anna")).await.unwrap();
    assert_eq!(state(&accredited), pb::AccreditationState::Accredited);
}

#[sqlx::test]
async fn withdrawing_an_invitation_keeps_the_observers_but_blocks_their_accreditation(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    election(&app, true).await;
    invite(&app, "sco", "sco").await;
    try_accept(&app, "sco", 3).await.unwrap();
    invite(&app, "cis", "cis-ipa").await;
    try_accept(&app, "cis", 3).await.unwrap();
    create_observer(
        &app,
        KZ,
        "anna",
        observer("Anna", "Lee", "DE", "sco", "C01X00T47"),
    )
    .await;
    create_observer(
        &app,
        KZ,
        "li",
        observer("Li", "Wei", "CN", "sco", "E12345678"),
    )
    .await;
    create_observer(
        &app,
        KZ,
        "bob",
        observer("Bob", "Ray", "US", "cis-ipa", "C01X00T48"),
    )
    .await;
    try_withdraw(&app, "sco").await.unwrap();

    assert_eq!(
        get_observer(&app, &observer_name("anna")).await.name,
        observer_name("anna"),
        "registered observers stay"
    );
    let error = accredit(&app, &observer_name("anna")).await.unwrap_err();
    assert_not_invited(&error, &["name"]);
    let error = app
        .observers()
        .batch_accredit_observers(pb::BatchAccreditObserversRequest {
            parent: KZ.into(),
            names: vec![observer_name("bob"), observer_name("li")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_not_invited(&error, &["names[1]"]);
    assert_eq!(
        state(&get_observer(&app, &observer_name("bob")).await),
        pb::AccreditationState::Pending,
        "a refused batch accredits nobody"
    );
    // A rejection needs no invitation.
    reject(&app, &observer_name("li"), "not invited any more")
        .await
        .unwrap();
    accredit(&app, &observer_name("bob")).await.unwrap();
}

#[sqlx::test]
async fn an_accreditation_racing_a_withdrawal_waits_for_it_and_is_refused(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    election(&app, true).await;
    invite(&app, "sco", "sco").await;
    try_accept(&app, "sco", 3).await.unwrap();
    create_observer(
        &app,
        KZ,
        "anna",
        observer("Anna", "Lee", "DE", "sco", "C01X00T47"),
    )
    .await;
    // A withdrawal in flight: its transaction holds the invitation's row until it commits.
    let mut withdrawal = pool.begin().await.unwrap();
    sqlx::query("UPDATE invitations SET state = 'WITHDRAWN', reason = 'recalled' WHERE id = 'sco'")
        .execute(&mut *withdrawal)
        .await
        .unwrap();
    let mut observers = app.observers();
    let accreditation = tokio::spawn(async move {
        observers
            .accredit_observer(pb::AccreditObserverRequest {
                name: observer_name("anna"),
                ..Default::default()
            })
            .await
    });
    let (handle, lookout) = (&accreditation, &pool);
    wait_until(
        Duration::from_secs(30),
        "the accreditation to wait for the invitation's lock",
        || async move {
            // An accreditation answered without waiting ends the wait too, and fails below.
            if handle.is_finished() {
                return true;
            }
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(lookout)
            .await
            .unwrap();
            waiting > 0
        },
    )
    .await;
    if accreditation.is_finished() {
        panic!(
            "the accreditation did not wait for the withdrawal: {:?}",
            accreditation.await
        );
    }
    withdrawal.commit().await.unwrap();
    let error = accreditation.await.unwrap().unwrap_err();
    assert_not_invited(&error, &["name"]);
    assert_eq!(
        state(&get_observer(&app, &observer_name("anna")).await),
        pb::AccreditationState::Pending
    );
}

#[sqlx::test]
async fn without_the_requirement_nobody_needs_an_invitation(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    invite(&app, "sco", "sco").await;
    try_withdraw(&app, "sco").await.unwrap();
    create_delegation(&app, KZ, "sco-mission", delegation("SCO mission", "sco")).await;
    create_observer(
        &app,
        KZ,
        "anna",
        observer("Anna", "Lee", "DE", "sco", "C01X00T47"),
    )
    .await;
    batch_create(
        &app,
        KZ,
        vec![create_observer_request(
            "",
            "bob",
            observer("Bob", "Ray", "US", "cis-ipa", "C01X00T48"),
        )],
        "",
    )
    .await
    .unwrap();
    accredit(&app, &observer_name("anna")).await.unwrap();
    accredit(&app, &observer_name("bob")).await.unwrap();
}

#[sqlx::test]
async fn postgresql_refuses_uninvited_senders_and_invitation_changes_as_sql(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    election(&app, true).await;
    invite(&app, "sco", "sco").await;
    try_accept(&app, "sco", 3).await.unwrap();
    create_observer(
        &app,
        KZ,
        "anna",
        observer("Anna", "Lee", "DE", "sco", "C01X00T47"),
    )
    .await;
    invite(&app, "cis", "cis-ipa").await;
    try_decline(&app, "cis").await.unwrap();
    invite(&app, "tj", "cec-tj").await;
    try_withdraw(&app, "sco").await.unwrap();
    for (sql, constraint) in [
        (
            "INSERT INTO delegations (election_id, id, display_name, organization_id) \
             VALUES ('kz-2023', 'cis', 'CIS IPA', 'cis-ipa')",
            "organization_invited",
        ),
        (
            "INSERT INTO observers (election_id, id, given_name, family_name, citizenship, \
             organization_id, travel_document_number) \
             VALUES ('kz-2023', 'bob', 'Bob', 'Ray', 'US', 'cis-ipa', 'C01X00T48')",
            "organization_invited",
        ),
        // Withdrawn: Anna stays, but is not accredited by hand either.
        (
            "UPDATE observers SET accreditation_state = 'ACCREDITED' WHERE id = 'anna'",
            "organization_invited",
        ),
        (
            "UPDATE invitations SET state = 'ACCEPTED', expected_observers = 1 WHERE id = 'cis'",
            "invitations_transition",
        ),
        (
            "UPDATE invitations SET state = 'SENT' WHERE id = 'sco'",
            "invitations_transition",
        ),
        (
            "UPDATE invitations SET notes = 'rewritten' WHERE id = 'cis'",
            "invitations_transition",
        ),
        (
            "DELETE FROM invitations WHERE id = 'cis'",
            "invitations_deleted_only_while_sent",
        ),
        (
            "UPDATE invitations SET state = 'ACCEPTED', reply_date = '2023-01-01' WHERE id = 'tj'",
            "invitations_reply_after_send",
        ),
        (
            "UPDATE invitations SET state = 'ACCEPTED', reply_date = '2023-02-01', \
             expected_observers = 10001 WHERE id = 'tj'",
            "invitations_expected_observers_range",
        ),
        (
            "UPDATE invitations SET state = 'ACCEPTED' WHERE id = 'tj'",
            "invitations_reply_recorded",
        ),
        (
            "INSERT INTO invitations (election_id, id, organization_id, send_date) \
             VALUES ('kz-2023', 'sco-2', 'sco', '2023-01-25')",
            "invitations_one_per_organization",
        ),
    ] {
        assert_eq!(refused(&pool, sql).await, constraint, "{sql}");
    }
    // A SENT invitation is deleted by hand.
    sqlx::query("DELETE FROM invitations WHERE id = 'tj'")
        .execute(&pool)
        .await
        .unwrap();
}

#[sqlx::test]
async fn the_summary_counts_invitations_and_the_observers_announced(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    for organization in ["sco", "cis-ipa", "cec-az", "cec-tj"] {
        invite(&app, organization, organization).await;
    }
    try_accept(&app, "sco", 300).await.unwrap();
    try_accept(&app, "cec-az", 12).await.unwrap();
    try_accept(&app, "cec-tj", 7).await.unwrap();
    try_withdraw(&app, "cec-tj").await.unwrap();
    try_decline(&app, "cis-ipa").await.unwrap();
    let summary = app
        .elections()
        .get_election_summary(pb::GetElectionSummaryRequest { name: KZ.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.invited_organizations, 4);
    assert_eq!(summary.accepted_invitations, 2);
    assert_eq!(summary.expected_observers, 312);
}

#[sqlx::test]
async fn a_forced_election_deletion_removes_answered_invitations_too(pool: PgPool) {
    let app = spawn_app(pool).await;
    election(&app, false).await;
    invite(&app, "sco", "sco").await;
    try_accept(&app, "sco", 3).await.unwrap();
    let error = delete_election(&app, KZ, false).await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HAS_CHILDREN");
    delete_election(&app, KZ, true).await.unwrap();
    assert_eq!(app.count("invitations").await, 0);
    assert_eq!(audit_count(&app, &invitation_name("sco")).await, 3);
}
