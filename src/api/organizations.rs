//! OrganizationService.

use tonic::{Request, Response, Status};

use crate::aip::field_mask::{self, MaskSpec};
use crate::aip::paging::{ListRequest, Page};
use crate::aip::{etag, request_id};
use crate::api::audit;
use crate::api::{AppState, check_text, to_timestamp};
use crate::auth::Caller;
use crate::domain::country::CountryCode;
use crate::domain::names;
use crate::domain::organization::{Organization, OrganizationFields, OrganizationKind};
use crate::error::{Error, Reason, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::organization_service_server::OrganizationService;
use crate::store::{self, request_ids};

const CREATE_METHOD: &str = "/observer_registry.v1.OrganizationService/CreateOrganization";

const MASK: MaskSpec = MaskSpec {
    updatable: &["display_name", "abbreviation", "kind", "country"],
    output_only: &["name", "create_time", "update_time", "etag"],
};

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
        let key = request_id::key(&request.request_id, CREATE_METHOD, &request)?;
        let mut violations = Violations::new();
        let id = violations.check(
            "organization_id",
            names::resource_id_or_generated(&request.organization_id),
        );
        let fields = match &request.organization {
            Some(organization) => validate(organization, &mut violations),
            None => {
                violations.add("organization", "is required");
                None
            }
        };
        violations.finish()?;
        let (Some(id), Some(fields)) = (id, fields) else {
            return Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            )));
        };

        crate::transaction!(self.state.db, |tx| {
            if let Some(first) =
                request_ids::claim::<pb::Organization>(&mut tx, key.as_ref()).await?
            {
                return Ok(first);
            }
            let organization =
                to_proto(&store::organizations::insert(&mut tx, &id, &fields).await?);
            request_ids::record(&mut tx, key.as_ref(), &organization).await?;
            let after = audit::json("Organization", &organization);
            audit::record(
                &mut tx,
                caller,
                None,
                &organization.name,
                &request.request_id,
                None,
                Some(after),
            )
            .await?;
            tracing::info!(organization = %organization.name, "organization created");
            Ok(organization)
        })
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
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
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
        let mask = field_mask::resolve(request.update_mask.as_ref(), &MASK)?;

        crate::transaction!(self.state.db, |tx| {
            let current = store::organizations::get(&mut tx, id, true)
                .await?
                .ok_or_else(|| Error::not_found(&changes.name))?;
            etag::check(&changes.etag, current.etag, &changes.name)?;
            let mut merged = to_proto(&current);
            for field in mask.fields() {
                match *field {
                    "display_name" => merged.display_name = changes.display_name.clone(),
                    "abbreviation" => merged.abbreviation = changes.abbreviation.clone(),
                    "kind" => merged.kind = changes.kind,
                    "country" => merged.country = changes.country.clone(),
                    _ => {}
                }
            }
            let mut violations = Violations::new();
            let fields = validate(&merged, &mut violations);
            violations.finish()?;
            let Some(fields) = fields else {
                return Err(Error::internal(anyhow::anyhow!(
                    "validation passed without values"
                )));
            };
            let organization = store::organizations::update(&mut tx, id, &fields).await?;
            let before = audit::json("Organization", &to_proto(&current));
            let after = audit::json("Organization", &to_proto(&organization));
            audit::record(
                &mut tx,
                caller,
                None,
                &changes.name,
                "",
                Some(before),
                Some(after),
            )
            .await?;
            tracing::info!(organization = %changes.name, fields = ?mask.fields(), "organization updated");
            Ok(to_proto(&organization))
        })
    }

    async fn delete(&self, caller: &Caller, request: pb::DeleteOrganizationRequest) -> Result<()> {
        let id = parse_name(&request.name, "name")?;
        crate::transaction!(self.state.db, |tx| {
            let current = store::organizations::get(&mut tx, id, true)
                .await?
                .ok_or_else(|| Error::not_found(&request.name))?;
            etag::check(&request.etag, current.etag, &request.name)?;
            if store::organizations::is_referenced(&mut tx, id).await? {
                return Err(Error::precondition(
                    Reason::HasChildren,
                    format!(
                        "{} is referenced by delegations or observers (also deleted ones)",
                        request.name
                    ),
                )
                .with_metadata("resource", &request.name));
            }
            store::organizations::delete(&mut tx, id).await?;
            let before = audit::json("Organization", &to_proto(&current));
            audit::record(&mut tx, caller, None, &request.name, "", Some(before), None).await?;
            tracing::info!(organization = %request.name, "organization deleted");
            Ok(())
        })
    }
}

