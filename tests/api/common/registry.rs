//! Fixtures shared by the delegation and observer tests: the sending organizations of the
//! Astana 2023 story, elections, delegations, observers and one-line calls.
#![allow(dead_code)]

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use observer_registry::pb::v1 as pb;
use pb::AccreditationState as State;
use pb::OrganizationKind as Kind;
use prost_types::{FieldMask, Timestamp};
use tonic::Status;

use crate::common::*;

/// The election of the story: early parliamentary elections, Kazakhstan, 19 March 2023.
pub const KZ: &str = "elections/kz-2023";

pub fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

pub fn instant(timestamp: Option<&Timestamp>) -> DateTime<Utc> {
    let timestamp = timestamp.expect("a timestamp");
    DateTime::from_timestamp(timestamp.seconds, timestamp.nanos as u32).unwrap()
}

pub fn rfc3339(timestamp: Option<&Timestamp>) -> String {
    instant(timestamp).to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().unwrap()
}

/// The last segment of a resource name.
pub fn id(name: &str) -> &str {
    name.rsplit('/').next().unwrap()
}

// ---- organizations ----

pub async fn create_organization(
    app: &TestApp,
    id: &str,
    display_name: &str,
    kind: Kind,
    country: &str,
) -> pb::Organization {
    app.organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: id.to_owned(),
            organization: Some(pb::Organization {
                display_name: display_name.to_owned(),
                kind: kind.into(),
                country: country.to_owned(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// `sco`, `cis-ipa`, `cec-az` and `cec-tj`.
pub async fn create_organizations(app: &TestApp) {
    create_organization(
        app,
        "sco",
        "Shanghai Cooperation Organization",
        Kind::InternationalOrganization,
        "",
    )
    .await;
    create_organization(
        app,
        "cis-ipa",
        "Interparliamentary Assembly of the CIS",
        Kind::ParliamentaryAssembly,
        "",
    )
    .await;
    create_organization(
        app,
        "cec-az",
        "Central Election Commission of Azerbaijan",
        Kind::ForeignElectionBody,
        "AZ",
    )
    .await;
    create_organization(
        app,
        "cec-tj",
        "Central Commission for Elections and Referenda of Tajikistan",
        Kind::ForeignElectionBody,
        "TJ",
    )
    .await;
}

/// `organizations/{id}`, an international organization, made through `admin` (a client
/// with credentials).
pub async fn create_organization_as(
    admin: &observer_registry::client::Client,
    id: &str,
    display_name: &str,
) {
    admin
        .organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: id.into(),
            organization: Some(pb::Organization {
                display_name: display_name.into(),
                kind: Kind::InternationalOrganization.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
}

/// kz-2023 named `display_name`, accreditation open, made through `admin`.
pub async fn create_open_kz_election_as(
    admin: &observer_registry::client::Client,
    display_name: &str,
) {
    admin
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(pb::Election {
                accreditation_deadline: Some(timestamp(Utc::now() + Duration::days(1))),
                ..kz_election(display_name)
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
}

pub async fn delete_organization(app: &TestApp, id: &str) -> Result<(), Status> {
    app.organizations()
        .delete_organization(pb::DeleteOrganizationRequest {
            name: format!("organizations/{id}"),
            etag: String::new(),
        })
        .await
        .map(|_| ())
}

// ---- elections ----

/// An election in Kazakhstan voting on 2023-03-19 with this accreditation deadline (None:
/// the start of voting day).
pub async fn create_kz_election(
    app: &TestApp,
    id: &str,
    deadline: Option<DateTime<Utc>>,
) -> pb::Election {
    app.elections()
        .create_election(pb::CreateElectionRequest {
            election_id: id.to_owned(),
            election: Some(pb::Election {
                accreditation_deadline: deadline.map(timestamp),
                ..kz_election("Early parliamentary election")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// `elections/{id}` whose accreditation is open for the system clock (the deadline is a day
/// from now: the records of a past election being loaded), with the four organizations of
/// [`create_organizations`].
pub async fn open_election(app: &TestApp, id: &str) -> pb::Election {
    create_organizations(app).await;
    create_kz_election(app, id, Some(Utc::now() + Duration::days(1))).await
}

pub async fn delete_election(app: &TestApp, name: &str, force: bool) -> Result<(), Status> {
    app.elections()
        .delete_election(pb::DeleteElectionRequest {
            name: name.to_owned(),
            force,
            etag: String::new(),
        })
        .await
        .map(|_| ())
}

// ---- delegations ----

pub fn delegation(display_name: &str, organization_id: &str) -> pb::Delegation {
    pb::Delegation {
        display_name: display_name.to_owned(),
        organization: format!("organizations/{organization_id}"),
        ..Default::default()
    }
}

pub async fn try_create_delegation(
    app: &TestApp,
    parent: &str,
    id: &str,
    delegation: pb::Delegation,
) -> Result<pb::Delegation, Status> {
    app.delegations()
        .create_delegation(pb::CreateDelegationRequest {
            parent: parent.to_owned(),
            delegation_id: id.to_owned(),
            delegation: Some(delegation),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn create_delegation(
    app: &TestApp,
    parent: &str,
    id: &str,
    delegation: pb::Delegation,
) -> pb::Delegation {
    try_create_delegation(app, parent, id, delegation)
        .await
        .unwrap()
}

pub async fn get_delegation(app: &TestApp, name: &str) -> pb::Delegation {
    app.delegations()
        .get_delegation(pb::GetDelegationRequest {
            name: name.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn update_delegation(
    app: &TestApp,
    delegation: pb::Delegation,
    paths: &[&str],
) -> Result<pb::Delegation, Status> {
    app.delegations()
        .update_delegation(pb::UpdateDelegationRequest {
            delegation: Some(delegation),
            update_mask: mask(paths),
        })
        .await
        .map(|r| r.into_inner())
}

/// Sets (or with "" clears) the head of a delegation.
pub async fn set_head(
    app: &TestApp,
    delegation: &str,
    head: &str,
) -> Result<pb::Delegation, Status> {
    update_delegation(
        app,
        pb::Delegation {
            name: delegation.to_owned(),
            head: head.to_owned(),
            ..Default::default()
        },
        &["head"],
    )
    .await
}

pub async fn delete_delegation(
    app: &TestApp,
    name: &str,
    etag: &str,
) -> Result<pb::Delegation, Status> {
    app.delegations()
        .delete_delegation(pb::DeleteDelegationRequest {
            name: name.to_owned(),
            etag: etag.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn undelete_delegation(
    app: &TestApp,
    name: &str,
    etag: &str,
) -> Result<pb::Delegation, Status> {
    app.delegations()
        .undelete_delegation(pb::UndeleteDelegationRequest {
            name: name.to_owned(),
            etag: etag.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn member_count(app: &TestApp, delegation: &str) -> i32 {
    get_delegation(app, delegation).await.member_count
}

// ---- observers ----

pub fn observer(
    given_name: &str,
    family_name: &str,
    citizenship: &str,
    organization_id: &str,
    travel_document_number: &str,
) -> pb::Observer {
    pb::Observer {
        given_name: given_name.to_owned(),
        family_name: family_name.to_owned(),
        citizenship: citizenship.to_owned(),
        organization: format!("organizations/{organization_id}"),
        travel_document_number: travel_document_number.to_owned(),
        ..Default::default()
    }
}

/// The same observer as a member of `delegation` (a full name).
pub fn member(observer: pb::Observer, delegation: &str) -> pb::Observer {
    pb::Observer {
        delegation: delegation.to_owned(),
        ..observer
    }
}

pub fn create_observer_request(
    parent: &str,
    id: &str,
    observer: pb::Observer,
) -> pb::CreateObserverRequest {
    pb::CreateObserverRequest {
        parent: parent.to_owned(),
        observer_id: id.to_owned(),
        observer: Some(observer),
        request_id: String::new(),
    }
}

pub async fn try_create_observer(
    app: &TestApp,
    parent: &str,
    id: &str,
    observer: pb::Observer,
) -> Result<pb::Observer, Status> {
    app.observers()
        .create_observer(create_observer_request(parent, id, observer))
        .await
        .map(|r| r.into_inner())
}

pub async fn create_observer(
    app: &TestApp,
    parent: &str,
    id: &str,
    observer: pb::Observer,
) -> pb::Observer {
    try_create_observer(app, parent, id, observer)
        .await
        .unwrap()
}

pub async fn batch_create(
    app: &TestApp,
    parent: &str,
    requests: Vec<pb::CreateObserverRequest>,
    request_id: &str,
) -> Result<Vec<pb::Observer>, Status> {
    app.observers()
        .batch_create_observers(pb::BatchCreateObserversRequest {
            parent: parent.to_owned(),
            requests,
            request_id: request_id.to_owned(),
            validate_only: false,
        })
        .await
        .map(|r| r.into_inner().observers)
}

/// `count` distinct people sent by `sco` (citizenships cycling through SCO members other
/// than Kazakhstan), ids `{prefix}-{i}`, as batch entries with an empty `parent`.
pub fn sco_people(prefix: &str, count: usize, delegation: &str) -> Vec<pb::CreateObserverRequest> {
    const CITIZENSHIPS: [&str; 6] = ["CN", "RU", "KG", "TJ", "UZ", "IN"];
    (0..count)
        .map(|i| {
            let observer = pb::Observer {
                delegation: delegation.to_owned(),
                ..observer(
                    &format!("Given{i}"),
                    &format!("Family{i:04}"),
                    CITIZENSHIPS[i % CITIZENSHIPS.len()],
                    "sco",
                    &format!("{}{i:07}", prefix.to_uppercase().replace('-', "")),
                )
            };
            create_observer_request("", &format!("{prefix}-{i}"), observer)
        })
        .collect()
}

pub async fn try_get_observer(app: &TestApp, name: &str) -> Result<pb::Observer, Status> {
    app.observers()
        .get_observer(pb::GetObserverRequest {
            name: name.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn get_observer(app: &TestApp, name: &str) -> pb::Observer {
    try_get_observer(app, name).await.unwrap()
}

pub async fn update_observer(
    app: &TestApp,
    observer: pb::Observer,
    paths: &[&str],
) -> Result<pb::Observer, Status> {
    app.observers()
        .update_observer(pb::UpdateObserverRequest {
            observer: Some(observer),
            update_mask: mask(paths),
        })
        .await
        .map(|r| r.into_inner())
}

/// Moves an observer to `delegation` (a full name, or "" to leave every delegation).
pub async fn move_to(
    app: &TestApp,
    observer: &str,
    delegation: &str,
) -> Result<pb::Observer, Status> {
    update_observer(
        app,
        pb::Observer {
            name: observer.to_owned(),
            delegation: delegation.to_owned(),
            ..Default::default()
        },
        &["delegation"],
    )
    .await
}

pub async fn delete_observer(
    app: &TestApp,
    name: &str,
    etag: &str,
) -> Result<pb::Observer, Status> {
    app.observers()
        .delete_observer(pb::DeleteObserverRequest {
            name: name.to_owned(),
            etag: etag.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn undelete_observer(
    app: &TestApp,
    name: &str,
    etag: &str,
) -> Result<pb::Observer, Status> {
    app.observers()
        .undelete_observer(pb::UndeleteObserverRequest {
            name: name.to_owned(),
            etag: etag.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn accredit(app: &TestApp, name: &str) -> Result<pb::Observer, Status> {
    app.observers()
        .accredit_observer(pb::AccreditObserverRequest {
            name: name.to_owned(),
            etag: String::new(),
            decision: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn reject(app: &TestApp, name: &str, reason: &str) -> Result<pb::Observer, Status> {
    app.observers()
        .reject_observer(pb::RejectObserverRequest {
            name: name.to_owned(),
            reason: reason.to_owned(),
            etag: String::new(),
            decision: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn revoke(app: &TestApp, name: &str, reason: &str) -> Result<pb::Observer, Status> {
    app.observers()
        .revoke_accreditation(pb::RevokeAccreditationRequest {
            name: name.to_owned(),
            reason: reason.to_owned(),
            etag: String::new(),
            decision: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub fn accreditation(observer: &pb::Observer) -> &pb::Accreditation {
    observer
        .accreditation
        .as_ref()
        .unwrap_or_else(|| panic!("no accreditation in {observer:?}"))
}

pub fn state(observer: &pb::Observer) -> State {
    accreditation(observer).state()
}

pub fn number(observer: &pb::Observer) -> &str {
    &accreditation(observer).number
}

pub async fn list_observers(
    app: &TestApp,
    request: pb::ListObserversRequest,
) -> Result<pb::ListObserversResponse, Status> {
    app.observers()
        .list_observers(request)
        .await
        .map(|r| r.into_inner())
}

/// The ids of the observers of `parent` matching `filter`, in `order_by` order (one page of
/// up to 1000), checking that `total_size` agrees.
pub async fn observer_ids(
    app: &TestApp,
    parent: &str,
    filter: &str,
    order_by: &str,
) -> Vec<String> {
    let page = list_observers(
        app,
        pb::ListObserversRequest {
            parent: parent.to_owned(),
            page_size: 1000,
            filter: filter.to_owned(),
            order_by: order_by.to_owned(),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("listing with filter {filter:?}: {e:?}"));
    assert_eq!(
        page.total_size as usize,
        page.observers.len(),
        "total_size of {filter:?}"
    );
    assert!(page.next_page_token.is_empty());
    page.observers
        .iter()
        .map(|o| id(&o.name).to_owned())
        .collect()
}

pub async fn list_delegations(
    app: &TestApp,
    request: pb::ListDelegationsRequest,
) -> Result<pb::ListDelegationsResponse, Status> {
    app.delegations()
        .list_delegations(request)
        .await
        .map(|r| r.into_inner())
}

/// The ids of the delegations of `parent` matching `filter`.
pub async fn delegation_ids(
    app: &TestApp,
    parent: &str,
    filter: &str,
    show_deleted: bool,
) -> Vec<String> {
    let page = list_delegations(
        app,
        pb::ListDelegationsRequest {
            parent: parent.to_owned(),
            page_size: 1000,
            filter: filter.to_owned(),
            show_deleted,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total_size as usize, page.delegations.len());
    page.delegations
        .iter()
        .map(|d| id(&d.name).to_owned())
        .collect()
}

pub fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

pub fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}
