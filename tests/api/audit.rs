//! The audit trail end to end: every successful mutation writes exactly one event (who, which
//! method, which resource, the create's request_id, what changed, before and after without
//! personal data), refused calls write none, only administrators read it, and the table
//! refuses to be changed.

use crate::common::{self, agencies};

use std::collections::BTreeSet;

use agencies::*;
use common::*;
use observer_registry::client::Client;
use observer_registry::pb::v1 as pb;
use prost::Message;
use prost_types::value::Kind;
use prost_types::{FieldMask, Struct, Timestamp};
use sqlx::PgPool;
use tonic::Code;

const KZ: &str = "elections/kz-2023";
const ORGANIZATIONS: &str = "organizations/-";
const DELEGATION: &str = "elections/kz-2023/delegations/sco";

/// Personal data of the observers registered here: none of it may reach the trail.
const DOCUMENT: &str = "PD7734521";
const BATCH_DOCUMENT: &str = "PD9910203";
const EMAIL: &str = "anna.secret@mail.example";
const NEW_EMAIL: &str = "anna.private@post.example";
const PHONE: &str = "+7 701 555 0199";
const BIRTH: &str = "1971-02-03";
const PERSONAL: &[&str] = &[
    DOCUMENT,
    BATCH_DOCUMENT,
    EMAIL,
    NEW_EMAIL,
    "anna.secret",
    "anna.private",
    "701 555 0199",
    BIRTH,
];

fn method(service: &str, method: &str) -> String {
    format!("/observer_registry.v1.{service}/{method}")
}

/// The mutation RPCs of the contract, from the descriptors the server is built from: every
/// method that is not a read (Get..., List..., Watch...).
fn contract_mutations() -> BTreeSet<String> {
    let set =
        prost_types::FileDescriptorSet::decode(observer_registry::pb::FILE_DESCRIPTOR_SET).unwrap();
    let mut mutations = BTreeSet::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package() == "observer_registry.v1")
    {
        for service in &file.service {
            for rpc in &service.method {
                let name = rpc.name();
                // VerifyAccreditation reads (API.md: reads are not audited).
                let reads = ["Get", "List", "Watch", "Verify"];
                if !reads.iter().any(|p| name.starts_with(p)) {
                    mutations.insert(method(service.name(), name));
                }
            }
        }
    }
    assert!(
        mutations.len() >= 20,
        "only {} mutations found",
        mutations.len()
    );
    mutations
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn timestamp(rfc3339: &str) -> Option<Timestamp> {
    let time: chrono::DateTime<chrono::Utc> = rfc3339.parse().unwrap();
    Some(Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

fn in_a_day() -> Option<Timestamp> {
    Some(Timestamp {
        seconds: chrono::Utc::now().timestamp() + 86_400,
        nanos: 0,
    })
}

/// A string field of a `before`/`after` struct.
fn text<'a>(value: Option<&'a Struct>, key: &str) -> Option<&'a str> {
    match value?.fields.get(key)?.kind.as_ref()? {
        Kind::StringValue(s) => Some(s),
        _ => None,
    }
}

fn has(value: Option<&Struct>, key: &str) -> bool {
    value.is_some_and(|s| s.fields.contains_key(key))
}

