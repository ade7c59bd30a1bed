//! MeetingService end to end: a real server, the generated client, a fresh database.
//! The CEC chairman's meetings with the delegations of the Astana 2023 story: scheduling with
//! conflict checks, the delegations' stays, holding and cancelling, soft delete and lists.

use crate::common::{self, registry};

use common::*;
use observer_registry::pb::v1 as pb;
use pb::MeetingState as State;
use pb::OrganizationKind as Kind;
use pb::meeting_service_client::MeetingServiceClient;
use prost_types::Timestamp;
use registry::*;
use sqlx::PgPool;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

const ABDIROV: &str = "Nurlan Abdirov, Chairman of the Central Election Commission";
const DEPUTY: &str = "Deputy Chairman of the Central Election Commission";
const SECRETARY: &str = "Secretary of the Central Election Commission";

const SCO: &str = "elections/kz-2023/delegations/sco";
const CIS_IPA: &str = "elections/kz-2023/delegations/cis-ipa";
const CEC_AZ: &str = "elections/kz-2023/delegations/cec-az";
const CEC_TJ: &str = "elections/kz-2023/delegations/cec-tj";

// ---- fixtures ----

fn meetings(app: &TestApp) -> MeetingServiceClient<Channel> {
    MeetingServiceClient::new(app.channel.clone())
}

fn meeting_name(id: &str) -> String {
    format!("{KZ}/meetings/{id}")
}

fn ts(rfc3339: &str) -> Option<Timestamp> {
    Some(timestamp(at(rfc3339)))
}

/// A meeting of `host` with `delegations` from `start` to `end` (RFC 3339).
pub(crate) fn meeting(host: &str, delegations: &[&str], start: &str, end: &str) -> pb::Meeting {
    pb::Meeting {
        title: "Meeting with the international observers".into(),
        host: host.to_owned(),
        delegations: strings(delegations),
        start_time: ts(start),
        end_time: ts(end),
        ..Default::default()
    }
}

/// `elections/kz-2023` (no accreditation deadline) with the delegations `sco`, `cis-ipa`,
/// `cec-az` and `cec-tj`, their stays unknown.
async fn registry(app: &TestApp) {
    create_organizations(app).await;
    create_election(app, "kz-2023").await;
    for (id, display_name) in [
        ("sco", "SCO observation mission"),
        ("cis-ipa", "CIS IPA observer group"),
        ("cec-az", "CEC of Azerbaijan"),
        ("cec-tj", "CCER of Tajikistan"),
    ] {
        create_delegation(app, KZ, id, delegation(display_name, id)).await;
    }
}

fn create_request(parent: &str, id: &str, meeting: pb::Meeting) -> pb::CreateMeetingRequest {
    pb::CreateMeetingRequest {
        parent: parent.to_owned(),
        meeting_id: id.to_owned(),
        meeting: Some(meeting),
        request_id: String::new(),
    }
}

async fn try_create_meeting(
    app: &TestApp,
    id: &str,
    meeting: pb::Meeting,
) -> Result<pb::Meeting, Status> {
    meetings(app)
        .create_meeting(create_request(KZ, id, meeting))
        .await
        .map(|r| r.into_inner())
}

pub(crate) async fn create_meeting(app: &TestApp, id: &str, meeting: pb::Meeting) -> pb::Meeting {
    try_create_meeting(app, id, meeting)
        .await
        .unwrap_or_else(|e| panic!("creating meeting {id}: {e:?}"))
}

