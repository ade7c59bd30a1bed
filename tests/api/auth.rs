//! Who may call what, end to end: bearer tokens and client certificates of the agencies file,
//! the role table for every RPC of the contract, permission before existence, personal data
//! masked for callers without `personal-data-reader` and kept out of the logs, reloading the
//! agencies file on SIGHUP, and a binary that refuses to serve anonymous callers on a public
//! address.

use crate::common::{self, agencies};

use std::time::{Duration, Instant};

use agencies::*;
use common::binary::*;
use common::tls::*;
use common::*;
use observer_registry::auth::{Access, Role, required_access};
use observer_registry::client::{AuthenticatedChannel, Client, ClientOptions};
use observer_registry::pb::v1 as pb;
use observer_registry::server::ServeOptions;
use prost::Message;
use rcgen::ExtendedKeyUsagePurpose;
use sqlx::PgPool;
use tokio_stream::StreamExt;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status};

const PACKAGE: &str = "observer_registry.v1";
const KZ: &str = "elections/kz-2023";
const DELEGATION: &str = "elections/kz-2023/delegations/sco";

// ---- the role table, for every RPC of the contract ----

/// One RPC of the contract, from the descriptors the server is built from.
struct Method {
    path: String,
    service: String,
    name: String,
    server_streaming: bool,
}