/// Every event of `parent` matching `filter`, oldest first, all pages.
async fn events(admin: &Client, parent: &str, filter: &str) -> Vec<pb::AuditEvent> {
    admin
        .audit()
        .list_audit_events(pb::ListAuditEventsRequest {
            parent: parent.to_owned(),
            page_size: 1000,
            filter: filter.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events
}

async fn latest(admin: &Client, parent: &str) -> pb::AuditEvent {
    let mut page = admin
        .audit()
        .list_audit_events(pb::ListAuditEventsRequest {
            parent: parent.to_owned(),
            page_size: 1,
            order_by: "event_time desc".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    page.pop().expect("no audit event")
}

/// The event one mutation must have written.
struct Expected<'a> {
    actor: &'a str,
    method: String,
    resource: &'a str,
    request_id: &'a str,
    before: bool,
    after: bool,
}

/// Runs `mutation`, checks it wrote exactly one event (under `parent`) as `expected` says and
/// returns the mutation's answer and the event.
async fn one_event<T>(
    app: &TestApp,
    admin: &Client,
    parent: &str,
    expected: Expected<'_>,
    mutation: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> (T, pb::AuditEvent) {
    let count = app.count("audit_events").await;
    let answer = mutation
        .await
        .unwrap_or_else(|status| panic!("{} failed: {status:?}", expected.method))
        .into_inner();
    assert_eq!(
        app.count("audit_events").await,
        count + 1,
        "{} must write exactly one event",
        expected.method
    );
    let event = latest(admin, parent).await;
    let what = &expected.method;
    assert_eq!(event.actor, expected.actor, "actor of {what}");
    assert_eq!(event.method, expected.method, "method of {what}");
    assert_eq!(event.resource, expected.resource, "resource of {what}");
    assert_eq!(
        event.request_id, expected.request_id,
        "request_id of {what}"
    );
    assert_eq!(event.before.is_some(), expected.before, "before of {what}");
    assert_eq!(event.after.is_some(), expected.after, "after of {what}");
    assert!(event.event_time.is_some(), "event_time of {what}");
    for (label, value) in [("before", &event.before), ("after", &event.after)] {
        if let Some(value) = value
            && text(Some(value), "name").is_some()
        {
            assert_eq!(
                text(Some(value), "name"),
                Some(expected.resource),
                "{label} of {what} is about another resource"
            );
        }
    }
    (answer, event)
}

fn observer(given: &str, family: &str, citizenship: &str, document: &str) -> pb::Observer {
    pb::Observer {
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        citizenship: citizenship.to_owned(),
        organization: "organizations/sco".to_owned(),
        delegation: DELEGATION.to_owned(),
        travel_document_number: document.to_owned(),
        ..Default::default()
    }
}

fn meeting(start: &str, end: &str) -> pb::Meeting {
    pb::Meeting {
        title: "Meeting with the SCO observation mission".into(),
        host: "Nurlan Abdirov, Chairman of the Central Election Commission".into(),
        delegations: vec![DELEGATION.into()],
        start_time: timestamp(start),
        end_time: timestamp(end),
        ..Default::default()
    }
}

#[sqlx::test]
async fn every_successful_mutation_writes_one_event_without_personal_data(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool.clone(), "audit-trail").await;
    let admin = agencies.client(&app, ADMIN);
    let registrar = agencies.client(&app, REGISTRAR_PD);
    let accreditor = agencies.client(&app, ACCREDITOR_PD);
    let protocol = agencies.client(&app, PROTOCOL);
    let elections = || admin.elections();
    let expect = |actor, service, name, resource, request_id, before, after| Expected {
        actor,
        method: method(service, name),
        resource,
        request_id,
        before,
        after,
    };

    // ---- elections ----
    let request_id = new_request_id();
    let create = pb::CreateElectionRequest {
        election_id: "kz-2023".into(),
        election: Some(pb::Election {
            accreditation_deadline: in_a_day(),
            ..kz_election("Early parliamentary election")
        }),
        request_id: request_id.clone(),
    };
    let (election, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            ADMIN,
            "ElectionService",
            "CreateElection",
            KZ,
            &request_id,
            false,
            true,
        ),
        elections().create_election(create.clone()),
    )
    .await;
    assert_eq!(
        text(event.after.as_ref(), "displayName"),
        Some("Early parliamentary election")
    );
    assert_eq!(text(event.after.as_ref(), "hostCountry"), Some("KZ"));
    assert!(
        event.changed_fields.contains(&"display_name".to_owned()),
        "{:?}",
        event.changed_fields
    );
    // A replayed create changes nothing and records nothing.
    let count = app.count("audit_events").await;
    let replayed = elections()
        .create_election(create)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.etag, election.etag);
    assert_eq!(app.count("audit_events").await, count);

    let (updated, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            ADMIN,
            "ElectionService",
            "UpdateElection",
            KZ,
            "",
            true,
            true,
        ),
        elections().update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: KZ.into(),
                description: "Snap election called by the President".into(),
                etag: election.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        }),
    )
    .await;
    assert_eq!(event.changed_fields, ["description"]);
    assert_eq!(text(event.before.as_ref(), "description").unwrap_or(""), "");
    assert_eq!(
        text(event.after.as_ref(), "description"),
        Some("Snap election called by the President")
    );
    assert_eq!(text(event.before.as_ref(), "etag"), Some(&*election.etag));
    assert_eq!(text(event.after.as_ref(), "etag"), Some(&*updated.etag));

    let runoff = "elections/kz-2023-runoff";
    one_event(
        &app,
        &admin,
        runoff,
        expect(
            ADMIN,
            "ElectionService",
            "CreateElection",
            runoff,
            "",
            false,
            true,
        ),
        elections().create_election(pb::CreateElectionRequest {
            election_id: "kz-2023-runoff".into(),
            election: Some(kz_election("Runoff")),
            request_id: String::new(),
        }),
    )
    .await;
    let (_, event) = one_event(
        &app,
        &admin,
        runoff,
        expect(
            ADMIN,
            "ElectionService",
            "ErasePersonalData",
            runoff,
            "",
            true,
            true,
        ),
        elections().erase_personal_data(pb::ErasePersonalDataRequest {
            name: runoff.into(),
            etag: String::new(),
        }),
    )
    .await;
    assert_eq!(
        event.reason,
        "personal data of 0 observers erased on request"
    );
    assert_eq!(event.changed_fields, ["personal_data_erase_time"]);
    let (_, event) = one_event(
        &app,
        &admin,
        runoff,
        expect(
            ADMIN,
            "ElectionService",
            "DeleteElection",
            runoff,
            "",
            true,
            false,
        ),
        elections().delete_election(pb::DeleteElectionRequest {
            name: runoff.into(),
            force: false,
            etag: String::new(),
        }),
    )
    .await;
    assert_eq!(text(event.before.as_ref(), "displayName"), Some("Runoff"));
    // The trail outlives the election.
    assert_eq!(events(&admin, runoff, "").await.len(), 3);

    // ---- organizations ----
    let request_id = new_request_id();
    let organization = |id: &str, display_name: &str| pb::CreateOrganizationRequest {
        organization_id: id.to_owned(),
        organization: Some(pb::Organization {
            display_name: display_name.to_owned(),
            kind: pb::OrganizationKind::InternationalOrganization.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    one_event(
        &app,
        &admin,
        ORGANIZATIONS,
        expect(
            ADMIN,
            "OrganizationService",
            "CreateOrganization",
            "organizations/sco",
            &request_id,
            false,
            true,
        ),
        admin
            .organizations()
            .create_organization(pb::CreateOrganizationRequest {
                request_id: request_id.clone(),
                ..organization("sco", "Shanghai Cooperation Organization")
            }),
    )
    .await;
    let (_, event) = one_event(
        &app,
        &admin,
        ORGANIZATIONS,
        expect(
            ADMIN,
            "OrganizationService",
            "UpdateOrganization",
            "organizations/sco",
            "",
            true,
            true,
        ),
        admin
            .organizations()
            .update_organization(pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    name: "organizations/sco".into(),
                    abbreviation: "SCO".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["abbreviation"]),
            }),
    )
    .await;
    assert_eq!(event.changed_fields, ["abbreviation"]);
    one_event(
        &app,
        &admin,
        ORGANIZATIONS,
        expect(
            ADMIN,
            "OrganizationService",
            "CreateOrganization",
            "organizations/temporary",
            "",
            false,
            true,
        ),
        admin
            .organizations()
            .create_organization(organization("temporary", "Temporary")),
    )
    .await;
    one_event(
        &app,
        &admin,
        ORGANIZATIONS,
        expect(
            ADMIN,
            "OrganizationService",
            "DeleteOrganization",
            "organizations/temporary",
            "",
            true,
            false,
        ),
        admin
            .organizations()
            .delete_organization(pb::DeleteOrganizationRequest {
                name: "organizations/temporary".into(),
                etag: String::new(),
            }),
    )
    .await;

    // ---- delegations ----
    let request_id = new_request_id();
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            REGISTRAR_PD,
            "DelegationService",
            "CreateDelegation",
            DELEGATION,
            &request_id,
            false,
            true,
        ),
        registrar
            .delegations()
            .create_delegation(pb::CreateDelegationRequest {
                parent: KZ.into(),
                delegation_id: "sco".into(),
                delegation: Some(pb::Delegation {
                    display_name: "SCO observation mission".into(),
                    organization: "organizations/sco".into(),
                    ..Default::default()
                }),
                request_id: request_id.clone(),
            }),
    )
    .await;
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            REGISTRAR_PD,
            "DelegationService",
            "UpdateDelegation",
            DELEGATION,
            "",
            true,
            true,
        ),
        registrar
            .delegations()
            .update_delegation(pb::UpdateDelegationRequest {
                delegation: Some(pb::Delegation {
                    name: DELEGATION.into(),
                    notes: "Arrives by the evening train".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["notes"]),
            }),
    )
    .await;
    assert_eq!(event.changed_fields, ["notes"]);
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            REGISTRAR_PD,
            "DelegationService",
            "DeleteDelegation",
            DELEGATION,
            "",
            true,
            true,
        ),
        registrar
            .delegations()
            .delete_delegation(pb::DeleteDelegationRequest {
                name: DELEGATION.into(),
                etag: String::new(),
            }),
    )
    .await;
    assert!(!has(event.before.as_ref(), "deleteTime"));
    assert!(has(event.after.as_ref(), "deleteTime"));
    assert!(event.changed_fields.contains(&"delete_time".to_owned()));
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            ADMIN,
            "DelegationService",
            "UndeleteDelegation",
            DELEGATION,
            "",
            true,
            true,
        ),
        admin
            .delegations()
            .undelete_delegation(pb::UndeleteDelegationRequest {
                name: DELEGATION.into(),
                etag: String::new(),
            }),
    )
    .await;
    assert!(has(event.before.as_ref(), "deleteTime"));
    assert!(!has(event.after.as_ref(), "deleteTime"));

    // ---- observers, registered with personal data by an agency that may read it ----
    let o1 = "elections/kz-2023/observers/o-1";
    let request_id = new_request_id();
    let (created, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            REGISTRAR_PD,
            "ObserverService",
            "CreateObserver",
            o1,
            &request_id,
            false,
            true,
        ),
        registrar
            .observers()
            .create_observer(pb::CreateObserverRequest {
                parent: KZ.into(),
                observer_id: "o-1".into(),
                observer: Some(pb::Observer {
                    date_of_birth: BIRTH.into(),
                    email: EMAIL.into(),
                    phone: PHONE.into(),
                    ..observer("Anna", "Ivanova", "RU", DOCUMENT)
                }),
                request_id: request_id.clone(),
            }),
    )
    .await;
    assert_eq!(
        created.travel_document_number, DOCUMENT,
        "the caller reads it"
    );
    assert_eq!(text(event.after.as_ref(), "familyName"), Some("Ivanova"));
    for key in ["travelDocumentNumber", "dateOfBirth", "email", "phone"] {
        assert_eq!(
            text(event.after.as_ref(), key).unwrap_or(""),
            "",
            "{key} in the trail"
        );
    }

    let request_id = new_request_id();
    let entry = |id: &str, observer: pb::Observer| pb::CreateObserverRequest {
        parent: String::new(),
        observer_id: id.to_owned(),
        observer: Some(observer),
        request_id: String::new(),
    };
    let (batch, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            REGISTRAR_PD,
            "ObserverService",
            "BatchCreateObservers",
            KZ,
            &request_id,
            false,
            true,
        ),
        registrar
            .observers()
            .batch_create_observers(pb::BatchCreateObserversRequest {
                parent: KZ.into(),
                requests: vec![
                    entry(
                        "b-1",
                        pb::Observer {
                            email: EMAIL.into(),
                            ..observer("Li", "Wei", "CN", BATCH_DOCUMENT)
                        },
                    ),
                    entry("b-2", observer("Aibek", "Asanov", "KG", "PD5550001")),
                ],
                request_id: request_id.clone(),
                validate_only: false,
            }),
    )
    .await;
    assert_eq!(batch.observers.len(), 2);
    let Some(Kind::ListValue(listed)) = event
        .after
        .as_ref()
        .and_then(|a| a.fields.get("observers"))
        .and_then(|v| v.kind.clone())
    else {
        panic!("the batch's event does not list its observers: {event:?}");
    };
    let names: Vec<String> = listed
        .values
        .iter()
        .filter_map(|v| match &v.kind {
            Some(Kind::StructValue(s)) => text(Some(s), "name").map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            "elections/kz-2023/observers/b-1",
            "elections/kz-2023/observers/b-2"
        ]
    );

    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            REGISTRAR_PD,
            "ObserverService",
            "UpdateObserver",
            o1,
            "",
            true,
            true,
        ),
        registrar
            .observers()
            .update_observer(pb::UpdateObserverRequest {
                observer: Some(pb::Observer {
                    name: o1.into(),
                    deployment_region: "Astana".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["deployment_region"]),
            }),
    )
    .await;
    assert_eq!(event.changed_fields, ["deployment_region"]);
    // A change of personal data only is recorded too, without the data.
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            REGISTRAR_PD,
            "ObserverService",
            "UpdateObserver",
            o1,
            "",
            true,
            true,
        ),
        registrar
            .observers()
            .update_observer(pb::UpdateObserverRequest {
                observer: Some(pb::Observer {
                    name: o1.into(),
                    email: NEW_EMAIL.into(),
                    ..Default::default()
                }),
                update_mask: mask(&["email"]),
            }),
    )
    .await;
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            REGISTRAR_PD,
            "ObserverService",
            "DeleteObserver",
            o1,
            "",
            true,
            true,
        ),
        registrar
            .observers()
            .delete_observer(pb::DeleteObserverRequest {
                name: o1.into(),
                etag: String::new(),
            }),
    )
    .await;
    assert!(has(event.after.as_ref(), "deleteTime"));
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            ADMIN,
            "ObserverService",
            "UndeleteObserver",
            o1,
            "",
            true,
            true,
        ),
        admin
            .observers()
            .undelete_observer(pb::UndeleteObserverRequest {
                name: o1.into(),
                etag: String::new(),
            }),
    )
    .await;
    let (accredited, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            ACCREDITOR_PD,
            "ObserverService",
            "AccreditObserver",
            o1,
            "",
            true,
            true,
        ),
        accreditor
            .observers()
            .accredit_observer(pb::AccreditObserverRequest {
                name: o1.into(),
                etag: String::new(),
                decision: String::new(),
            }),
    )
    .await;
    assert!(
        event
            .changed_fields
            .iter()
            .any(|f| f.starts_with("accreditation")),
        "{:?}",
        event.changed_fields
    );
    let accreditation = |value: Option<&Struct>| match value
        .and_then(|v| v.fields.get("accreditation"))
        .and_then(|v| v.kind.clone())
    {
        Some(Kind::StructValue(s)) => s,
        other => panic!("no accreditation: {other:?}"),
    };
    assert_eq!(
        text(Some(&accreditation(event.before.as_ref())), "state"),
        Some("PENDING")
    );
    let after = accreditation(event.after.as_ref());
    assert_eq!(text(Some(&after), "state"), Some("ACCREDITED"));
    assert_eq!(
        text(Some(&after), "number"),
        Some(accredited.accreditation.unwrap().number.as_str())
    );
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            ACCREDITOR_PD,
            "ObserverService",
            "RejectObserver",
            "elections/kz-2023/observers/b-1",
            "",
            true,
            true,
        ),
        accreditor
            .observers()
            .reject_observer(pb::RejectObserverRequest {
                name: "elections/kz-2023/observers/b-1".into(),
                reason: "Incomplete application".into(),
                etag: String::new(),
                decision: String::new(),
            }),
    )
    .await;
    assert_eq!(
        text(Some(&accreditation(event.after.as_ref())), "state"),
        Some("REJECTED")
    );
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            ACCREDITOR_PD,
            "ObserverService",
            "RevokeAccreditation",
            o1,
            "",
            true,
            true,
        ),
        accreditor
            .observers()
            .revoke_accreditation(pb::RevokeAccreditationRequest {
                name: o1.into(),
                reason: "Left the country".into(),
                etag: String::new(),
                decision: String::new(),
            }),
    )
    .await;
    assert_eq!(
        text(Some(&accreditation(event.after.as_ref())), "state"),
        Some("REVOKED")
    );
    assert_eq!(event.reason, "Left the country");
    // A batch of one: the observer's own event, as AccreditObserver writes it, under the
    // batch's request id.
    let batch_id = new_request_id();
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            ACCREDITOR_PD,
            "ObserverService",
            "BatchAccreditObservers",
            "elections/kz-2023/observers/b-2",
            &batch_id,
            true,
            true,
        ),
        accreditor
            .observers()
            .batch_accredit_observers(pb::BatchAccreditObserversRequest {
                parent: KZ.into(),
                names: vec!["elections/kz-2023/observers/b-2".into()],
                decision: "Resolution No. 25/312 of 2023-03-14".into(),
                request_id: batch_id.clone(),
            }),
    )
    .await;
    let after = accreditation(event.after.as_ref());
    assert_eq!(text(Some(&after), "state"), Some("ACCREDITED"));
    assert_eq!(
        text(Some(&after), "decision"),
        Some("Resolution No. 25/312 of 2023-03-14")
    );
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            ACCREDITOR_PD,
            "ObserverService",
            "CorrectObserver",
            o1,
            "",
            true,
            true,
        ),
        accreditor
            .observers()
            .correct_observer(pb::CorrectObserverRequest {
                observer: Some(pb::Observer {
                    name: o1.into(),
                    given_name: "Corrected".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["given_name".into()],
                }),
                reason: "given name misspelled on the badge".into(),
            }),
    )
    .await;
    assert_eq!(event.changed_fields, ["given_name"]);
    assert_eq!(event.reason, "given name misspelled on the badge");

    // ---- meetings ----
    let m1 = "elections/kz-2023/meetings/m-1";
    let m2 = "elections/kz-2023/meetings/m-2";
    let request_id = new_request_id();
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "MeetingService",
            "CreateMeeting",
            m1,
            &request_id,
            false,
            true,
        ),
        protocol
            .meetings()
            .create_meeting(pb::CreateMeetingRequest {
                parent: KZ.into(),
                meeting_id: "m-1".into(),
                meeting: Some(meeting("2023-03-17T10:00:00Z", "2023-03-17T11:00:00Z")),
                request_id: request_id.clone(),
            }),
    )
    .await;
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "MeetingService",
            "UpdateMeeting",
            m1,
            "",
            true,
            true,
        ),
        protocol
            .meetings()
            .update_meeting(pb::UpdateMeetingRequest {
                meeting: Some(pb::Meeting {
                    name: m1.into(),
                    location: "Central Election Commission, Astana".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["location"]),
            }),
    )
    .await;
    assert_eq!(event.changed_fields, ["location"]);
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "MeetingService",
            "DeleteMeeting",
            m1,
            "",
            true,
            true,
        ),
        protocol
            .meetings()
            .delete_meeting(pb::DeleteMeetingRequest {
                name: m1.into(),
                etag: String::new(),
            }),
    )
    .await;
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            ADMIN,
            "MeetingService",
            "UndeleteMeeting",
            m1,
            "",
            true,
            true,
        ),
        admin
            .meetings()
            .undelete_meeting(pb::UndeleteMeetingRequest {
                name: m1.into(),
                etag: String::new(),
            }),
    )
    .await;
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "MeetingService",
            "CompleteMeeting",
            m1,
            "",
            true,
            true,
        ),
        protocol
            .meetings()
            .complete_meeting(pb::CompleteMeetingRequest {
                name: m1.into(),
                outcome: "Briefed on the accreditation procedure".into(),
                etag: String::new(),
            }),
    )
    .await;
    assert_eq!(text(event.after.as_ref(), "state"), Some("HELD"));
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "MeetingService",
            "CreateMeeting",
            m2,
            "",
            false,
            true,
        ),
        protocol
            .meetings()
            .create_meeting(pb::CreateMeetingRequest {
                parent: KZ.into(),
                meeting_id: "m-2".into(),
                meeting: Some(meeting("2023-03-18T10:00:00Z", "2023-03-18T11:00:00Z")),
                request_id: String::new(),
            }),
    )
    .await;
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "MeetingService",
            "CancelMeeting",
            m2,
            "",
            true,
            true,
        ),
        protocol
            .meetings()
            .cancel_meeting(pb::CancelMeetingRequest {
                name: m2.into(),
                reason: "The chairman is ill".into(),
                etag: String::new(),
            }),
    )
    .await;
    assert_eq!(text(event.after.as_ref(), "state"), Some("CANCELLED"));

    // ---- invitations ----
    let (i1, i2, i3) = (
        "elections/kz-2023/invitations/i-1",
        "elections/kz-2023/invitations/i-2",
        "elections/kz-2023/invitations/i-3",
    );
    let letter = |organization: &str| pb::Invitation {
        organization: organization.into(),
        send_date: "2023-01-20".into(),
        ..Default::default()
    };
    let invite = |id: &str, organization: &str, request_id: &str| pb::CreateInvitationRequest {
        parent: KZ.into(),
        invitation_id: id.into(),
        invitation: Some(letter(organization)),
        request_id: request_id.into(),
    };
    let request_id = new_request_id();
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "InvitationService",
            "CreateInvitation",
            i1,
            &request_id,
            false,
            true,
        ),
        protocol
            .invitations()
            .create_invitation(invite("i-1", "organizations/sco", &request_id)),
    )
    .await;
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "InvitationService",
            "UpdateInvitation",
            i1,
            "",
            true,
            true,
        ),
        protocol
            .invitations()
            .update_invitation(pb::UpdateInvitationRequest {
                invitation: Some(pb::Invitation {
                    name: i1.into(),
                    notes: "delivered by hand".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["notes"]),
            }),
    )
    .await;
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "InvitationService",
            "AcceptInvitation",
            i1,
            "",
            true,
            true,
        ),
        protocol
            .invitations()
            .accept_invitation(pb::AcceptInvitationRequest {
                name: i1.into(),
                reply_date: "2023-02-01".into(),
                expected_observers: 40,
                etag: String::new(),
            }),
    )
    .await;
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "InvitationService",
            "WithdrawInvitation",
            i1,
            "",
            true,
            true,
        ),
        protocol
            .invitations()
            .withdraw_invitation(pb::WithdrawInvitationRequest {
                name: i1.into(),
                reason: "The mission was called off".into(),
                etag: String::new(),
            }),
    )
    .await;
    assert_eq!(event.reason, "The mission was called off");
    // A second organization, for a deletion and a decline (an organization has one
    // invitation per election).
    admin
        .organizations()
        .create_organization(organization("cis-ipa", "CIS IPA"))
        .await
        .unwrap();
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "InvitationService",
            "CreateInvitation",
            i2,
            "",
            false,
            true,
        ),
        protocol
            .invitations()
            .create_invitation(invite("i-2", "organizations/cis-ipa", "")),
    )
    .await;
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "InvitationService",
            "DeleteInvitation",
            i2,
            "",
            true,
            false,
        ),
        protocol
            .invitations()
            .delete_invitation(pb::DeleteInvitationRequest {
                name: i2.into(),
                etag: String::new(),
            }),
    )
    .await;
    one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "InvitationService",
            "CreateInvitation",
            i3,
            "",
            false,
            true,
        ),
        protocol
            .invitations()
            .create_invitation(invite("i-3", "organizations/cis-ipa", "")),
    )
    .await;
    let (_, event) = one_event(
        &app,
        &admin,
        KZ,
        expect(
            PROTOCOL,
            "InvitationService",
            "DeclineInvitation",
            i3,
            "",
            true,
            true,
        ),
        protocol
            .invitations()
            .decline_invitation(pb::DeclineInvitationRequest {
                name: i3.into(),
                reply_date: "2023-02-02".into(),
                reason: String::new(),
                etag: String::new(),
            }),
    )
    .await;
    assert_eq!(text(event.after.as_ref(), "state"), Some("DECLINED"));

    // ---- what the trail holds ----
    let election_events = events(&admin, KZ, "").await;
    let organization_events = events(&admin, ORGANIZATIONS, "").await;
    assert_eq!(election_events.len(), 32);
    assert_eq!(organization_events.len(), 5);
    assert_eq!(
        election_events[0].method,
        method("ElectionService", "CreateElection"),
        "oldest first"
    );
    assert!(
        organization_events
            .iter()
            .all(|e| e.resource.starts_with("organizations/")),
        "{organization_events:#?}"
    );
    assert!(
        election_events
            .iter()
            .all(|e| e.resource == KZ || e.resource.starts_with("elections/kz-2023/")),
        "{election_events:#?}"
    );
    assert_eq!(
        app.count("audit_events").await,
        (election_events.len() + organization_events.len() + 3) as i64
    );
    // Every mutation of the contract was checked above: a new one fails here until it is.
    let audited: BTreeSet<String> = sqlx::query_scalar("SELECT DISTINCT method FROM audit_events")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        audited,
        contract_mutations(),
        "the mutations checked differ from the contract's"
    );

    // No personal data anywhere: not in what the API answers, not in the table.
    for parent in [KZ, ORGANIZATIONS, runoff] {
        let bytes = admin
            .audit()
            .list_audit_events(pb::ListAuditEventsRequest {
                parent: parent.to_owned(),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .encode_to_vec();
        for secret in PERSONAL {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in the audit trail of {parent}"
            );
        }
    }
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT concat(before::text, ' ', after::text, ' ', array_to_string(changed_fields, ' ')) \
         FROM audit_events",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for row in &stored {
        for secret in PERSONAL {
            assert!(!row.contains(secret), "{secret} is stored in {row}");
        }
    }

    // Filters.
    let updates = events(
        &admin,
        KZ,
        "method = \"/observer_registry.v1.ElectionService/UpdateElection\"",
    )
    .await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].changed_fields, ["description"]);
    let by_accreditor = events(&admin, KZ, &format!("actor = {ACCREDITOR_PD:?}")).await;
    assert_eq!(by_accreditor.len(), 5);
    let about_o1 = events(&admin, KZ, &format!("resource = {o1:?}")).await;
    assert_eq!(about_o1.len(), 8, "{about_o1:#?}");
    let none = events(&admin, KZ, "event_time < \"2000-01-01T00:00:00Z\"").await;
    assert!(none.is_empty());
    let organization_updates = events(
        &admin,
        ORGANIZATIONS,
        "method = \"/observer_registry.v1.OrganizationService/UpdateOrganization\"",
    )
    .await;
    assert_eq!(organization_updates.len(), 1);

    // Paging: the same events, in the same order, a few at a time.
    let mut paged = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .audit()
            .list_audit_events(pb::ListAuditEventsRequest {
                parent: KZ.into(),
                page_size: 5,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.audit_events.len() <= 5);
        assert_eq!(page.total_size, 32);
        paged.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(paged, election_events);
    let newest_first = admin
        .audit()
        .list_audit_events(pb::ListAuditEventsRequest {
            parent: KZ.into(),
            order_by: "event_time desc".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert_eq!(
        newest_first,
        election_events.iter().rev().cloned().collect::<Vec<_>>()
    );
    let status = admin
        .audit()
        .list_audit_events(pb::ListAuditEventsRequest {
            parent: ORGANIZATIONS.into(),
            page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
}

/// A change of personal data names the fields that changed, never their values.
#[sqlx::test]
async fn a_change_of_personal_data_names_the_field_without_its_value(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool, "audit-personal").await;
    let admin = agencies.client(&app, ADMIN);
    registry(&app, &agencies).await;
    let o1 = "elections/kz-2023/observers/o-1";
    agencies
        .client(&app, REGISTRAR)
        .observers()
        .update_observer(pb::UpdateObserverRequest {
            observer: Some(pb::Observer {
                name: o1.into(),
                email: NEW_EMAIL.into(),
                ..Default::default()
            }),
            update_mask: mask(&["email"]),
        })
        .await
        .unwrap();
    let event = latest(&admin, KZ).await;
    assert_eq!(event.resource, o1);
    assert_eq!(event.changed_fields, ["email"], "{event:#?}");
    let bytes = event.encode_to_vec();
    for secret in [EMAIL, NEW_EMAIL] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in {event:#?}"
        );
    }
}

/// `elections/kz-2023` (open), `organizations/sco`, its delegation and observer `o-1`
/// (PENDING, with personal data).
async fn registry(app: &TestApp, agencies: &Agencies) {
    let admin = agencies.client(app, ADMIN);
    let registrar = agencies.client(app, REGISTRAR);
    admin
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(pb::Election {
                accreditation_deadline: in_a_day(),
                ..kz_election("Early parliamentary election")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    admin
        .organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: "sco".into(),
            organization: Some(pb::Organization {
                display_name: "Shanghai Cooperation Organization".into(),
                kind: pb::OrganizationKind::InternationalOrganization.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    registrar
        .delegations()
        .create_delegation(pb::CreateDelegationRequest {
            parent: KZ.into(),
            delegation_id: "sco".into(),
            delegation: Some(pb::Delegation {
                display_name: "SCO observation mission".into(),
                organization: "organizations/sco".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    registrar
        .observers()
        .create_observer(pb::CreateObserverRequest {
            parent: KZ.into(),
            observer_id: "o-1".into(),
            observer: Some(pb::Observer {
                email: EMAIL.into(),
                ..observer("Anna", "Ivanova", "RU", DOCUMENT)
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
}

#[sqlx::test]
async fn a_refused_mutation_writes_no_event(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool, "audit-refused").await;
    registry(&app, &agencies).await;
    let admin = agencies.client(&app, ADMIN);
    let registrar = agencies.client(&app, REGISTRAR);
    let accreditor = agencies.client(&app, ACCREDITOR);
    let o1 = "elections/kz-2023/observers/o-1";
    let election = agencies
        .client(&app, READER)
        .elections()
        .get_election(pb::GetElectionRequest { name: KZ.into() })
        .await
        .unwrap()
        .into_inner();
    admin
        .elections()
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: KZ.into(),
                description: "first".into(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
        .unwrap();
    accreditor
        .observers()
        .accredit_observer(pb::AccreditObserverRequest {
            name: o1.into(),
            etag: String::new(),
            decision: String::new(),
        })
        .await
        .unwrap();
    let count = app.count("audit_events").await;

    let refusals: Vec<(&str, Code, tonic::Status)> = vec![
        (
            "a bad country",
            Code::InvalidArgument,
            admin
                .elections()
                .create_election(pb::CreateElectionRequest {
                    election_id: "xx-2023".into(),
                    election: Some(pb::Election {
                        host_country: "XX".into(),
                        ..kz_election("Nowhere")
                    }),
                    request_id: String::new(),
                })
                .await
                .unwrap_err(),
        ),
        (
            "a stale etag",
            Code::Aborted,
            admin
                .elections()
                .update_election(pb::UpdateElectionRequest {
                    election: Some(pb::Election {
                        name: KZ.into(),
                        description: "second".into(),
                        etag: election.etag.clone(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["description"]),
                })
                .await
                .unwrap_err(),
        ),
        (
            "a reader creating an election",
            Code::PermissionDenied,
            agencies
                .client(&app, READER)
                .elections()
                .create_election(pb::CreateElectionRequest {
                    election_id: "kz-2024".into(),
                    election: Some(kz_election("By a reader")),
                    request_id: String::new(),
                })
                .await
                .unwrap_err(),
        ),
        (
            "a registrar accrediting",
            Code::PermissionDenied,
            registrar
                .observers()
                .reject_observer(pb::RejectObserverRequest {
                    name: o1.into(),
                    reason: "No".into(),
                    etag: String::new(),
                    decision: String::new(),
                })
                .await
                .unwrap_err(),
        ),
        (
            "a host-country citizen",
            Code::FailedPrecondition,
            registrar
                .observers()
                .create_observer(pb::CreateObserverRequest {
                    parent: KZ.into(),
                    observer_id: "o-kz".into(),
                    observer: Some(observer("Askar", "Nurlanov", "KZ", "PD0000001")),
                    request_id: String::new(),
                })
                .await
                .unwrap_err(),
        ),
        (
            "a batch with one bad entry",
            Code::InvalidArgument,
            registrar
                .observers()
                .batch_create_observers(pb::BatchCreateObserversRequest {
                    parent: KZ.into(),
                    requests: vec![
                        pb::CreateObserverRequest {
                            observer_id: "fine".into(),
                            observer: Some(observer("Li", "Wei", "CN", "PD0000002")),
                            ..Default::default()
                        },
                        pb::CreateObserverRequest {
                            observer_id: "bad".into(),
                            observer: Some(observer("Li", "Na", "ZZ", "PD0000003")),
                            ..Default::default()
                        },
                    ],
                    request_id: String::new(),
                    validate_only: false,
                })
                .await
                .unwrap_err(),
        ),
        (
            "an organization still referenced",
            Code::FailedPrecondition,
            admin
                .organizations()
                .delete_organization(pb::DeleteOrganizationRequest {
                    name: "organizations/sco".into(),
                    etag: String::new(),
                })
                .await
                .unwrap_err(),
        ),
        (
            "rejecting an accredited observer",
            Code::FailedPrecondition,
            accreditor
                .observers()
                .reject_observer(pb::RejectObserverRequest {
                    name: o1.into(),
                    reason: "Too late".into(),
                    etag: String::new(),
                    decision: String::new(),
                })
                .await
                .unwrap_err(),
        ),
        (
            "undeleting a live observer",
            Code::AlreadyExists,
            admin
                .observers()
                .undelete_observer(pb::UndeleteObserverRequest {
                    name: o1.into(),
                    etag: String::new(),
                })
                .await
                .unwrap_err(),
        ),
        (
            "no credentials",
            Code::Unauthenticated,
            Client::from_channel(app.channel.clone(), None)
                .unwrap()
                .organizations()
                .delete_organization(pb::DeleteOrganizationRequest {
                    name: "organizations/sco".into(),
                    etag: String::new(),
                })
                .await
                .unwrap_err(),
        ),
    ];
    for (what, code, status) in &refusals {
        assert_eq!(status.code(), *code, "{what}: {status:?}");
    }
    assert_eq!(app.count("audit_events").await, count);

    // A dry run writes nothing either.
    registrar
        .observers()
        .batch_create_observers(pb::BatchCreateObserversRequest {
            parent: KZ.into(),
            requests: vec![pb::CreateObserverRequest {
                observer_id: "dry".into(),
                observer: Some(observer("Li", "Wei", "CN", "PD0000004")),
                ..Default::default()
            }],
            request_id: String::new(),
            validate_only: true,
        })
        .await
        .unwrap();
    assert_eq!(app.count("audit_events").await, count);
}

#[sqlx::test]
async fn only_administrators_read_the_audit_trail(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool, "audit-readers").await;
    registry(&app, &agencies).await;
    let list = |parent: &str| pb::ListAuditEventsRequest {
        parent: parent.to_owned(),
        ..Default::default()
    };
    for agency in [
        READER,
        PERSONAL_DATA_READER,
        REGISTRAR,
        ACCREDITOR,
        PROTOCOL,
        REGISTRAR_PD,
    ] {
        for parent in [KZ, ORGANIZATIONS, "elections/does-not-exist"] {
            let status = agencies
                .client(&app, agency)
                .audit()
                .list_audit_events(list(parent))
                .await
                .unwrap_err();
            assert_error(&status, Code::PermissionDenied, "PERMISSION_DENIED");
        }
    }
    for agency in [ADMIN, ADMIN_PD] {
        let audit = agencies.client(&app, agency).audit();
        let events = audit
            .clone()
            .list_audit_events(list(KZ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(events.audit_events.len(), 3, "{events:#?}");
        assert_eq!(events.total_size, 3);
        let status = audit
            .clone()
            .list_audit_events(list("elections/does-not-exist"))
            .await
            .unwrap_err();
        assert_error(&status, Code::NotFound, "NOT_FOUND");
        for parent in ["", "organizations/sco", "elections/kz-2023/observers/o-1"] {
            let status = audit
                .clone()
                .list_audit_events(list(parent))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{parent}: {status:?}");
        }
        let status = audit
            .clone()
            .list_audit_events(pb::ListAuditEventsRequest {
                filter: "before = \"x\"".into(),
                ..list(KZ)
            })
            .await
            .unwrap_err();
        assert_error(&status, Code::InvalidArgument, "INVALID_FILTER");
    }
}

#[sqlx::test]
async fn the_audit_trail_cannot_be_changed_or_deleted(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool.clone(), "audit-append-only").await;
    registry(&app, &agencies).await;
    let count = app.count("audit_events").await;
    assert_eq!(count, 4);
    let update = sqlx::query("UPDATE audit_events SET actor = 'someone-else'")
        .execute(&pool)
        .await;
    assert!(update.is_err(), "UPDATE succeeded: {update:?}");
    let delete = sqlx::query("DELETE FROM audit_events").execute(&pool).await;
    assert!(delete.is_err(), "DELETE succeeded: {delete:?}");
    let delete_one =
        sqlx::query("DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)")
            .execute(&pool)
            .await;
    assert!(delete_one.is_err(), "DELETE succeeded: {delete_one:?}");
    assert_eq!(app.count("audit_events").await, count);
    let actors: Vec<String> = sqlx::query_scalar("SELECT DISTINCT actor FROM audit_events")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(!actors.contains(&"someone-else".to_owned()));
}