fn parse_name<'a>(name: &'a str, field: &str) -> Result<&'a str> {
    names::parse_top_level(name, "organizations").map_err(|e| Error::invalid(field, e))
}

fn kind_from_proto(kind: i32) -> Option<OrganizationKind> {
    match pb::OrganizationKind::try_from(kind).ok()? {
        pb::OrganizationKind::Unspecified => None,
        pb::OrganizationKind::InternationalOrganization => {
            Some(OrganizationKind::InternationalOrganization)
        }
        pb::OrganizationKind::ParliamentaryAssembly => {
            Some(OrganizationKind::ParliamentaryAssembly)
        }
        pb::OrganizationKind::ForeignElectionBody => Some(OrganizationKind::ForeignElectionBody),
        pb::OrganizationKind::ForeignGovernment => Some(OrganizationKind::ForeignGovernment),
        pb::OrganizationKind::NonGovernmentalOrganization => {
            Some(OrganizationKind::NonGovernmentalOrganization)
        }
    }
}

fn kind_to_proto(kind: OrganizationKind) -> pb::OrganizationKind {
    match kind {
        OrganizationKind::InternationalOrganization => {
            pb::OrganizationKind::InternationalOrganization
        }
        OrganizationKind::ParliamentaryAssembly => pb::OrganizationKind::ParliamentaryAssembly,
        OrganizationKind::ForeignElectionBody => pb::OrganizationKind::ForeignElectionBody,
        OrganizationKind::ForeignGovernment => pb::OrganizationKind::ForeignGovernment,
        OrganizationKind::NonGovernmentalOrganization => {
            pb::OrganizationKind::NonGovernmentalOrganization
        }
    }
}

/// Validates the caller-set fields of an organization, recording every bad one.
fn validate(
    organization: &pb::Organization,
    violations: &mut Violations,
) -> Option<OrganizationFields> {
    check_text(
        violations,
        "organization.display_name",
        &organization.display_name,
        true,
        200,
    );
    check_text(
        violations,
        "organization.abbreviation",
        &organization.abbreviation,
        false,
        32,
    );
    let kind = kind_from_proto(organization.kind);
    if kind.is_none() {
        violations.add(
            "organization.kind",
            "is required: one of INTERNATIONAL_ORGANIZATION, PARLIAMENTARY_ASSEMBLY, \
             FOREIGN_ELECTION_BODY, FOREIGN_GOVERNMENT, NON_GOVERNMENTAL_ORGANIZATION",
        );
    }
    let needs_country = kind.is_some_and(OrganizationKind::has_country);
    let country = match (organization.country.is_empty(), needs_country) {
        (true, true) => {
            violations.add(
                "organization.country",
                "is required for a foreign election body or government",
            );
            None
        }
        (false, false) if kind.is_some() => {
            violations.add(
                "organization.country",
                "must be empty unless kind is FOREIGN_ELECTION_BODY or FOREIGN_GOVERNMENT",
            );
            None
        }
        (false, _) => violations.check(
            "organization.country",
            CountryCode::parse(&organization.country),
        ),
        (true, false) => None,
    };
    Some(OrganizationFields {
        display_name: organization.display_name.trim().to_owned(),
        abbreviation: organization.abbreviation.trim().to_owned(),
        kind: kind?,
        country: if needs_country { Some(country?) } else { None },
    })
}

fn to_proto(organization: &Organization) -> pb::Organization {
    pb::Organization {
        name: organization.name(),
        display_name: organization.fields.display_name.clone(),
        abbreviation: organization.fields.abbreviation.clone(),
        kind: kind_to_proto(organization.fields.kind).into(),
        country: organization
            .fields
            .country
            .map(|c| c.to_string())
            .unwrap_or_default(),
        create_time: Some(to_timestamp(organization.create_time)),
        update_time: Some(to_timestamp(organization.update_time)),
        etag: etag::format(organization.etag),
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