fn contract_methods() -> Vec<Method> {
    let set =
        prost_types::FileDescriptorSet::decode(observer_registry::pb::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == PACKAGE) {
        for service in &file.service {
            for method in &service.method {
                assert!(
                    !method.client_streaming(),
                    "{}/{} streams from the client; this test sends one message",
                    service.name(),
                    method.name()
                );
                methods.push(Method {
                    path: format!("/{PACKAGE}.{}/{}", service.name(), method.name()),
                    service: service.name().to_owned(),
                    name: method.name().to_owned(),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    assert!(methods.len() >= 40, "only {} methods found", methods.len());
    methods
}

/// The role API.md ("Who may call what") gives a method, derived from its name and service
/// independently of the server's table.
fn role_by_contract(service: &str, method: &str) -> Role {
    if method == "ListAuditEvents" || method.starts_with("Undelete") {
        return Role::Admin;
    }
    // "accreditor (accredit, reject, revoke, correct, badges)".
    if method == "GetObserverBadge" {
        return Role::Accreditor;
    }
    if method == "VerifyAccreditation" {
        return Role::Verifier;
    }
    if ["Get", "List", "Watch"]
        .iter()
        .any(|p| method.starts_with(p))
    {
        return Role::Reader;
    }
    match service {
        "ElectionService" | "OrganizationService" => Role::Admin,
        "MeetingService" | "InvitationService" => Role::Protocol,
        "ObserverService"
            if matches!(
                method,
                "AccreditObserver"
                    | "BatchAccreditObservers"
                    | "RejectObserver"
                    | "RevokeAccreditation"
                    | "CorrectObserver"
            ) =>
        {
            Role::Accreditor
        }
        "ObserverService" | "DelegationService" => Role::Registrar,
        _ => panic!("{service}/{method} is not in API.md's table"),
    }
}

/// Whether an agency with `roles` may call a method needing `needed`: `personal-data-reader`
/// also reads what `reader` reads.
/// `verifier` is granted by `reader` too ("role `verifier` (or `reader`)").
fn may_call(roles: &[Role], needed: Role) -> bool {
    let reads = roles.contains(&Role::Reader) || roles.contains(&Role::PersonalDataReader);
    roles.contains(&needed)
        || (needed == Role::Reader && roles.contains(&Role::PersonalDataReader))
        || (needed == Role::Verifier && reads)
}

/// Calls `path` with an empty message and, when given, this `authorization` value; the
/// answer's message is ignored.
async fn call_empty(
    channel: &Channel,
    path: &str,
    server_streaming: bool,
    authorization: Option<&str>,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
    let mut request = tonic::Request::new(());
    if let Some(value) = authorization {
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(value).expect("an ASCII header"),
        );
    }
    let path: PathAndQuery = path.parse().unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    if server_streaming {
        let mut stream = grpc
            .server_streaming(request, path, codec)
            .await?
            .into_inner();
        // An accepted watch may wait for changes: its first answer, if quick, is enough.
        match tokio::time::timeout(Duration::from_secs(1), stream.message()).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Ok(()),
        }
    } else {
        grpc.unary(request, path, codec).await.map(|_| ())
    }
}

fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| format!("{}/{}", info.domain, info.reason))
        .unwrap_or_else(|| "no ErrorInfo".to_owned())
}

/// Checks one answer against the expected refusal (`Some(code)`) or admission (`None`).
fn check(
    problems: &mut Vec<String>,
    what: &str,
    answer: Result<(), Status>,
    refusal: Option<Code>,
) {
    match (refusal, answer) {
        (Some(code), Err(status)) => {
            let want = match code {
                Code::Unauthenticated => "observer-registry/UNAUTHENTICATED",
                _ => "observer-registry/PERMISSION_DENIED",
            };
            if status.code() != code || reason(&status) != want {
                problems.push(format!(
                    "{what}: want {code:?} ({want}), got {:?} ({}) {:?}",
                    status.code(),
                    reason(&status),
                    status.message()
                ));
            }
        }
        (Some(code), Ok(())) => problems.push(format!("{what}: want {code:?}, got OK")),
        (None, Err(status))
            if matches!(
                status.code(),
                Code::Unauthenticated | Code::PermissionDenied
            ) =>
        {
            problems.push(format!(
                "{what}: should be admitted, got {:?} ({}) {:?}",
                status.code(),
                reason(&status),
                status.message()
            ));
        }
        (None, _) => {}
    }
}

#[sqlx::test]
async fn every_rpc_answers_each_caller_as_its_role_allows(pool: PgPool) {
    let agencies = Agencies::new(
        "every-rpc",
        [
            (READER, Role::Reader),
            (PERSONAL_DATA_READER, Role::PersonalDataReader),
            (REGISTRAR, Role::Registrar),
            (ACCREDITOR, Role::Accreditor),
            (PROTOCOL, Role::Protocol),
            (ADMIN, Role::Admin),
        ]
        .into_iter()
        .map(|(name, role)| Agency::with_token(name, &[role.as_str()]))
        .collect(),
    );
    let app = spawn_app_with_options(pool.clone(), pool, agencies.options()).await;
    let callers: Vec<(String, Vec<Role>)> = agencies
        .agencies
        .iter()
        .map(|a| {
            let roles = a.roles.iter().map(|r| Role::parse(r).unwrap()).collect();
            (format!("Bearer {}", a.token()), roles)
        })
        .collect();

    let mut problems = Vec::new();
    let methods = contract_methods();
    for method in &methods {
        let needed = match required_access(&method.path) {
            Some(Access::Role(role)) => role,
            // ListBadgeKeys: "no credentials needed".
            Some(Access::Public) => {
                let answer = call_empty(&app.channel, &method.path, false, None).await;
                check(&mut problems, &method.path, answer, None);
                continue;
            }
            None => panic!("{} is not in the role table", method.path),
        };
        assert_eq!(
            needed,
            role_by_contract(&method.service, &method.name),
            "{} needs another role than API.md gives it",
            method.path
        );
        let path = method.path.as_str();
        let streaming = method.server_streaming;
        for (what, authorization) in [
            ("no credentials", None),
            ("a wrong token", Some("Bearer not-a-token-of-any-agency")),
            ("a malformed authorization", Some("Basic abc")),
            ("an empty bearer token", Some("Bearer ")),
        ] {
            let answer = call_empty(&app.channel, path, streaming, authorization).await;
            check(
                &mut problems,
                &format!("{path} with {what}"),
                answer,
                Some(Code::Unauthenticated),
            );
        }
        for (agency, (authorization, roles)) in agencies.agencies.iter().zip(&callers) {
            let answer = call_empty(&app.channel, path, streaming, Some(authorization)).await;
            let refusal = (!may_call(roles, needed)).then_some(Code::PermissionDenied);
            check(
                &mut problems,
                &format!("{path} by {} (needs {needed})", agency.name),
                answer,
                refusal,
            );
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} methods answered wrongly:\n{}",
        problems.len(),
        methods.len(),
        problems.join("\n")
    );

    // A method that is not in the table is UNIMPLEMENTED to every caller, even an
    // administrator, as gRPC answers an unknown method.
    for path in [
        "/observer_registry.v1.ObserverService/DropTables",
        "/observer_registry.v1.SecretService/Get",
    ] {
        let status = call_empty(
            &app.channel,
            path,
            false,
            Some(&format!("Bearer {}", agencies.token(ADMIN))),
        )
        .await
        .unwrap_err();
        assert_error(&status, Code::Unimplemented, "UNIMPLEMENTED");
    }

    // Probes and grpcurl need no credentials.
    let health = app
        .health()
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, SERVING);
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut responses = ServerReflectionClient::new(app.channel.clone())
        .server_reflection_info(tokio_stream::once(
            tonic_reflection::pb::v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("not a service list");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "observer_registry.v1.ObserverService"),
        "{list:?}"
    );
}

