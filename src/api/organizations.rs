//! OrganizationService. Each call parses the request, loads what its rules need, stores,
//! audits and encodes; organizations are shared by all elections.

pub mod convert;

use tonic::{Request, Response, Status};

use crate::aip::field_mask;
use crate::aip::paging::{ListRequest, Page};
use crate::aip::{etag, request_id};
use crate::api::skeleton::{self, Creation, entry_changed, entry_removed};
use crate::api::{AppState, total_size};
use crate::auth::Caller;
use crate::domain::names;
use crate::domain::organization::OrganizationFields;
use crate::error::{Error, Reason, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::organization_service_server::OrganizationService;
use crate::store;
use convert::{OUTPUT_ONLY, OrganizationField, parse_fields, parse_name, to_proto};

const CREATE_METHOD: &str = "/observer_registry.v1.OrganizationService/CreateOrganization";

/// The OrganizationService implementation.
#[derive(Debug, Clone)]
pub struct OrganizationApi {
    state: AppState,
}

impl OrganizationApi {
    pub fn new(state: AppState) -> Self {
        OrganizationApi { state }
    }

    async fn create(
        &self,
        caller: &Caller,
        request: pb::CreateOrganizationRequest,
    ) -> Result<pb::Organization> {
        let key = request_id::key(caller, &request.request_id, CREATE_METHOD, &request)?;
        let (id, fields) = parse_create(&request)?;
        let creation = Creation {
            key: key.as_ref(),
            election_id: None,
            request_id: &request.request_id,
        };
        let (id, fields) = (id.as_str(), &fields);
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    skeleton::create_once(tx, caller, creation, |tx| {
                        Box::pin(async move {
                            let organization = store::organizations::insert(tx, id, fields).await?;
                            let organization_ = organization.name().to_string();
                            tx.after_commit(move || tracing::info!(organization = %organization_, "organization created"));
                            Ok(to_proto(&organization))
                        })
                    })
                    .await
                })
            })
            .await
    }

    async fn get(&self, request: pb::GetOrganizationRequest) -> Result<pb::Organization> {
        let id = parse_name(&request.name, "name")?;
        let mut conn = self.state.db.read().await?;
        let organization = store::organizations::get(&mut conn, id, false)
            .await?
            .ok_or_else(|| Error::not_found(&request.name))?;
        Ok(to_proto(&organization))
    }

    async fn list(
        &self,
        request: pb::ListOrganizationsRequest,
    ) -> Result<pb::ListOrganizationsResponse> {
        let query = self.state.page_tokens.prepare(
            &store::organizations::LIST_SPEC,
            &ListRequest {
                page_size: request.page_size,
                page_token: &request.page_token,
                filter: &request.filter,
                order_by: &request.order_by,
                ..Default::default()
            },
        )?;
        let mut conn = self.state.db.read().await?;
        let (rows, total) = store::organizations::list(&mut conn, &query).await?;
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListOrganizationsResponse {
            organizations: page.items.iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
            total_size: total_size(page.total_size),
        })
    }

    async fn update(
        &self,
        caller: &Caller,
        request: pb::UpdateOrganizationRequest,
    ) -> Result<pb::Organization> {
        let changes = request
            .organization
            .ok_or_else(|| Error::invalid("organization", "is required"))?;
        let id = parse_name(&changes.name, "organization.name")?;
        let masked: Vec<OrganizationField> =
            field_mask::resolve_fields(request.update_mask.as_ref(), OUTPUT_ONLY)?;
        let (changes, masked) = (&changes, masked.as_slice());
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = store::organizations::get(tx, id, true)
                        .await?
                        .ok_or_else(|| Error::not_found(&changes.name))?;
                    etag::check(&changes.etag, current.etag, &changes.name)?;
                    let fields = convert::merge(&current, changes, masked)?;
                    let updated = to_proto(&store::organizations::update(tx, id, &fields).await?);
                    entry_changed(None, &to_proto(&current), &updated)
                        .record(tx, caller)
                        .await?;
                    let (organization_, fields_) = (updated.name.to_string(), format!("{:?}", masked));
                    tx.after_commit(move || tracing::info!(organization = %organization_, fields = %fields_, "organization updated"));
                    Ok(updated)
                })
            })
            .await
    }

    async fn delete(&self, caller: &Caller, request: pb::DeleteOrganizationRequest) -> Result<()> {
        let id = parse_name(&request.name, "name")?;
        let request = &request;
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    let current = store::organizations::get(tx, id, true)
                        .await?
                        .ok_or_else(|| Error::not_found(&request.name))?;
                    etag::check(&request.etag, current.etag, &request.name)?;
                    if store::organizations::is_referenced(tx, id).await? {
                        return Err(Error::precondition(
                            Reason::HasChildren,
                            format!(
                                "{} is referenced by delegations or observers (also deleted ones)",
                                request.name
                            ),
                        )
                        .with_metadata("resource", &request.name));
                    }
                    store::organizations::delete(tx, id).await?;
                    entry_removed(None, &to_proto(&current))
                        .record(tx, caller)
                        .await?;
                    let organization_ = request.name.to_string();
                    tx.after_commit(move || tracing::info!(organization = %organization_, "organization deleted"));
                    Ok(())
                })
            })
            .await
    }
}

/// The id and fields of a create, every bad field named at once.
fn parse_create(request: &pb::CreateOrganizationRequest) -> Result<(String, OrganizationFields)> {
    let mut violations = Violations::new();
    let id = violations.check(
        "organization_id",
        names::resource_id_or_generated(&request.organization_id),
    );
    let fields = match &request.organization {
        Some(organization) => parse_fields(organization, &mut violations),
        None => {
            violations.add("organization", "is required");
            None
        }
    };
    violations.finish()?;
    match (id, fields) {
        (Some(id), Some(fields)) => Ok((id, fields)),
        _ => Err(Error::internal(anyhow::anyhow!(
            "validation passed without values"
        ))),
    }
}

#[tonic::async_trait]
impl OrganizationService for OrganizationApi {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        Ok(Response::new(
            self.create(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        Ok(Response::new(self.get(request.into_inner()).await?))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        Ok(Response::new(
            self.update(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn delete_organization(
        &self,
        request: Request<pb::DeleteOrganizationRequest>,
    ) -> Result<Response<()>, Status> {
        self.delete(&Caller::of(&request), request.into_inner())
            .await?;
        Ok(Response::new(()))
    }
}