async fn try_get_meeting(app: &TestApp, name: &str) -> Result<pb::Meeting, Status> {
    meetings(app)
        .get_meeting(pb::GetMeetingRequest {
            name: name.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn get_meeting(app: &TestApp, name: &str) -> pb::Meeting {
    try_get_meeting(app, name).await.unwrap()
}

async fn update_meeting(
    app: &TestApp,
    meeting: pb::Meeting,
    paths: &[&str],
) -> Result<pb::Meeting, Status> {
    meetings(app)
        .update_meeting(pb::UpdateMeetingRequest {
            meeting: Some(meeting),
            update_mask: mask(paths),
        })
        .await
        .map(|r| r.into_inner())
}

/// Moves a meeting to `start`..`end`.
async fn reschedule(
    app: &TestApp,
    name: &str,
    start: &str,
    end: &str,
) -> Result<pb::Meeting, Status> {
    update_meeting(
        app,
        pb::Meeting {
            name: name.to_owned(),
            start_time: ts(start),
            end_time: ts(end),
            ..Default::default()
        },
        &["start_time", "end_time"],
    )
    .await
}

async fn delete_meeting(app: &TestApp, name: &str, etag: &str) -> Result<pb::Meeting, Status> {
    meetings(app)
        .delete_meeting(pb::DeleteMeetingRequest {
            name: name.to_owned(),
            etag: etag.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn undelete_meeting(app: &TestApp, name: &str, etag: &str) -> Result<pb::Meeting, Status> {
    meetings(app)
        .undelete_meeting(pb::UndeleteMeetingRequest {
            name: name.to_owned(),
            etag: etag.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn complete(
    app: &TestApp,
    name: &str,
    outcome: &str,
    etag: &str,
) -> Result<pb::Meeting, Status> {
    meetings(app)
        .complete_meeting(pb::CompleteMeetingRequest {
            name: name.to_owned(),
            outcome: outcome.to_owned(),
            etag: etag.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn cancel(
    app: &TestApp,
    name: &str,
    reason: &str,
    etag: &str,
) -> Result<pb::Meeting, Status> {
    meetings(app)
        .cancel_meeting(pb::CancelMeetingRequest {
            name: name.to_owned(),
            reason: reason.to_owned(),
            etag: etag.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn list_meetings(
    app: &TestApp,
    request: pb::ListMeetingsRequest,
) -> Result<pb::ListMeetingsResponse, Status> {
    meetings(app)
        .list_meetings(request)
        .await
        .map(|r| r.into_inner())
}

/// The ids of the meetings of kz-2023 matching `filter`, in `order_by` order (one page of up
/// to 1000), checking that `total_size` agrees.
async fn meeting_ids(
    app: &TestApp,
    filter: &str,
    order_by: &str,
    show_deleted: bool,
) -> Vec<String> {
    let page = list_meetings(
        app,
        pb::ListMeetingsRequest {
            parent: KZ.into(),
            page_size: 1000,
            filter: filter.to_owned(),
            order_by: order_by.to_owned(),
            show_deleted,
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("listing with filter {filter:?}: {e:?}"));
    assert_eq!(
        page.total_size as usize,
        page.meetings.len(),
        "total_size of {filter:?}"
    );
    assert!(page.next_page_token.is_empty());
    page.meetings
        .iter()
        .map(|m| id(&m.name).to_owned())
        .collect()
}

/// One `ErrorInfo.metadata` entry of a failed call.
#[track_caller]
fn metadata(status: &Status, key: &str) -> String {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    info.metadata
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("no metadata {key:?} in {status:?}"))
}

/// Asserts FAILED_PRECONDITION / MEETING_CONFLICT naming `other` as the conflicting meeting.
#[track_caller]
fn assert_conflict(status: &Status, other: &str) {
    assert_error(status, Code::FailedPrecondition, "MEETING_CONFLICT");
    assert_eq!(metadata(status, "conflicting_meeting"), other, "{status:?}");
}

/// Asserts FAILED_PRECONDITION / OUTSIDE_DELEGATION_STAY with `key` = `value` in metadata.
#[track_caller]
fn assert_outside_stay(status: &Status, key: &str, value: &str) {
    assert_error(status, Code::FailedPrecondition, "OUTSIDE_DELEGATION_STAY");
    assert_eq!(metadata(status, key), value, "{status:?}");
}

// ---- create, read, list, update, delete ----

#[sqlx::test]
async fn a_meeting_is_scheduled_read_listed_updated_and_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;

    let created = create_meeting(
        &app,
        "cis-ipa-briefing",
        pb::Meeting {
            title: "Meeting with the CIS IPA observer group".into(),
            location: "CEC, Astana".into(),
            topics: strings(&[
                "preparation for the election of Majilis deputies",
                "preparedness of the polling stations",
            ]),
            // Output-only fields are ignored on create.
            state: State::Held.into(),
            outcome: "made up".into(),
            cancel_reason: "made up".into(),
            ..meeting(
                ABDIROV,
                &[CIS_IPA],
                "2023-03-18T11:00:00Z",
                "2023-03-18T12:00:00Z",
            )
        },
    )
    .await;
    assert_eq!(created.name, "elections/kz-2023/meetings/cis-ipa-briefing");
    assert_eq!(created.title, "Meeting with the CIS IPA observer group");
    assert_eq!(created.host, ABDIROV);
    assert_eq!(created.delegations, strings(&[CIS_IPA]));
    assert_eq!(created.start_time, ts("2023-03-18T11:00:00Z"));
    assert_eq!(created.end_time, ts("2023-03-18T12:00:00Z"));
    assert_eq!(created.location, "CEC, Astana");
    assert_eq!(
        created.topics,
        strings(&[
            "preparation for the election of Majilis deputies",
            "preparedness of the polling stations",
        ])
    );
    assert_eq!(created.state(), State::Scheduled);
    assert_eq!(created.outcome, "");
    assert_eq!(created.cancel_reason, "");
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert!(created.delete_time.is_none());
    assert!(!created.etag.is_empty());
    assert_eq!(app.count("meetings").await, 1);

    assert_eq!(get_meeting(&app, &created.name).await, created);
    let listed = list_meetings(
        &app,
        pb::ListMeetingsRequest {
            parent: KZ.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.meetings, vec![created.clone()]);
    assert_eq!(listed.total_size, 1);
    assert!(listed.next_page_token.is_empty());

    let updated = update_meeting(
        &app,
        pb::Meeting {
            name: created.name.clone(),
            title: "Ignored: not in the mask".into(),
            location: "CEC, conference hall".into(),
            etag: created.etag.clone(),
            ..Default::default()
        },
        &["location"],
    )
    .await
    .unwrap();
    assert_eq!(updated.location, "CEC, conference hall");
    assert_eq!(updated.title, created.title);
    assert_eq!(updated.topics, created.topics);
    assert_eq!(updated.delegations, created.delegations);
    assert_eq!(updated.start_time, created.start_time);
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.create_time, created.create_time);
    assert_eq!(get_meeting(&app, &created.name).await, updated);

    let deleted = delete_meeting(&app, &created.name, &updated.etag)
        .await
        .unwrap();
    assert!(deleted.delete_time.is_some());
    assert_eq!(get_meeting(&app, &created.name).await, deleted);
    assert!(meeting_ids(&app, "", "", false).await.is_empty());
    assert_eq!(app.count("meetings").await, 1, "deletes are soft");
}

#[sqlx::test]
async fn a_replayed_request_id_returns_the_first_meeting_and_a_taken_id_is_already_exists(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let request = pb::CreateMeetingRequest {
        request_id: new_request_id(),
        ..create_request(
            KZ,
            "",
            meeting(
                ABDIROV,
                &[SCO],
                "2023-03-17T10:00:00Z",
                "2023-03-17T12:00:00Z",
            ),
        )
    };
    let first = meetings(&app)
        .create_meeting(request.clone())
        .await
        .unwrap()
        .into_inner();
    let generated = first
        .name
        .strip_prefix("elections/kz-2023/meetings/")
        .unwrap();
    assert!(
        uuid::Uuid::try_parse(generated).is_ok(),
        "{generated} is not a UUID"
    );
    // The replay is neither a second meeting nor a conflict with the first.
    let second = meetings(&app)
        .create_meeting(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    assert_eq!(app.count("meetings").await, 1);

    create_meeting(
        &app,
        "sco",
        meeting(
            DEPUTY,
            &[CIS_IPA],
            "2023-03-18T10:00:00Z",
            "2023-03-18T11:00:00Z",
        ),
    )
    .await;
    let error = try_create_meeting(
        &app,
        "sco",
        meeting(
            SECRETARY,
            &[CEC_AZ],
            "2023-03-19T10:00:00Z",
            "2023-03-19T11:00:00Z",
        ),
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::AlreadyExists, "ALREADY_EXISTS");
    assert_eq!(app.count("meetings").await, 2);
    assert_eq!(get_meeting(&app, &meeting_name("sco")).await.host, DEPUTY);
}

#[sqlx::test]
async fn every_missing_or_bad_field_is_named_and_nothing_is_written(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let valid = || {
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        )
    };

    let error = try_create_meeting(
        &app,
        "m",
        pb::Meeting {
            title: "  ".into(),
            host: String::new(),
            ..valid()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["meeting.title", "meeting.host"],
    );

    let error = try_create_meeting(
        &app,
        "m",
        pb::Meeting {
            delegations: vec![],
            ..valid()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["meeting.delegations"]);

    let error = try_create_meeting(
        &app,
        "m",
        pb::Meeting {
            start_time: None,
            end_time: None,
            ..valid()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["meeting.start_time", "meeting.end_time"],
    );

    // The end must be after the start: equal and earlier are both refused.
    for end in ["2023-03-17T10:00:00Z", "2023-03-17T09:00:00Z"] {
        let error = try_create_meeting(
            &app,
            "m",
            pb::Meeting {
                end_time: ts(end),
                ..valid()
            },
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["meeting.end_time"]);
    }

    for bad_id in ["Meeting-1", "1st", "with_underscore", &"m".repeat(64)] {
        let error = try_create_meeting(&app, bad_id, valid()).await.unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["meeting_id"]);
    }

    let error = meetings(&app)
        .create_meeting(pb::CreateMeetingRequest {
            parent: KZ.into(),
            meeting_id: "m".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["meeting"]);
    assert_eq!(app.count("meetings").await, 0);

    // And the valid meeting goes through.
    create_meeting(&app, "m", valid()).await;
    assert_eq!(app.count("meetings").await, 1);
}

#[sqlx::test]
async fn delegations_must_be_live_delegations_of_the_same_election_without_repeats(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    create_kz_election(&app, "kz-2024", None).await;
    let foreign = create_delegation(
        &app,
        "elections/kz-2024",
        "sco",
        delegation("SCO mission", "sco"),
    )
    .await
    .name;
    create_delegation(&app, KZ, "gone", delegation("Departed", "sco")).await;
    let gone = format!("{KZ}/delegations/gone");
    delete_delegation(&app, &gone, "").await.unwrap();

    let cases: [(Vec<&str>, &str); 8] = [
        (vec![SCO, foreign.as_str()], "meeting.delegations[1]"),
        (vec!["sco"], "meeting.delegations[0]"),
        (vec![CIS_IPA, "delegations/sco"], "meeting.delegations[1]"),
        (
            vec!["elections/kz-2023/observers/sco"],
            "meeting.delegations[0]",
        ),
        (
            vec!["elections/kz-2023/delegations/SCO"],
            "meeting.delegations[0]",
        ),
        (vec![SCO, CIS_IPA, SCO], "meeting.delegations[2]"),
        (
            vec![SCO, "elections/kz-2023/delegations/nowhere"],
            "meeting.delegations[1]",
        ),
        (vec![gone.as_str()], "meeting.delegations[0]"),
    ];
    for (delegations, field) in cases {
        let error = try_create_meeting(
            &app,
            "m",
            meeting(
                ABDIROV,
                &delegations,
                "2023-03-17T10:00:00Z",
                "2023-03-17T12:00:00Z",
            ),
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &[field]);
    }
    assert_eq!(app.count("meetings").await, 0);

    // Once undeleted, the delegation can meet again.
    undelete_delegation(&app, &gone, "").await.unwrap();
    let created = create_meeting(
        &app,
        "m",
        meeting(
            ABDIROV,
            &[gone.as_str(), SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    assert_eq!(created.delegations, strings(&[gone.as_str(), SCO]));
}

#[sqlx::test]
async fn malformed_names_are_invalid_and_unknown_ones_or_elections_are_not_found(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    for name in [
        "",
        "elections/kz-2023/meetings/",
        "elections/kz-2023/meetings/Bad_Id",
        "elections/kz-2023/delegations/sco",
        "elections/kz-2023/meetings/m/extra",
    ] {
        let error = try_get_meeting(&app, name).await.unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["name"]);
    }
    let error = try_get_meeting(&app, &meeting_name("nowhere"))
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");

    let error = meetings(&app)
        .create_meeting(create_request(
            "elections/nowhere",
            "m",
            meeting(
                ABDIROV,
                &["elections/nowhere/delegations/sco"],
                "2023-03-17T10:00:00Z",
                "2023-03-17T12:00:00Z",
            ),
        ))
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    let error = list_meetings(
        &app,
        pb::ListMeetingsRequest {
            parent: "elections/nowhere".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");

    for error in [
        update_meeting(
            &app,
            pb::Meeting {
                name: meeting_name("nowhere"),
                title: "x".into(),
                ..Default::default()
            },
            &["title"],
        )
        .await
        .unwrap_err(),
        delete_meeting(&app, &meeting_name("nowhere"), "")
            .await
            .unwrap_err(),
        undelete_meeting(&app, &meeting_name("nowhere"), "")
            .await
            .unwrap_err(),
        complete(&app, &meeting_name("nowhere"), "held", "")
            .await
            .unwrap_err(),
        cancel(&app, &meeting_name("nowhere"), "called off", "")
            .await
            .unwrap_err(),
    ] {
        assert_error(&error, Code::NotFound, "NOT_FOUND");
    }
    assert_eq!(app.count("meetings").await, 0);
}

// ---- conflicts ----

#[sqlx::test]
async fn the_same_host_cannot_be_in_two_overlapping_meetings_however_the_name_is_spelled(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let first = create_meeting(
        &app,
        "first",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;

    // Overlapping at the end, at the start, inside and around; other delegations each time.
    for (host, start, end) in [
        (ABDIROV, "2023-03-17T11:30:00Z", "2023-03-17T12:30:00Z"),
        (
            "  nurlan abdirov, chairman of the central election commission ",
            "2023-03-17T09:00:00Z",
            "2023-03-17T10:01:00Z",
        ),
        (
            "NURLAN ABDIROV, CHAIRMAN OF THE CENTRAL ELECTION COMMISSION",
            "2023-03-17T10:30:00Z",
            "2023-03-17T11:00:00Z",
        ),
        (ABDIROV, "2023-03-17T08:00:00Z", "2023-03-17T14:00:00Z"),
        (ABDIROV, "2023-03-17T10:00:00Z", "2023-03-17T12:00:00Z"),
    ] {
        let error = try_create_meeting(&app, "second", meeting(host, &[CIS_IPA], start, end))
            .await
            .unwrap_err();
        assert_conflict(&error, &first.name);
    }
    assert_eq!(app.count("meetings").await, 1);
}

#[sqlx::test]
async fn a_delegation_cannot_be_in_two_overlapping_meetings(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let first = create_meeting(
        &app,
        "first",
        meeting(
            ABDIROV,
            &[SCO, CEC_AZ],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    for delegations in [&[CEC_AZ][..], &[CIS_IPA, SCO], &[CEC_TJ, CIS_IPA, CEC_AZ]] {
        let error = try_create_meeting(
            &app,
            "second",
            meeting(
                DEPUTY,
                delegations,
                "2023-03-17T11:00:00Z",
                "2023-03-17T13:00:00Z",
            ),
        )
        .await
        .unwrap_err();
        assert_conflict(&error, &first.name);
    }
    assert_eq!(app.count("meetings").await, 1);
}

#[sqlx::test]
async fn back_to_back_meetings_and_other_hosts_with_other_delegations_do_not_conflict(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    create_meeting(
        &app,
        "sco",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-18T10:00:00Z",
            "2023-03-18T11:00:00Z",
        ),
    )
    .await;
    // The same host right before and right after.
    create_meeting(
        &app,
        "cec-tj",
        meeting(
            ABDIROV,
            &[CEC_TJ],
            "2023-03-18T09:00:00Z",
            "2023-03-18T10:00:00Z",
        ),
    )
    .await;
    create_meeting(
        &app,
        "cis-ipa",
        meeting(
            ABDIROV,
            &[CIS_IPA],
            "2023-03-18T11:00:00Z",
            "2023-03-18T12:00:00Z",
        ),
    )
    .await;
    // The same delegation right after, with someone else.
    create_meeting(
        &app,
        "sco-deputy",
        meeting(
            DEPUTY,
            &[SCO],
            "2023-03-18T11:00:00Z",
            "2023-03-18T11:30:00Z",
        ),
    )
    .await;
    // Another host with another delegation at the very same time.
    create_meeting(
        &app,
        "cec-az",
        meeting(
            SECRETARY,
            &[CEC_AZ],
            "2023-03-18T10:00:00Z",
            "2023-03-18T11:00:00Z",
        ),
    )
    .await;
    assert_eq!(app.count("meetings").await, 5);
}

#[sqlx::test]
async fn a_held_meeting_keeps_its_slot_while_a_cancelled_or_deleted_one_frees_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;

    // Held (the system clock is long past March 2023): still occupies the slot.
    let held = create_meeting(
        &app,
        "held",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T11:00:00Z",
        ),
    )
    .await;
    complete(&app, &held.name, "Briefed on the preparations", "")
        .await
        .unwrap();
    let error = try_create_meeting(
        &app,
        "over-held",
        meeting(
            ABDIROV,
            &[CIS_IPA],
            "2023-03-17T10:30:00Z",
            "2023-03-17T11:30:00Z",
        ),
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &held.name);
    let error = try_create_meeting(
        &app,
        "over-held",
        meeting(
            DEPUTY,
            &[SCO],
            "2023-03-17T10:30:00Z",
            "2023-03-17T11:30:00Z",
        ),
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &held.name);

    // Cancelled: the same slot can be booked again, by the host and the delegation.
    let cancelled = create_meeting(
        &app,
        "cancelled",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T12:00:00Z",
            "2023-03-17T13:00:00Z",
        ),
    )
    .await;
    cancel(
        &app,
        &cancelled.name,
        "The delegation's flight was delayed",
        "",
    )
    .await
    .unwrap();
    create_meeting(
        &app,
        "rebooked",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T12:00:00Z",
            "2023-03-17T13:00:00Z",
        ),
    )
    .await;

    // Deleted: the slot is free as well...
    let deleted = create_meeting(
        &app,
        "deleted",
        meeting(
            ABDIROV,
            &[CEC_AZ],
            "2023-03-17T14:00:00Z",
            "2023-03-17T15:00:00Z",
        ),
    )
    .await;
    let deleted = delete_meeting(&app, &deleted.name, "").await.unwrap();
    let replacement = create_meeting(
        &app,
        "replacement",
        meeting(
            ABDIROV,
            &[CEC_TJ],
            "2023-03-17T14:30:00Z",
            "2023-03-17T15:30:00Z",
        ),
    )
    .await;

    // ...so it cannot come back while the replacement holds it.
    let error = undelete_meeting(&app, &deleted.name, "").await.unwrap_err();
    assert_conflict(&error, &replacement.name);
    assert_eq!(get_meeting(&app, &deleted.name).await, deleted);

    // Once the replacement is cancelled, it can.
    cancel(&app, &replacement.name, "Merged back", "")
        .await
        .unwrap();
    let restored = undelete_meeting(&app, &deleted.name, &deleted.etag)
        .await
        .unwrap();
    assert!(restored.delete_time.is_none());
    assert_eq!(restored.state(), State::Scheduled);
    assert_eq!(app.count("meetings").await, 5);
}

#[sqlx::test]
async fn an_update_into_a_conflict_is_refused_and_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let sco = create_meeting(
        &app,
        "sco",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-18T10:00:00Z",
            "2023-03-18T11:00:00Z",
        ),
    )
    .await;
    let ipa = create_meeting(
        &app,
        "cis-ipa",
        meeting(
            ABDIROV,
            &[CIS_IPA],
            "2023-03-18T11:00:00Z",
            "2023-03-18T12:00:00Z",
        ),
    )
    .await;
    let az = create_meeting(
        &app,
        "cec-az",
        meeting(
            SECRETARY,
            &[CEC_AZ],
            "2023-03-18T10:00:00Z",
            "2023-03-18T11:00:00Z",
        ),
    )
    .await;

    // Earlier start: the host is busy with the SCO.
    let error = reschedule(
        &app,
        &ipa.name,
        "2023-03-18T10:30:00Z",
        "2023-03-18T12:00:00Z",
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &sco.name);
    assert_eq!(get_meeting(&app, &ipa.name).await, ipa);

    // The SCO joins the Secretary's meeting: the SCO is busy.
    let error = update_meeting(
        &app,
        pb::Meeting {
            name: az.name.clone(),
            delegations: strings(&[CEC_AZ, SCO]),
            ..Default::default()
        },
        &["delegations"],
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &sco.name);

    // The chairman takes over the Secretary's meeting: the chairman is busy.
    let error = update_meeting(
        &app,
        pb::Meeting {
            name: az.name.clone(),
            host: " nurlan ABDIROV, Chairman of the Central Election Commission".into(),
            ..Default::default()
        },
        &["host"],
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &sco.name);
    assert_eq!(get_meeting(&app, &az.name).await, az);

    // A meeting never conflicts with itself: moving it within and around its own slot is
    // fine, up to the next meeting of the host.
    let moved = reschedule(
        &app,
        &sco.name,
        "2023-03-18T09:30:00Z",
        "2023-03-18T11:00:00Z",
    )
    .await
    .unwrap();
    assert_eq!(moved.start_time, ts("2023-03-18T09:30:00Z"));
    let error = reschedule(
        &app,
        &sco.name,
        "2023-03-18T09:30:00Z",
        "2023-03-18T11:15:00Z",
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &ipa.name);
    assert_eq!(get_meeting(&app, &sco.name).await, moved);
}

#[sqlx::test]
async fn an_update_of_delegations_or_host_frees_the_old_ones(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let first = create_meeting(
        &app,
        "first",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    let updated = update_meeting(
        &app,
        pb::Meeting {
            name: first.name.clone(),
            host: DEPUTY.into(),
            delegations: strings(&[CIS_IPA, CEC_AZ]),
            ..Default::default()
        },
        &["host", "delegations"],
    )
    .await
    .unwrap();
    assert_eq!(updated.host, DEPUTY);
    assert_eq!(updated.delegations, strings(&[CIS_IPA, CEC_AZ]));

    // The chairman and the SCO are free now; the deputy and the CIS IPA are not.
    create_meeting(
        &app,
        "second",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    let error = try_create_meeting(
        &app,
        "third",
        meeting(
            SECRETARY,
            &[CIS_IPA],
            "2023-03-17T11:00:00Z",
            "2023-03-17T13:00:00Z",
        ),
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &first.name);
    let error = try_create_meeting(
        &app,
        "third",
        meeting(
            DEPUTY,
            &[CEC_TJ],
            "2023-03-17T11:00:00Z",
            "2023-03-17T13:00:00Z",
        ),
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &first.name);
}

#[sqlx::test]
async fn twenty_concurrent_bookings_of_one_host_leave_exactly_one_meeting(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    // A delegation each, so only the host can make them conflict.
    for i in 0..20 {
        create_delegation(
            &app,
            KZ,
            &format!("group-{i}"),
            delegation("SCO group", "sco"),
        )
        .await;
    }
    let hosts = [
        ABDIROV,
        "  nurlan abdirov, chairman of the central election commission ",
    ];
    let calls = (0..20).map(|i| {
        let mut client = meetings(&app);
        let request = create_request(
            KZ,
            &format!("booking-{i}"),
            meeting(
                hosts[i % 2],
                &[&format!("{KZ}/delegations/group-{i}")],
                &format!("2023-03-17T10:{i:02}:00Z"),
                &format!("2023-03-17T11:{i:02}:00Z"),
            ),
        );
        tokio::spawn(async move { client.create_meeting(request).await })
    });
    let results: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().map(|m| m.into_inner()))
        .collect();
    let created: Vec<&pb::Meeting> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_conflict(error, &created[0].name);
    }
    assert_eq!(app.count("meetings").await, 1);
}

#[sqlx::test]
async fn ten_concurrent_bookings_of_one_delegation_leave_exactly_one_meeting(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let calls = (0..10).map(|i| {
        let mut client = meetings(&app);
        let request = create_request(
            KZ,
            &format!("booking-{i}"),
            meeting(
                &format!("Official number {i} of the Central Election Commission"),
                &[SCO],
                &format!("2023-03-17T10:{i:02}:00Z"),
                &format!("2023-03-17T11:{i:02}:00Z"),
            ),
        );
        tokio::spawn(async move { client.create_meeting(request).await })
    });
    let results: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().map(|m| m.into_inner()))
        .collect();
    let created: Vec<&pb::Meeting> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_conflict(error, &created[0].name);
    }
    assert_eq!(app.count("meetings").await, 1);
}

// ---- delegation stays ----

#[sqlx::test]
async fn a_meeting_must_lie_within_each_delegations_known_stay(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let stay = |arrival: &str, departure: &str| pb::Delegation {
        arrival_date: arrival.into(),
        departure_date: departure.into(),
        ..delegation("SCO mission", "sco")
    };
    let dated = create_delegation(&app, KZ, "dated", stay("2023-03-16", "2023-03-20"))
        .await
        .name;
    let arriving = create_delegation(&app, KZ, "arriving", stay("2023-03-18", ""))
        .await
        .name;

    for (delegations, start, end, outside) in [
        // Starts the evening before arrival (UTC dates).
        (
            vec![dated.as_str()],
            "2023-03-15T23:00:00Z",
            "2023-03-16T01:00:00Z",
            &dated,
        ),
        // Ends the day after departure.
        (
            vec![dated.as_str()],
            "2023-03-20T23:30:00Z",
            "2023-03-21T00:30:00Z",
            &dated,
        ),
        // Entirely after departure, alongside a delegation without known dates.
        (
            vec![SCO, dated.as_str()],
            "2023-03-22T10:00:00Z",
            "2023-03-22T11:00:00Z",
            &dated,
        ),
        // Only the arrival is known: before it is outside.
        (
            vec![dated.as_str(), arriving.as_str()],
            "2023-03-17T10:00:00Z",
            "2023-03-17T11:00:00Z",
            &arriving,
        ),
    ] {
        let error = try_create_meeting(&app, "m", meeting(ABDIROV, &delegations, start, end))
            .await
            .unwrap_err();
        assert_outside_stay(&error, "delegation", outside);
    }
    assert_eq!(app.count("meetings").await, 0);

    // The first and the last day are part of the stay; open ends are open.
    let first_day = create_meeting(
        &app,
        "first-day",
        meeting(
            ABDIROV,
            &[dated.as_str()],
            "2023-03-16T00:00:00Z",
            "2023-03-16T01:00:00Z",
        ),
    )
    .await;
    let last_day = create_meeting(
        &app,
        "last-day",
        meeting(
            ABDIROV,
            &[dated.as_str()],
            "2023-03-20T22:00:00Z",
            "2023-03-20T23:59:59Z",
        ),
    )
    .await;
    create_meeting(
        &app,
        "long-after",
        meeting(
            ABDIROV,
            &[arriving.as_str(), SCO],
            "2023-04-30T10:00:00Z",
            "2023-04-30T11:00:00Z",
        ),
    )
    .await;

    // The same rule on update.
    let error = reschedule(
        &app,
        &last_day.name,
        "2023-03-21T09:00:00Z",
        "2023-03-21T10:00:00Z",
    )
    .await
    .unwrap_err();
    assert_outside_stay(&error, "delegation", &dated);
    assert_eq!(get_meeting(&app, &last_day.name).await, last_day);
    let error = update_meeting(
        &app,
        pb::Meeting {
            name: first_day.name.clone(),
            delegations: strings(&[dated.as_str(), arriving.as_str()]),
            ..Default::default()
        },
        &["delegations"],
    )
    .await
    .unwrap_err();
    assert_outside_stay(&error, "delegation", &arriving);
    assert_eq!(get_meeting(&app, &first_day.name).await, first_day);
}

#[sqlx::test]
async fn a_stay_cannot_shrink_away_from_a_scheduled_meeting_of_the_delegation(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let before = create_delegation(
        &app,
        KZ,
        "dated",
        pb::Delegation {
            arrival_date: "2023-03-15".into(),
            departure_date: "2023-03-21".into(),
            ..delegation("SCO mission", "sco")
        },
    )
    .await;
    let scheduled = create_meeting(
        &app,
        "m",
        meeting(
            ABDIROV,
            &[SCO, before.name.as_str()],
            "2023-03-18T10:00:00Z",
            "2023-03-18T11:00:00Z",
        ),
    )
    .await;

    for (path, date) in [
        ("departure_date", "2023-03-17"),
        ("arrival_date", "2023-03-19"),
        ("departureDate", "2023-03-17"),
    ] {
        let mut change = pb::Delegation {
            name: before.name.clone(),
            ..Default::default()
        };
        if path.starts_with("arrival") {
            change.arrival_date = date.into();
        } else {
            change.departure_date = date.into();
        }
        let error = update_delegation(&app, change, &[path]).await.unwrap_err();
        assert_outside_stay(&error, "meeting", &scheduled.name);
        assert_eq!(get_delegation(&app, &before.name).await, before);
    }

    // Shrinking to exactly the meeting's day is fine.
    let shrunk = update_delegation(
        &app,
        pb::Delegation {
            name: before.name.clone(),
            arrival_date: "2023-03-18".into(),
            departure_date: "2023-03-18".into(),
            ..Default::default()
        },
        &["arrival_date", "departure_date"],
    )
    .await
    .unwrap();
    assert_eq!(
        (shrunk.arrival_date.as_str(), shrunk.departure_date.as_str()),
        ("2023-03-18", "2023-03-18")
    );

    // A cancelled meeting does not hold the stay.
    cancel(&app, &scheduled.name, "Rescheduled", "")
        .await
        .unwrap();
    let moved = update_delegation(
        &app,
        pb::Delegation {
            name: before.name.clone(),
            departure_date: "2023-03-20".into(),
            arrival_date: "2023-03-19".into(),
            ..Default::default()
        },
        &["arrival_date", "departure_date"],
    )
    .await
    .unwrap();
    assert_eq!(moved.arrival_date, "2023-03-19");
}

#[sqlx::test]
async fn a_delegation_in_a_scheduled_meeting_cannot_be_deleted_until_it_is_held_or_cancelled(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let sco = create_meeting(
        &app,
        "sco",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T11:00:00Z",
        ),
    )
    .await;
    let ipa = create_meeting(
        &app,
        "cis-ipa",
        meeting(
            ABDIROV,
            &[CEC_TJ, CIS_IPA],
            "2023-03-17T11:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    let az = create_meeting(
        &app,
        "cec-az",
        meeting(
            ABDIROV,
            &[CEC_AZ],
            "2023-03-17T12:00:00Z",
            "2023-03-17T13:00:00Z",
        ),
    )
    .await;

    for (delegation, meeting) in [(SCO, &sco.name), (CIS_IPA, &ipa.name), (CEC_AZ, &az.name)] {
        let error = delete_delegation(&app, delegation, "").await.unwrap_err();
        assert_error(&error, Code::FailedPrecondition, "HAS_CHILDREN");
        assert_eq!(metadata(&error, "meeting"), *meeting);
        assert!(get_delegation(&app, delegation).await.delete_time.is_none());
    }

    cancel(&app, &sco.name, "Called off", "").await.unwrap();
    assert!(delete_delegation(&app, SCO, "").await.is_ok());
    complete(&app, &ipa.name, "Questions answered", "")
        .await
        .unwrap();
    assert!(delete_delegation(&app, CIS_IPA, "").await.is_ok());
    delete_meeting(&app, &az.name, "").await.unwrap();
    assert!(delete_delegation(&app, CEC_AZ, "").await.is_ok());
}

// ---- held and cancelled ----

#[sqlx::test]
async fn a_meeting_is_completed_only_once_it_has_started_and_keeps_its_outcome(pool: PgPool) {
    let clock = ManualClock::new(at("2023-03-17T09:59:59Z"));
    let app = spawn_app_at(pool, &clock).await;
    registry(&app).await;
    let created = create_meeting(
        &app,
        "m",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;

    let error = complete(&app, &created.name, "Too early", "")
        .await
        .unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    assert_eq!(get_meeting(&app, &created.name).await, created);

    clock.set(at("2023-03-17T10:30:00Z"));
    let error = complete(&app, &created.name, "", "").await.unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["outcome"]);
    let error = complete(&app, &created.name, "Stale", "not-the-etag")
        .await
        .unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(get_meeting(&app, &created.name).await, created);

    let held = complete(
        &app,
        &created.name,
        "The delegations noted a high level of organization",
        &created.etag,
    )
    .await
    .unwrap();
    assert_eq!(held.state(), State::Held);
    assert_eq!(
        held.outcome,
        "The delegations noted a high level of organization"
    );
    assert_eq!(held.cancel_reason, "");
    assert_ne!(held.etag, created.etag);
    assert_eq!(held.title, created.title);
    assert_eq!(get_meeting(&app, &created.name).await, held);

    let error = complete(&app, &held.name, "Again", "").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    let error = cancel(&app, &held.name, "Too late", "").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    assert_eq!(get_meeting(&app, &held.name).await, held);
    assert_eq!(
        meeting_ids(&app, "state = HELD", "", false).await,
        strings(&["m"])
    );
}

#[sqlx::test]
async fn a_meeting_is_cancelled_with_a_reason_and_then_neither_held_nor_cancelled_again(
    pool: PgPool,
) {
    let clock = ManualClock::new(at("2023-03-16T12:00:00Z"));
    let app = spawn_app_at(pool, &clock).await;
    registry(&app).await;
    let created = create_meeting(
        &app,
        "m",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;

    let error = cancel(&app, &created.name, "  ", "").await.unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["reason"]);
    let error = cancel(&app, &created.name, "Stale", "not-the-etag")
        .await
        .unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(get_meeting(&app, &created.name).await, created);

    // A meeting can be called off before it starts.
    let cancelled = cancel(
        &app,
        &created.name,
        "The delegation's flight was delayed",
        &created.etag,
    )
    .await
    .unwrap();
    assert_eq!(cancelled.state(), State::Cancelled);
    assert_eq!(
        cancelled.cancel_reason,
        "The delegation's flight was delayed"
    );
    assert_eq!(cancelled.outcome, "");
    assert_ne!(cancelled.etag, created.etag);
    assert_eq!(get_meeting(&app, &created.name).await, cancelled);

    clock.set(at("2023-03-17T13:00:00Z"));
    let error = cancel(&app, &created.name, "Again", "").await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    let error = complete(&app, &created.name, "Held after all", "")
        .await
        .unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");
    assert_eq!(get_meeting(&app, &created.name).await, cancelled);

    // A deleted meeting is neither completed nor cancelled.
    let other = create_meeting(
        &app,
        "other",
        meeting(
            ABDIROV,
            &[CIS_IPA],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    delete_meeting(&app, &other.name, "").await.unwrap();
    let error = complete(&app, &other.name, "Held", "").await.unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
    let error = cancel(&app, &other.name, "Called off", "")
        .await
        .unwrap_err();
    assert_error(&error, Code::NotFound, "NOT_FOUND");
}

// ---- soft delete ----

#[sqlx::test]
async fn a_soft_deleted_meeting_is_still_readable_hidden_from_lists_and_can_be_undeleted(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let sco = create_meeting(
        &app,
        "sco",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T11:00:00Z",
        ),
    )
    .await;
    create_meeting(
        &app,
        "cis-ipa",
        meeting(
            ABDIROV,
            &[CIS_IPA],
            "2023-03-17T11:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;

    let stale = delete_meeting(&app, &sco.name, "not-the-etag")
        .await
        .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(get_meeting(&app, &sco.name).await, sco);

    let deleted = delete_meeting(&app, &sco.name, &sco.etag).await.unwrap();
    assert!(deleted.delete_time.is_some());
    assert_ne!(deleted.etag, sco.etag);
    assert_eq!(deleted.state(), State::Scheduled);
    assert_eq!(get_meeting(&app, &sco.name).await, deleted);
    assert_eq!(
        meeting_ids(&app, "", "", false).await,
        strings(&["cis-ipa"])
    );
    assert_eq!(
        meeting_ids(&app, "", "start_time", true).await,
        strings(&["sco", "cis-ipa"])
    );

    let again = delete_meeting(&app, &sco.name, "").await.unwrap_err();
    assert_error(&again, Code::NotFound, "NOT_FOUND");

    let stale = undelete_meeting(&app, &sco.name, &sco.etag)
        .await
        .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");
    let restored = undelete_meeting(&app, &sco.name, &deleted.etag)
        .await
        .unwrap();
    assert!(restored.delete_time.is_none());
    assert_eq!(restored.title, sco.title);
    assert_eq!(
        meeting_ids(&app, "", "start_time", false).await,
        strings(&["sco", "cis-ipa"])
    );
    // Back in the conflict checks.
    let error = try_create_meeting(
        &app,
        "again",
        meeting(
            DEPUTY,
            &[SCO],
            "2023-03-17T10:30:00Z",
            "2023-03-17T11:30:00Z",
        ),
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &sco.name);

    let live = undelete_meeting(&app, &sco.name, "").await.unwrap_err();
    assert_error(&live, Code::AlreadyExists, "ALREADY_EXISTS");
    assert_eq!(app.count("meetings").await, 2);
}

#[sqlx::test]
async fn a_meeting_cannot_be_undeleted_outside_a_stay_that_shrank_meanwhile(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let dated = create_delegation(
        &app,
        KZ,
        "dated",
        pb::Delegation {
            arrival_date: "2023-03-15".into(),
            departure_date: "2023-03-21".into(),
            ..delegation("SCO mission", "sco")
        },
    )
    .await
    .name;
    let outside = create_meeting(
        &app,
        "outside",
        meeting(
            ABDIROV,
            &[dated.as_str()],
            "2023-03-18T12:00:00Z",
            "2023-03-18T13:00:00Z",
        ),
    )
    .await;
    // A deleted meeting does not hold the stay, so it may shrink...
    let outside = delete_meeting(&app, &outside.name, "").await.unwrap();
    update_delegation(
        &app,
        pb::Delegation {
            name: dated.clone(),
            departure_date: "2023-03-17".into(),
            ..Default::default()
        },
        &["departure_date"],
    )
    .await
    .unwrap();
    // ...but then the meeting cannot come back as it was.
    let error = undelete_meeting(&app, &outside.name, "").await.unwrap_err();
    assert_outside_stay(&error, "delegation", &dated);
    assert_eq!(get_meeting(&app, &outside.name).await, outside);
}

#[sqlx::test]
async fn a_meeting_cannot_be_undeleted_once_one_of_its_delegations_is_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let orphan = create_meeting(
        &app,
        "orphan",
        meeting(
            ABDIROV,
            &[SCO, CIS_IPA],
            "2023-03-17T12:00:00Z",
            "2023-03-17T13:00:00Z",
        ),
    )
    .await;
    // A deleted meeting does not hold its delegations, so one may be deleted...
    let orphan = delete_meeting(&app, &orphan.name, "").await.unwrap();
    delete_delegation(&app, CIS_IPA, "").await.unwrap();
    // ...but a scheduled meeting with a deleted delegation, the state DeleteDelegation
    // refuses, must not reappear.
    let undeleted = undelete_meeting(&app, &orphan.name, "").await;
    assert!(
        undeleted.is_err(),
        "a scheduled meeting came back with a deleted delegation: {undeleted:?}"
    );
    assert_eq!(get_meeting(&app, &orphan.name).await, orphan);

    // With the delegation back, so can the meeting be.
    undelete_delegation(&app, CIS_IPA, "").await.unwrap();
    let restored = undelete_meeting(&app, &orphan.name, "").await.unwrap();
    assert!(restored.delete_time.is_none());
}

// ---- update ----

#[sqlx::test]
async fn an_update_changes_only_the_masked_fields_in_either_spelling(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let created = create_meeting(
        &app,
        "m",
        pb::Meeting {
            location: "CEC, Astana".into(),
            topics: strings(&["preparation for the early parliamentary elections"]),
            ..meeting(
                ABDIROV,
                &[SCO],
                "2023-03-17T10:00:00Z",
                "2023-03-17T12:00:00Z",
            )
        },
    )
    .await;
    let everything_else = pb::Meeting {
        name: created.name.clone(),
        title: "New title".into(),
        host: DEPUTY.into(),
        delegations: strings(&[CIS_IPA]),
        start_time: ts("2023-03-18T09:00:00Z"),
        end_time: ts("2023-03-18T10:00:00Z"),
        location: "Hotel".into(),
        topics: strings(&["preparedness of the polling stations"]),
        ..Default::default()
    };

    let moved = update_meeting(
        &app,
        pb::Meeting {
            etag: created.etag.clone(),
            ..everything_else.clone()
        },
        &["startTime", "endTime"],
    )
    .await
    .unwrap();
    assert_eq!(moved.start_time, ts("2023-03-18T09:00:00Z"));
    assert_eq!(moved.end_time, ts("2023-03-18T10:00:00Z"));
    assert_eq!(
        (
            moved.title.as_str(),
            moved.host.as_str(),
            moved.location.as_str()
        ),
        (created.title.as_str(), ABDIROV, "CEC, Astana")
    );
    assert_eq!(moved.delegations, created.delegations);
    assert_eq!(moved.topics, created.topics);
    assert_ne!(moved.etag, created.etag);

    let retitled = update_meeting(
        &app,
        everything_else.clone(),
        &["title", "location", "topics"],
    )
    .await
    .unwrap();
    assert_eq!(retitled.title, "New title");
    assert_eq!(retitled.location, "Hotel");
    assert_eq!(
        retitled.topics,
        strings(&["preparedness of the polling stations"])
    );
    assert_eq!(retitled.host, ABDIROV);
    assert_eq!(retitled.delegations, strings(&[SCO]));

    // A stale etag changes nothing.
    let error = update_meeting(
        &app,
        pb::Meeting {
            etag: created.etag.clone(),
            ..everything_else.clone()
        },
        &["host"],
    )
    .await
    .unwrap_err();
    assert_error(&error, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(get_meeting(&app, &created.name).await, retitled);

    // An empty mask replaces every field the caller may set; output-only ones stay.
    let replaced = update_meeting(
        &app,
        pb::Meeting {
            state: State::Held.into(),
            outcome: "made up".into(),
            location: "CEC, Astana".into(),
            ..everything_else.clone()
        },
        &[],
    )
    .await
    .unwrap();
    assert_eq!(replaced.host, DEPUTY);
    assert_eq!(replaced.delegations, strings(&[CIS_IPA]));
    assert_eq!(replaced.location, "CEC, Astana");
    assert_eq!(replaced.state(), State::Scheduled);
    assert_eq!(replaced.outcome, "");
    assert_eq!(replaced.create_time, created.create_time);
    assert_eq!(get_meeting(&app, &created.name).await, replaced);
}

#[sqlx::test]
async fn a_cancelled_meeting_may_move_anywhere_but_its_delegations_are_still_checked(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let busy = create_meeting(
        &app,
        "busy",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    let called_off = create_meeting(
        &app,
        "called-off",
        meeting(
            ABDIROV,
            &[CIS_IPA],
            "2023-03-18T10:00:00Z",
            "2023-03-18T12:00:00Z",
        ),
    )
    .await;
    cancel(&app, &called_off.name, "Postponed", "")
        .await
        .unwrap();

    // A cancelled meeting takes no part in conflict checks, also when it is edited.
    let moved = update_meeting(
        &app,
        pb::Meeting {
            name: called_off.name.clone(),
            delegations: strings(&[SCO, CIS_IPA]),
            start_time: ts("2023-03-17T10:00:00Z"),
            end_time: ts("2023-03-17T12:00:00Z"),
            ..Default::default()
        },
        &["delegations", "start_time", "end_time"],
    )
    .await
    .unwrap();
    assert_eq!(moved.state(), State::Cancelled);
    assert_eq!(moved.start_time, busy.start_time);

    // But its delegations must still be live ones of the election.
    create_delegation(&app, KZ, "gone", delegation("Departed", "sco")).await;
    let gone = format!("{KZ}/delegations/gone");
    delete_delegation(&app, &gone, "").await.unwrap();
    for unknown in ["elections/kz-2023/delegations/nowhere", gone.as_str()] {
        let error = update_meeting(
            &app,
            pb::Meeting {
                name: called_off.name.clone(),
                delegations: strings(&[CIS_IPA, unknown]),
                ..Default::default()
            },
            &["delegations"],
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["meeting.delegations[1]"]);
    }
    assert_eq!(get_meeting(&app, &called_off.name).await, moved);
}

#[sqlx::test]
async fn output_only_unknown_and_bad_update_values_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let created = create_meeting(
        &app,
        "m",
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    for path in [
        "state",
        "outcome",
        "cancel_reason",
        "cancelReason",
        "create_time",
        "update_time",
        "delete_time",
        "etag",
        "name",
        "agenda",
    ] {
        let error = update_meeting(
            &app,
            pb::Meeting {
                name: created.name.clone(),
                state: State::Held.into(),
                outcome: "made up".into(),
                cancel_reason: "made up".into(),
                ..Default::default()
            },
            &[path],
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["update_mask"]);
    }

    let bad = |meeting: pb::Meeting| pb::Meeting {
        name: created.name.clone(),
        ..meeting
    };
    for (change, paths, field) in [
        (
            bad(pb::Meeting {
                end_time: ts("2023-03-17T09:00:00Z"),
                ..Default::default()
            }),
            &["end_time"][..],
            "meeting.end_time",
        ),
        (
            bad(pb::Meeting {
                start_time: ts("2023-03-17T12:00:00Z"),
                ..Default::default()
            }),
            &["start_time"],
            "meeting.end_time",
        ),
        (bad(pb::Meeting::default()), &["title"], "meeting.title"),
        (bad(pb::Meeting::default()), &["host"], "meeting.host"),
        (
            bad(pb::Meeting::default()),
            &["delegations"],
            "meeting.delegations",
        ),
        (
            bad(pb::Meeting {
                delegations: strings(&[SCO, "elections/kz-2023/delegations/nowhere"]),
                ..Default::default()
            }),
            &["delegations"],
            "meeting.delegations[1]",
        ),
    ] {
        let error = update_meeting(&app, change, paths).await.unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &[field]);
    }
    assert_eq!(get_meeting(&app, &created.name).await, created);
}

// ---- lists ----

/// Five meetings: `m1`..`m4` live (`m4` cancelled), `m5` deleted.
async fn list_fixture(app: &TestApp) {
    registry(app).await;
    create_meeting(
        app,
        "m1",
        meeting(
            ABDIROV,
            &[SCO, CEC_AZ],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    create_meeting(
        app,
        "m2",
        meeting(
            ABDIROV,
            &[CEC_TJ],
            "2023-03-18T10:00:00Z",
            "2023-03-18T11:00:00Z",
        ),
    )
    .await;
    create_meeting(
        app,
        "m3",
        meeting(
            SECRETARY,
            &[SCO],
            "2023-03-18T09:00:00Z",
            "2023-03-18T10:00:00Z",
        ),
    )
    .await;
    create_meeting(
        app,
        "m4",
        meeting(
            DEPUTY,
            &[CIS_IPA],
            "2023-03-18T11:00:00Z",
            "2023-03-18T12:00:00Z",
        ),
    )
    .await;
    cancel(app, &meeting_name("m4"), "Postponed", "")
        .await
        .unwrap();
    create_meeting(
        app,
        "m5",
        meeting(
            SECRETARY,
            &[CIS_IPA],
            "2023-03-17T14:00:00Z",
            "2023-03-17T15:00:00Z",
        ),
    )
    .await;
    delete_meeting(app, &meeting_name("m5"), "").await.unwrap();
}

#[sqlx::test]
async fn meetings_are_filtered_by_delegation_host_state_and_time(pool: PgPool) {
    let app = spawn_app(pool).await;
    list_fixture(&app).await;
    let by_start = |filter: &'static str| meeting_ids(&app, filter, "start_time", false);

    assert_eq!(by_start("").await, strings(&["m1", "m3", "m2", "m4"]));
    assert_eq!(
        by_start(r#"delegation = "elections/kz-2023/delegations/sco""#).await,
        strings(&["m1", "m3"])
    );
    assert_eq!(
        by_start(r#"delegation = "elections/kz-2023/delegations/cec-tj""#).await,
        strings(&["m2"])
    );
    assert_eq!(
        by_start(r#"delegation = "elections/kz-2023/delegations/cis-ipa""#).await,
        strings(&["m4"])
    );
    assert_eq!(
        by_start(r#"host = "Nurlan Abdirov, Chairman of the Central Election Commission""#).await,
        strings(&["m1", "m2"])
    );
    assert_eq!(
        by_start("state = SCHEDULED").await,
        strings(&["m1", "m3", "m2"])
    );
    assert_eq!(by_start("state = CANCELLED").await, strings(&["m4"]));
    assert_eq!(
        by_start(r#"start_time >= "2023-03-18T00:00:00Z""#).await,
        strings(&["m3", "m2", "m4"])
    );
    assert_eq!(
        by_start(r#"end_time < "2023-03-18T10:30:00Z""#).await,
        strings(&["m1", "m3"])
    );
    assert_eq!(
        by_start(r#"state = SCHEDULED AND start_time >= "2023-03-18T00:00:00Z""#).await,
        strings(&["m3", "m2"])
    );
    assert_eq!(
        meeting_ids(
            &app,
            r#"host = "Secretary of the Central Election Commission""#,
            "start_time",
            true
        )
        .await,
        strings(&["m5", "m3"])
    );

    // Other elections' meetings are not listed.
    create_kz_election(&app, "kz-2024", None).await;
    create_delegation(
        &app,
        "elections/kz-2024",
        "sco",
        delegation("SCO mission", "sco"),
    )
    .await;
    meetings(&app)
        .create_meeting(create_request(
            "elections/kz-2024",
            "m1",
            meeting(
                ABDIROV,
                &["elections/kz-2024/delegations/sco"],
                "2023-03-17T10:00:00Z",
                "2023-03-17T12:00:00Z",
            ),
        ))
        .await
        .unwrap();
    assert_eq!(by_start("").await, strings(&["m1", "m3", "m2", "m4"]));
}

#[sqlx::test]
async fn malformed_filters_are_invalid_filter(pool: PgPool) {
    let app = spawn_app(pool).await;
    list_fixture(&app).await;
    for filter in [
        r#"topics = "preparedness of the polling stations""#,
        r#"colour = "red""#,
        r#"host = = "x""#,
        r#"start_time >= "the day before voting""#,
        "state = POSTPONED",
        r#"delegation = "elections/kz-2023/delegations/sco" AND"#,
        r#"host = "unterminated"#,
    ] {
        let Err(error) = list_meetings(
            &app,
            pb::ListMeetingsRequest {
                parent: KZ.into(),
                filter: filter.into(),
                ..Default::default()
            },
        )
        .await
        else {
            panic!("the filter {filter:?} was accepted");
        };
        assert_invalid(&error, "INVALID_FILTER", &["filter"]);
    }
    for order_by in ["location", "start_time sideways", "topics desc"] {
        let error = list_meetings(
            &app,
            pb::ListMeetingsRequest {
                parent: KZ.into(),
                order_by: order_by.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["order_by"]);
    }
}

#[sqlx::test]
async fn meetings_are_ordered_by_start_time_and_paged_with_an_exact_total(pool: PgPool) {
    let app = spawn_app(pool).await;
    list_fixture(&app).await;
    assert_eq!(
        meeting_ids(&app, "", "start_time desc", false).await,
        strings(&["m4", "m2", "m3", "m1"])
    );
    assert_eq!(
        meeting_ids(&app, "", "start_time desc", true).await,
        strings(&["m4", "m2", "m3", "m5", "m1"])
    );
    // Default order: creation.
    assert_eq!(
        meeting_ids(&app, "", "", false).await,
        strings(&["m1", "m2", "m3", "m4"])
    );

    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = list_meetings(
            &app,
            pb::ListMeetingsRequest {
                parent: KZ.into(),
                page_size: 2,
                page_token: page_token.clone(),
                order_by: "start_time".into(),
                show_deleted: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        pages += 1;
        assert_eq!(page.total_size, 5);
        assert!(page.meetings.len() <= 2);
        seen.extend(page.meetings.iter().map(|m| id(&m.name).to_owned()));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, strings(&["m1", "m5", "m3", "m2", "m4"]));

    let error = list_meetings(
        &app,
        pb::ListMeetingsRequest {
            parent: KZ.into(),
            page_size: -1,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["page_size"]);
}

// ---- elections ----

#[sqlx::test]
async fn an_election_with_meetings_is_deleted_only_with_force_and_takes_them_along(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    create_meeting(
        &app,
        "m1",
        meeting(
            ABDIROV,
            &[SCO, CIS_IPA],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        ),
    )
    .await;
    let gone = create_meeting(
        &app,
        "m2",
        meeting(
            ABDIROV,
            &[CEC_TJ],
            "2023-03-18T10:00:00Z",
            "2023-03-18T11:00:00Z",
        ),
    )
    .await;
    delete_meeting(&app, &gone.name, "").await.unwrap();

    let error = delete_election(&app, KZ, false).await.unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "HAS_CHILDREN");
    assert_eq!(app.count("meetings").await, 2);

    delete_election(&app, KZ, true).await.unwrap();
    assert_eq!(app.count("elections").await, 0);
    assert_eq!(app.count("meetings").await, 0);
    assert_eq!(app.count("delegations").await, 0);
}

// ---- the story ----

/// The acceptance story (seed-article-astana-2023.txt): on 17 and 18 March 2023 the CEC
/// chairman Nurlan Abdirov met the delegations that came to observe the early parliamentary
/// elections of 19 March: seven together on the 17th, three one after another on the 18th.
#[sqlx::test]
async fn the_astana_2023_meetings_of_the_cec_chairman_are_recorded(pool: PgPool) {
    // Meetings are booked regardless of the clock; the clock matters for holding them.
    let clock = ManualClock::new(at("2023-03-16T09:00:00Z"));
    let app = spawn_app_at(pool, &clock).await;
    let senders: [(&str, &str, Kind, &str); 10] = [
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
            "ccer-tj",
            "Central Commission on Election and Referendum of Tajikistan",
            Kind::ForeignElectionBody,
            "TJ",
        ),
        (
            "cis-ipa",
            "CIS Interparliamentary Assembly",
            Kind::ParliamentaryAssembly,
            "",
        ),
    ];
    for (id, display_name, kind, country) in senders {
        create_organization(&app, id, display_name, kind, country).await;
    }
    let election = create_election(&app, "kz-2023").await;
    assert_eq!(election.name, KZ);
    for (id, display_name, _, _) in senders {
        create_delegation(
            &app,
            KZ,
            id,
            pb::Delegation {
                arrival_date: "2023-03-15".into(),
                departure_date: "2023-03-21".into(),
                ..delegation(&format!("Delegation: {display_name}"), id)
            },
        )
        .await;
    }
    let delegation_name = |id: &str| format!("{KZ}/delegations/{id}");

    // 17 March: one meeting with seven delegations.
    let seven: Vec<String> = senders[..7]
        .iter()
        .map(|(id, ..)| delegation_name(id))
        .collect();
    let seven: Vec<&str> = seven.iter().map(String::as_str).collect();
    let march_17 = create_meeting(
        &app,
        "chairman-2023-03-17",
        pb::Meeting {
            title: "Meeting with heads and members of international observer delegations".into(),
            location: "Central Election Commission, Astana".into(),
            topics: strings(&[
                "preparation for the early parliamentary elections",
                "implementation of reforms in election legislation",
                "results of registration of candidates and party lists",
            ]),
            ..meeting(
                ABDIROV,
                &seven,
                "2023-03-17T10:00:00Z",
                "2023-03-17T12:00:00Z",
            )
        },
    )
    .await;
    assert_eq!(march_17.delegations.len(), 7);
    assert_eq!(march_17.state(), State::Scheduled);

    // 18 March: three meetings, back to back.
    let march_18 = [
        (
            "pa-union-by-ru",
            "Meeting with the delegation of the Parliamentary Assembly of the Union of Belarus and Russia",
            "2023-03-18T09:00:00Z",
            "2023-03-18T10:00:00Z",
        ),
        (
            "ccer-tj",
            "Meeting with Bakhtiyor Hudoerzoda, Chairman of the CCER of Tajikistan",
            "2023-03-18T10:00:00Z",
            "2023-03-18T11:00:00Z",
        ),
        (
            "cis-ipa",
            "Meeting with the observer group of the CIS Interparliamentary Assembly",
            "2023-03-18T11:00:00Z",
            "2023-03-18T12:00:00Z",
        ),
    ];
    for (id, title, start, end) in march_18 {
        let created = create_meeting(
            &app,
            &format!("{id}-2023-03-18"),
            pb::Meeting {
                title: title.into(),
                topics: strings(&[
                    "preparation for the election of Majilis deputies",
                    "preparedness of the polling stations",
                ]),
                ..meeting(ABDIROV, &[delegation_name(id).as_str()], start, end)
            },
        )
        .await;
        assert_eq!(created.delegations, vec![delegation_name(id)]);
    }
    assert_eq!(app.count("meetings").await, 4);

    assert_eq!(
        meeting_ids(
            &app,
            r#"start_time >= "2023-03-18T00:00:00Z""#,
            "start_time",
            false
        )
        .await,
        strings(&[
            "pa-union-by-ru-2023-03-18",
            "ccer-tj-2023-03-18",
            "cis-ipa-2023-03-18"
        ])
    );
    assert_eq!(
        meeting_ids(
            &app,
            r#"delegation = "elections/kz-2023/delegations/ccer-tj""#,
            "",
            false
        )
        .await,
        strings(&["ccer-tj-2023-03-18"])
    );
    assert_eq!(
        meeting_ids(
            &app,
            r#"delegation = "elections/kz-2023/delegations/sec-tr""#,
            "",
            false
        )
        .await,
        strings(&["chairman-2023-03-17"])
    );

    // A fifth meeting of the chairman during the one of 17 March is a conflict.
    let error = try_create_meeting(
        &app,
        "chairman-extra",
        meeting(
            ABDIROV,
            &[delegation_name("cis-ipa").as_str()],
            "2023-03-17T11:00:00Z",
            "2023-03-17T11:30:00Z",
        ),
    )
    .await
    .unwrap_err();
    assert_conflict(&error, &march_17.name);
    assert_eq!(app.count("meetings").await, 4);

    // The evening of 17 March: the first meeting was held; those of the 18th have not begun.
    clock.set(at("2023-03-18T00:00:00Z"));
    let held = complete(
        &app,
        &march_17.name,
        "The delegations noted a high level of organization of the election process",
        &march_17.etag,
    )
    .await
    .unwrap();
    assert_eq!(held.state(), State::Held);
    assert_eq!(
        held.outcome,
        "The delegations noted a high level of organization of the election process"
    );
    let error = complete(&app, &meeting_name("ccer-tj-2023-03-18"), "Not yet", "")
        .await
        .unwrap_err();
    assert_error(&error, Code::FailedPrecondition, "INVALID_STATE_TRANSITION");

    // Noon of 18 March: all four were held.
    clock.set(at("2023-03-18T12:00:00Z"));
    for (id, ..) in march_18 {
        complete(
            &app,
            &meeting_name(&format!("{id}-2023-03-18")),
            "The heads of delegations pointed out the calm and friendly atmosphere",
            "",
        )
        .await
        .unwrap();
    }
    assert_eq!(
        meeting_ids(&app, "state = HELD", "start_time", false)
            .await
            .len(),
        4
    );
    assert!(
        meeting_ids(&app, "state = SCHEDULED", "", false)
            .await
            .is_empty()
    );
}

// ---- text ----

#[sqlx::test]
async fn control_characters_in_text_are_invalid_arguments_naming_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    registry(&app).await;
    let valid = || {
        meeting(
            ABDIROV,
            &[SCO],
            "2023-03-17T10:00:00Z",
            "2023-03-17T12:00:00Z",
        )
    };

    // A NUL would otherwise reach PostgreSQL, which refuses it as a driver error (INTERNAL).
    for title in ["Meeting\0with observers", "Meeting\u{7}with observers"] {
        let error = try_create_meeting(
            &app,
            "m",
            pb::Meeting {
                title: title.into(),
                ..valid()
            },
        )
        .await
        .unwrap_err();
        assert_invalid(&error, "INVALID_ARGUMENT", &["meeting.title"]);
    }
    let error = try_create_meeting(
        &app,
        "m",
        pb::Meeting {
            host: "Nurlan\u{200B}Abdirov".into(),
            topics: strings(&["agenda", "bell\u{7}"]),
            ..valid()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(
        &error,
        "INVALID_ARGUMENT",
        &["meeting.host", "meeting.topics[1]"],
    );
    assert_eq!(app.count("meetings").await, 0);

    // Updates and conclusions are held to the same rule; stored text is NFC and trimmed.
    let created = create_meeting(
        &app,
        "m",
        pb::Meeting {
            title: "  Jose\u{301} ".into(),
            ..valid()
        },
    )
    .await;
    assert_eq!(created.title, "Jos\u{e9}");
    let error = update_meeting(
        &app,
        pb::Meeting {
            name: created.name.clone(),
            location: "Hall\0".into(),
            ..Default::default()
        },
        &["location"],
    )
    .await
    .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["meeting.location"]);
    let error = cancel(&app, &created.name, "Flight\0delayed", "")
        .await
        .unwrap_err();
    assert_invalid(&error, "INVALID_ARGUMENT", &["reason"]);
    assert_eq!(get_meeting(&app, &created.name).await, created);
}