#[sqlx::test]
async fn permission_is_checked_before_existence(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool, "before-existence").await;
    let delete = |name: &str| pb::DeleteElectionRequest {
        name: name.to_owned(),
        force: false,
        etag: String::new(),
    };
    let status = agencies
        .client(&app, READER)
        .elections()
        .delete_election(delete("elections/does-not-exist"))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    let status = Client::from_channel(app.channel.clone(), None)
        .unwrap()
        .elections()
        .delete_election(delete("elections/does-not-exist"))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");
    let status = agencies
        .client(&app, REGISTRAR)
        .observers()
        .accredit_observer(pb::AccreditObserverRequest {
            name: "elections/nowhere/observers/nobody".into(),
            etag: String::new(),
            decision: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    // Who may, learns that it does not exist.
    let status = agencies
        .client(&app, ADMIN)
        .elections()
        .delete_election(delete("elections/does-not-exist"))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
}

// ---- personal data ----

fn person(id: &str, given: &str, family: &str, citizenship: &str) -> pb::Observer {
    pb::Observer {
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        citizenship: citizenship.to_owned(),
        organization: "organizations/sco".to_owned(),
        delegation: DELEGATION.to_owned(),
        travel_document_number: format!("PD{:0>7}", id.to_uppercase().replace('-', "")),
        date_of_birth: "1971-02-03".to_owned(),
        email: format!("{id}@mail.example"),
        phone: "+7 701 555 0199".to_owned(),
        ..Default::default()
    }
}

fn observer_name(id: &str) -> String {
    format!("{KZ}/observers/{id}")
}

type Observers = pb::observer_service_client::ObserverServiceClient<AuthenticatedChannel>;

async fn get(client: &Observers, id: &str) -> pb::Observer {
    client
        .clone()
        .get_observer(pb::GetObserverRequest {
            name: observer_name(id),
        })
        .await
        .unwrap()
        .into_inner()
}

#[track_caller]
fn assert_masked(observer: &pb::Observer, what: &str) {
    assert_eq!(
        (
            observer.travel_document_number.as_str(),
            observer.date_of_birth.as_str(),
            observer.email.as_str(),
            observer.phone.as_str()
        ),
        ("", "", "", ""),
        "{what} shows personal data of {}",
        observer.name
    );
    assert!(
        !observer.family_name.is_empty(),
        "{what}: not an observer: {observer:?}"
    );
}

#[track_caller]
fn assert_personal_data(observer: &pb::Observer, what: &str) {
    let id = observer.name.rsplit('/').next().unwrap();
    let sent = person(id, "", "", "");
    assert_eq!(
        (
            observer.travel_document_number.as_str(),
            observer.date_of_birth.as_str(),
            observer.email.as_str(),
            observer.phone.as_str()
        ),
        (
            sent.travel_document_number.as_str(),
            sent.date_of_birth.as_str(),
            sent.email.as_str(),
            sent.phone.as_str()
        ),
        "{what} hides personal data of {}",
        observer.name
    );
}

fn create_request(id: &str, observer: pb::Observer, request_id: &str) -> pb::CreateObserverRequest {
    pb::CreateObserverRequest {
        parent: KZ.to_owned(),
        observer_id: id.to_owned(),
        observer: Some(observer),
        request_id: request_id.to_owned(),
    }
}

/// `elections/kz-2023` open for accreditation, `organizations/sco` and its delegation, made
/// by the administrator and the registrar.
async fn registry_of(app: &TestApp, agencies: &Agencies) {
    let admin = agencies.client(app, ADMIN);
    admin
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(pb::Election {
                accreditation_deadline: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 86_400,
                    nanos: 0,
                }),
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
    agencies
        .client(app, REGISTRAR)
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
}

#[sqlx::test]
async fn personal_data_is_shown_only_to_personal_data_readers_whatever_the_call(pool: PgPool) {
    let (app, agencies) = spawn_with_standard_agencies(pool, "masking").await;
    registry_of(&app, &agencies).await;
    let registrar = agencies.client(&app, REGISTRAR).observers();
    let registrar_pd = agencies.client(&app, REGISTRAR_PD).observers();
    let reader = agencies.client(&app, READER).observers();
    let pd_reader = agencies.client(&app, PERSONAL_DATA_READER).observers();
    let accreditor = agencies.client(&app, ACCREDITOR).observers();
    let accreditor_pd = agencies.client(&app, ACCREDITOR_PD).observers();
    let admin = agencies.client(&app, ADMIN).observers();
    let admin_pd = agencies.client(&app, ADMIN_PD).observers();

    // CreateObserver, also when a request is replayed.
    let first_request_id = new_request_id();
    let created = registrar
        .clone()
        .create_observer(create_request(
            "o-1",
            person("o-1", "Li", "Wei", "CN"),
            &first_request_id,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_masked(&created, "CreateObserver by a registrar");
    let request_id = new_request_id();
    let request = create_request("o-2", person("o-2", "Ivan", "Petrov", "RU"), &request_id);
    let created = registrar_pd
        .clone()
        .create_observer(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_personal_data(
        &created,
        "CreateObserver by a registrar reading personal data",
    );
    let replayed = registrar_pd
        .clone()
        .create_observer(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed, created);
    // Request ids are per agency: the same id from another agency is a create of its own,
    // never the answer to the first one (personal data included).
    let status = registrar
        .clone()
        .create_observer(request)
        .await
        .unwrap_err();
    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");
    let replayed = registrar
        .clone()
        .create_observer(create_request(
            "o-1",
            person("o-1", "Li", "Wei", "CN"),
            &first_request_id,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.name, observer_name("o-1"));
    assert_masked(&replayed, "a replayed CreateObserver by a registrar");

    // BatchCreateObservers.
    let batch = |ids: &[(&str, &str, &str, &str)]| pb::BatchCreateObserversRequest {
        parent: KZ.into(),
        requests: ids
            .iter()
            .map(|(id, given, family, country)| pb::CreateObserverRequest {
                parent: String::new(),
                ..create_request(id, person(id, given, family, country), "")
            })
            .collect(),
        request_id: new_request_id(),
        validate_only: false,
    };
    let observers = registrar
        .clone()
        .batch_create_observers(batch(&[
            ("b-1", "Aibek", "Asanov", "KG"),
            ("b-2", "Dilshod", "Karimov", "UZ"),
        ]))
        .await
        .unwrap()
        .into_inner()
        .observers;
    assert_eq!(observers.len(), 2);
    for observer in &observers {
        assert_masked(observer, "BatchCreateObservers by a registrar");
    }
    let observers = registrar_pd
        .clone()
        .batch_create_observers(batch(&[("b-3", "Rustam", "Nazarov", "TJ")]))
        .await
        .unwrap()
        .into_inner()
        .observers;
    assert_personal_data(&observers[0], "BatchCreateObservers by a registrar reading");

    // GetObserver and ListObservers: what was stored is all there, for who may see it.
    for id in ["o-1", "o-2", "b-1", "b-2", "b-3"] {
        assert_masked(&get(&reader, id).await, "GetObserver by a reader");
        assert_personal_data(
            &get(&pd_reader, id).await,
            "GetObserver by a personal-data reader",
        );
    }
    let list = |filter: &str| pb::ListObserversRequest {
        parent: KZ.into(),
        filter: filter.to_owned(),
        ..Default::default()
    };
    let listed = reader
        .clone()
        .list_observers(list(""))
        .await
        .unwrap()
        .into_inner()
        .observers;
    assert_eq!(listed.len(), 5);
    for observer in &listed {
        assert_masked(observer, "ListObservers by a reader");
    }
    let listed = pd_reader
        .clone()
        .list_observers(list(""))
        .await
        .unwrap()
        .into_inner()
        .observers;
    assert_eq!(listed.len(), 5);
    for observer in &listed {
        assert_personal_data(observer, "ListObservers by a personal-data reader");
    }
    // Pages are kept between calls (api::observers::read): the same page again, now kept,
    // is still masked per caller.
    let listed = reader
        .clone()
        .list_observers(list(""))
        .await
        .unwrap()
        .into_inner()
        .observers;
    assert_eq!(listed.len(), 5);
    for observer in &listed {
        assert_masked(observer, "ListObservers by a reader, of a kept page");
    }

    // Filters on personal data: refused to a reader, not a hint that the field exists.
    let document = person("b-2", "", "", "").travel_document_number;
    for filter in [
        format!("travel_document_number = {document:?}"),
        "email = \"b-2@mail.example\"".to_owned(),
        "date_of_birth < \"2000-01-01\"".to_owned(),
        format!(
            "family_name = \"Karimov\" AND phone = {:?}",
            "+7 701 555 0199"
        ),
    ] {
        let status = reader
            .clone()
            .list_observers(list(&filter))
            .await
            .unwrap_err();
        assert_error(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    }
    let status = reader
        .clone()
        .list_observers(list("shoe_size = 42"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let found = pd_reader
        .clone()
        .list_observers(list(&format!("travel_document_number = {document:?}")))
        .await
        .unwrap()
        .into_inner()
        .observers;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name, observer_name("b-2"));
    assert_personal_data(&found[0], "a ListObservers filtered on the travel document");
    let found = registrar_pd
        .clone()
        .list_observers(list("email = \"o-1@mail.example\""))
        .await
        .unwrap()
        .into_inner()
        .observers;
    assert_eq!(found.len(), 1, "{found:?}");

    // UpdateObserver.
    let update = |id: &str, region: &str| pb::UpdateObserverRequest {
        observer: Some(pb::Observer {
            name: observer_name(id),
            deployment_region: region.to_owned(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["deployment_region".into()],
        }),
    };
    let updated = registrar
        .clone()
        .update_observer(update("o-1", "Astana"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.deployment_region, "Astana");
    assert_masked(&updated, "UpdateObserver by a registrar");
    let updated = registrar_pd
        .clone()
        .update_observer(update("o-2", "Almaty"))
        .await
        .unwrap()
        .into_inner();
    assert_personal_data(
        &updated,
        "UpdateObserver by a registrar reading personal data",
    );

    // DeleteObserver and UndeleteObserver.
    let delete = |id: &str| pb::DeleteObserverRequest {
        name: observer_name(id),
        etag: String::new(),
    };
    let undelete = |id: &str| pb::UndeleteObserverRequest {
        name: observer_name(id),
        etag: String::new(),
    };
    let deleted = registrar
        .clone()
        .delete_observer(delete("o-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
    assert_masked(&deleted, "DeleteObserver by a registrar");
    let undeleted = admin
        .clone()
        .undelete_observer(undelete("o-1"))
        .await
        .unwrap()
        .into_inner();
    assert_masked(&undeleted, "UndeleteObserver by an administrator");
    let deleted = registrar_pd
        .clone()
        .delete_observer(delete("o-2"))
        .await
        .unwrap()
        .into_inner();
    assert_personal_data(
        &deleted,
        "DeleteObserver by a registrar reading personal data",
    );
    let undeleted = admin_pd
        .clone()
        .undelete_observer(undelete("o-2"))
        .await
        .unwrap()
        .into_inner();
    assert_personal_data(
        &undeleted,
        "UndeleteObserver by an administrator reading personal data",
    );

    // AccreditObserver, RejectObserver, RevokeAccreditation.
    let accredit = |id: &str| pb::AccreditObserverRequest {
        name: observer_name(id),
        etag: String::new(),
        decision: String::new(),
    };
    let reject = |id: &str| pb::RejectObserverRequest {
        name: observer_name(id),
        reason: "Incomplete application".into(),
        etag: String::new(),
        decision: String::new(),
    };
    let revoke = |id: &str| pb::RevokeAccreditationRequest {
        name: observer_name(id),
        reason: "Left the country".into(),
        etag: String::new(),
        decision: String::new(),
    };
    let accredited = accreditor
        .clone()
        .accredit_observer(accredit("o-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(!accredited.accreditation.as_ref().unwrap().number.is_empty());
    assert_masked(&accredited, "AccreditObserver by an accreditor");
    let accredited = accreditor_pd
        .clone()
        .accredit_observer(accredit("o-2"))
        .await
        .unwrap()
        .into_inner();
    assert_personal_data(&accredited, "AccreditObserver by an accreditor reading");
    let rejected = accreditor
        .clone()
        .reject_observer(reject("b-1"))
        .await
        .unwrap()
        .into_inner();
    assert_masked(&rejected, "RejectObserver by an accreditor");
    let rejected = accreditor_pd
        .clone()
        .reject_observer(reject("b-2"))
        .await
        .unwrap()
        .into_inner();
    assert_personal_data(&rejected, "RejectObserver by an accreditor reading");
    let revoked = accreditor
        .clone()
        .revoke_accreditation(revoke("o-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        revoked.accreditation.as_ref().unwrap().state(),
        pb::AccreditationState::Revoked
    );
    assert_masked(&revoked, "RevokeAccreditation by an accreditor");
    let revoked = accreditor_pd
        .clone()
        .revoke_accreditation(revoke("o-2"))
        .await
        .unwrap()
        .into_inner();
    assert_personal_data(&revoked, "RevokeAccreditation by an accreditor reading");

    // After all that, nothing was lost: masking is on the way out only.
    for id in ["o-1", "o-2", "b-1", "b-2", "b-3"] {
        assert_personal_data(&get(&pd_reader, id).await, "GetObserver at the end");
    }
}

// ---- mutual TLS ----

fn list_elections() -> pb::ListElectionsRequest {
    pb::ListElectionsRequest::default()
}

fn create_election_request(id: &str) -> pb::CreateElectionRequest {
    pb::CreateElectionRequest {
        election_id: id.to_owned(),
        election: Some(kz_election("Early parliamentary election")),
        request_id: String::new(),
    }
}

#[sqlx::test]
async fn agencies_are_known_by_their_client_certificates(pool: PgPool) {
    let ca = new_ca("Observer Registry test CA");
    let (server_cert, server_key) = leaf(
        &ca,
        "localhost",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let border = leaf(
        &ca,
        "border-service.gov.example",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let stranger = leaf(
        &ca,
        "stranger.example",
        &["stranger.example"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let rogue_ca = new_ca("Some other CA");
    let rogue = leaf(
        &rogue_ca,
        "border-service.gov.example",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );

    let agencies = Agencies::new(
        "mtls",
        vec![
            Agency::with_certificate("border-service", &["reader"], "border-service.gov.example"),
            Agency::with_token(ADMIN, &["admin"]),
            Agency::with_token(READER, &["reader"]),
        ],
    );
    let tls = TlsMaterial::new(&server_cert, &server_key, Some(&ca.pem));
    let options = ServeOptions {
        tls: Some(tls.server_tls()),
        ..agencies.options()
    };
    let (addr, _stop) = spawn_server(pool, options).await;
    let url = format!("https://127.0.0.1:{}", addr.port());
    let connect = |identity: Option<(Vec<u8>, Vec<u8>)>, token: Option<&str>| {
        let options = ClientOptions {
            token: token.map(str::to_owned),
            ca_certificate_pem: Some(ca.pem.clone().into_bytes()),
            client_identity_pem: identity,
            tls_domain_name: Some("localhost".into()),
            ..Default::default()
        };
        Client::connect(url.clone(), options)
    };

    // The border service's certificate: a reader, no more.
    let border_service = connect(Some(border.clone()), None).await.unwrap();
    border_service
        .elections()
        .list_elections(list_elections())
        .await
        .unwrap();
    let status = border_service
        .elections()
        .create_election(create_election_request("by-certificate"))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "PERMISSION_DENIED");

    // A certificate of a CA the server does not trust: the handshake is refused.
    match connect(Some(rogue), None).await {
        Err(_) => {}
        Ok(client) => {
            let answer = client.elections().list_elections(list_elections()).await;
            assert!(
                answer.is_err(),
                "a certificate of an unknown CA was accepted: {answer:?}"
            );
            let status = answer.unwrap_err();
            assert!(
                !matches!(status.code(), Code::Ok | Code::PermissionDenied),
                "{status:?}"
            );
        }
    }

    // A trusted certificate that names no agency.
    let status = connect(Some(stranger), None)
        .await
        .unwrap()
        .elections()
        .list_elections(list_elections())
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");

    // TLS without a client certificate: a token, or nothing.
    let status = connect(None, None)
        .await
        .unwrap()
        .elections()
        .list_elections(list_elections())
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");
    let admin = connect(None, Some(agencies.token(ADMIN))).await.unwrap();
    admin
        .elections()
        .create_election(create_election_request("by-token"))
        .await
        .unwrap();
    let reader = connect(None, Some(agencies.token(READER))).await.unwrap();
    let listed = reader
        .elections()
        .list_elections(list_elections())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.elections.len(), 1);
    let status = reader
        .elections()
        .create_election(create_election_request("by-reader"))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    // A token goes with the agency it belongs to, whatever certificate carries it.
    let border_with_admin_token = connect(Some(border), Some(agencies.token(ADMIN)))
        .await
        .unwrap();
    border_with_admin_token
        .elections()
        .create_election(create_election_request("by-token-over-certificate"))
        .await
        .unwrap();
}

// ---- the real binary ----

async fn list_with(channel: &Channel, token: &str) -> Result<(), Status> {
    Client::from_channel(channel.clone(), Some(token))
        .unwrap()
        .elections()
        .list_elections(list_elections())
        .await
        .map(|_| ())
}

#[sqlx::test]
async fn a_changed_agencies_file_is_reloaded_without_a_signal(pool: PgPool) {
    let a = Agency::with_token("agency-a", &["reader"]);
    let b = Agency::with_token("agency-b", &["reader"]);
    let file = TempFile::new("changed", "toml");
    file.write(render(std::slice::from_ref(&a)));
    let binary = Binary::start(
        &database_url(&pool),
        &[
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("IDENTITIES_FILE", file.path().to_str().unwrap()),
            ("IDENTITIES_RELOAD_INTERVAL", "100ms"),
        ],
    )
    .await;
    let channel = binary.channel().await;
    list_with(&channel, a.token()).await.unwrap();

    // What a Kubernetes Secret update does: the file changes, no signal comes. The server
    // notices a new modification time, so write until the file has one.
    let modified = || std::fs::metadata(file.path()).unwrap().modified().unwrap();
    let first = modified();
    wait_until(Duration::from_secs(5), "a new modification time", || {
        file.write(render(std::slice::from_ref(&b)));
        std::future::ready(modified() != first)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while list_with(&channel, b.token()).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the changed file was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_error(
        &list_with(&channel, a.token()).await.unwrap_err(),
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
}

#[sqlx::test]
async fn sighup_reloads_the_agencies_file_on_open_connections_and_keeps_it_when_broken(
    pool: PgPool,
) {
    let a = Agency::with_token("agency-a", &["reader"]);
    let b = Agency::with_token("agency-b", &["reader"]);
    let file = TempFile::new("sighup", "toml");
    file.write(render(std::slice::from_ref(&a)));
    let mut binary = Binary::start(
        &database_url(&pool),
        &[
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("IDENTITIES_FILE", file.path().to_str().unwrap()),
            // Only the signal may reload it within the test, not the file's poll.
            ("IDENTITIES_RELOAD_INTERVAL", "1h"),
        ],
    )
    .await;
    let channel = binary.channel().await;
    list_with(&channel, a.token()).await.unwrap();
    assert_error(
        &list_with(&channel, b.token()).await.unwrap_err(),
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );

    file.write(render(std::slice::from_ref(&b)));
    kill(&binary.child, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let by_b = list_with(&channel, b.token()).await;
        let by_a = list_with(&channel, a.token()).await;
        if by_b.is_ok()
            && by_a
                .as_ref()
                .is_err_and(|s| s.code() == Code::Unauthenticated)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reload did not take effect: B {by_b:?}, A {by_a:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_error(
        &list_with(&channel, a.token()).await.unwrap_err(),
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );

    // A broken file is logged and changes nothing.
    file.write("[[agencies]]\nname = \"agency-a\"\nroles = [\"reader\"\n");
    kill(&binary.child, "-HUP");
    let refused = wait_for_log(
        &mut binary.logs,
        "agencies file not reloaded; the previous one stays in force",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(refused["level"], "ERROR", "{refused}");
    list_with(&channel, b.token()).await.unwrap();
    assert_error(
        &list_with(&channel, a.token()).await.unwrap_err(),
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    // A file that names an unknown role is refused too.
    let mut with_typo = Agency::with_token("agency-a", &["reader"]);
    with_typo.roles = vec!["raeder".into()];
    file.write(render(&[with_typo.clone(), b.clone()]));
    kill(&binary.child, "-HUP");
    wait_for_log(
        &mut binary.logs,
        "agencies file not reloaded; the previous one stays in force",
        Duration::from_secs(10),
    )
    .await;
    list_with(&channel, b.token()).await.unwrap();
    assert_error(
        &list_with(&channel, with_typo.token()).await.unwrap_err(),
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    binary.stop().await;
}

#[sqlx::test]
async fn a_public_address_without_agencies_is_refused_unless_anonymous_callers_are_allowed(
    pool: PgPool,
) {
    let url = database_url(&pool);
    let started = Instant::now();
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        command(&url, &[("LISTEN_ADDR", "0.0.0.0:0")]).output(),
    )
    .await
    .expect("the binary did not exit")
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?} to refuse",
        started.elapsed()
    );
    assert!(!output.status.success(), "exit status {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let explaining: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("--identities") && line.contains("--allow-anonymous"))
        .collect();
    assert_eq!(explaining.len(), 1, "stderr:\n{stderr}");
    let mentioned: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("--identities") || line.contains("--allow-anonymous"))
        .collect();
    assert_eq!(mentioned, explaining, "stderr:\n{stderr}");
    assert!(
        !stderr.contains("serving gRPC"),
        "it served anyway:\n{stderr}"
    );

    // The operator asked for it: anyone may call, with every role.
    let binary = Binary::start(
        &url,
        &[("LISTEN_ADDR", "0.0.0.0:0"), ("ALLOW_ANONYMOUS", "true")],
    )
    .await;
    let channel = binary.channel().await;
    Client::from_channel(channel, None)
        .unwrap()
        .elections()
        .create_election(create_election_request("kz-2023"))
        .await
        .unwrap();
    binary.stop().await;
}

#[sqlx::test]
async fn loopback_without_agencies_serves_anonymous_callers(pool: PgPool) {
    let binary = Binary::start(&database_url(&pool), &[("LISTEN_ADDR", "127.0.0.1:0")]).await;
    assert!(binary.address.ip().is_loopback());
    let anonymous = Client::from_channel(binary.channel().await, None).unwrap();
    anonymous
        .elections()
        .create_election(create_election_request("kz-2023"))
        .await
        .unwrap();
    let listed = anonymous
        .elections()
        .list_elections(list_elections())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.elections.len(), 1);
    let events = anonymous
        .audit()
        .list_audit_events(pb::ListAuditEventsRequest {
            parent: KZ.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, "anonymous");
    binary.stop().await;
}

#[sqlx::test]
async fn personal_data_stays_out_of_the_logs_even_at_debug_level(pool: PgPool) {
    // Values found nowhere else, so that any trace of them in a log line is a leak.
    const SECRETS: &[&str] = &[
        "LOGDOC58213",
        "LOGDOC77120",
        "1966-07-21",
        "1959-11-30",
        "log.secret.one@mail.example",
        "log.secret.two@mail.example",
        "log.secret.new@mail.example",
        "log.secret.",
        "+7 701 555 3141",
        "555 3141",
        "+7 701 555 2718",
        "555 2718",
        "+86 10 5555 1618",
        "5555 1618",
    ];
    let mut binary = Binary::start(
        &database_url(&pool),
        &[("LISTEN_ADDR", "127.0.0.1:0"), ("RUST_LOG", "debug")],
    )
    .await;
    let client = Client::from_channel(binary.channel().await, None).unwrap();
    client
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
    client
        .elections()
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(pb::Election {
                accreditation_deadline: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 86_400,
                    nanos: 0,
                }),
                ..kz_election("Early parliamentary election")
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let secret_observer = |document: &str, birth: &str, email: &str, phone: &str| pb::Observer {
        given_name: "Aigerim".into(),
        family_name: "Logged".into(),
        citizenship: "CN".into(),
        organization: "organizations/sco".into(),
        travel_document_number: document.into(),
        date_of_birth: birth.into(),
        email: email.into(),
        phone: phone.into(),
        ..Default::default()
    };
    let mut observers = client.observers();
    let one = secret_observer(
        "LOGDOC58213",
        "1966-07-21",
        "log.secret.one@mail.example",
        "+7 701 555 3141",
    );
    observers
        .create_observer(create_request("one", one.clone(), &new_request_id()))
        .await
        .unwrap();
    // The same person again is refused: the refusal must not log the document either.
    let again = observers
        .create_observer(create_request("again", one, ""))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    observers
        .batch_create_observers(pb::BatchCreateObserversRequest {
            parent: KZ.into(),
            requests: vec![create_request(
                "two",
                secret_observer(
                    "LOGDOC77120",
                    "1959-11-30",
                    "log.secret.two@mail.example",
                    "+7 701 555 2718",
                ),
                "",
            )],
            ..Default::default()
        })
        .await
        .unwrap();
    observers
        .update_observer(pb::UpdateObserverRequest {
            observer: Some(pb::Observer {
                name: observer_name("one"),
                email: "log.secret.new@mail.example".into(),
                phone: "+86 10 5555 1618".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["email".into(), "phone".into()],
            }),
        })
        .await
        .unwrap();
    let listed = observers
        .list_observers(pb::ListObserversRequest {
            parent: KZ.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.observers.len(), 2);
    let one = observers
        .get_observer(pb::GetObserverRequest {
            name: observer_name("one"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.email, "log.secret.new@mail.example");

    // Every line it logged, up to its exit.
    kill(&binary.child, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), binary.child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut logs = Vec::new();
    while let Some(log) = tokio::time::timeout(Duration::from_secs(5), binary.logs.recv())
        .await
        .expect("the log did not end with the binary")
    {
        logs.push(log.to_string());
    }
    assert!(
        logs.iter().any(|line| line.contains("\"level\":\"DEBUG\"")),
        "no debug line logged: the test would see nothing:\n{}",
        logs.join("\n")
    );
    assert!(
        logs.iter().any(|line| line.contains("observer registered")),
        "the calls were not logged:\n{}",
        logs.join("\n")
    );
    for line in &logs {
        let lowercase = line.to_lowercase();
        for secret in SECRETS {
            assert!(
                !lowercase.contains(&secret.to_lowercase()),
                "{secret} is in the log: {line}"
            );
        }
    }
}
