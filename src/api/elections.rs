//! ElectionService: elections, their summary figures, and the rules for changing or
//! deleting one (`domain::election`).

mod change;
pub mod convert;
pub mod erase;

use tonic::{Request, Response, Status};

use crate::aip::paging::{ListRequest, Page};
use crate::aip::request_id;
use crate::api::AppState;
use crate::api::skeleton::{self, Creation};
use crate::auth::Caller;
use crate::domain::names;
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::election_service_server::ElectionService;
use crate::store;
use convert::to_proto;

const CREATE_METHOD: &str = "/observer_registry.v1.ElectionService/CreateElection";

/// The ElectionService implementation.
#[derive(Debug, Clone)]
pub struct ElectionApi {
    state: AppState,
}

impl ElectionApi {
    pub fn new(state: AppState) -> Self {
        ElectionApi { state }
    }

    async fn create(
        &self,
        caller: &Caller,
        request: pb::CreateElectionRequest,
    ) -> Result<pb::Election> {
        let key = request_id::key(caller, &request.request_id, CREATE_METHOD, &request)?;
        let mut violations = Violations::new();
        let id = violations.check(
            "election_id",
            names::resource_id_or_generated(&request.election_id),
        );
        let fields = match &request.election {
            Some(election) => convert::parse(election, &mut violations),
            None => {
                violations.add("election", "is required");
                None
            }
        };
        violations.finish()?;
        let (Some(id), Some(fields)) = (id, fields) else {
            return Err(Error::internal(anyhow::anyhow!(
                "validation passed without values"
            )));
        };

        let creation = Creation {
            key: key.as_ref(),
            election_id: Some(&id),
            request_id: &request.request_id,
        };
        let (id, fields) = (&id, &fields);
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    skeleton::create_once(tx, caller, creation, |tx| {
                        Box::pin(async move {
                            let inserted = store::elections::insert(tx, id, fields).await?;
                            let election = to_proto(&inserted);
                            let election_ = election.name.to_string();
                            tx.after_commit(
                                move || tracing::info!(election = %election_, "election created"),
                            );
                            Ok(election)
                        })
                    })
                    .await
                })
            })
            .await
    }

    async fn get(&self, request: pb::GetElectionRequest) -> Result<pb::Election> {
        let id = parse_name(&request.name, "name")?;
        let mut conn = self.state.db.read().await?;
        let election = store::elections::get(&mut conn, id, false)
            .await?
            .ok_or_else(|| Error::not_found(&request.name))?;
        Ok(to_proto(&election))
    }

    async fn list(&self, request: pb::ListElectionsRequest) -> Result<pb::ListElectionsResponse> {
        let query = self.state.page_tokens.prepare(
            &store::elections::LIST_SPEC,
            &ListRequest {
                page_size: request.page_size,
                page_token: &request.page_token,
                filter: &request.filter,
                order_by: &request.order_by,
                ..Default::default()
            },
        )?;
        let mut conn = self.state.db.read().await?;
        let (rows, total) = store::elections::list(&mut conn, &query).await?;
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListElectionsResponse {
            elections: page.items.iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
        })
    }
}

impl ElectionApi {
    async fn summary(&self, request: pb::GetElectionSummaryRequest) -> Result<pb::ElectionSummary> {
        let id = parse_name(&request.name, "name")?;
        let mut conn = self.state.db.read().await?;
        let summary = store::figures::summary(&mut conn, id)
            .await?
            .ok_or_else(|| Error::not_found(&request.name))?;
        Ok(pb::ElectionSummary {
            election: request.name.clone(),
            accredited_observers: summary.accredited_observers,
            pending_observers: summary.pending_observers,
            international_organizations: summary.international_organizations,
            organizations: summary.organizations,
            countries: summary.countries,
            delegations: summary.delegations,
            meetings: summary.meetings,
            invited_organizations: summary.invitations.invited_organizations,
            accepted_invitations: summary.invitations.accepted_invitations,
            expected_observers: summary.invitations.expected_observers,
            headline: summary.headline(),
            by_organization: summary
                .by_organization
                .into_iter()
                .map(
                    |(id, display_name, observers)| pb::OrganizationObserverCount {
                        organization: format!("organizations/{id}"),
                        display_name,
                        observers,
                    },
                )
                .collect(),
            by_country: summary
                .by_country
                .into_iter()
                .map(|(country, observers)| pb::CountryObserverCount { country, observers })
                .collect(),
        })
    }
}

/// The election, locked for the rest of the transaction, if it exists (else NOT_FOUND) and
/// `etag` is empty or its current etag (else ABORTED / ETAG_MISMATCH).
async fn locked(
    conn: &mut sqlx::PgConnection,
    id: &str,
    name: &str,
    etag: &str,
) -> Result<crate::domain::election::Election> {
    let current = store::elections::get(conn, id, true)
        .await?
        .ok_or_else(|| Error::not_found(name))?;
    crate::aip::etag::check(etag, current.etag, name)?;
    Ok(current)
}

fn parse_name<'a>(name: &'a str, field: &str) -> Result<&'a str> {
    names::parse_top_level(name, "elections").map_err(|e| Error::invalid(field, e))
}

#[tonic::async_trait]
impl ElectionService for ElectionApi {
    async fn create_election(
        &self,
        request: Request<pb::CreateElectionRequest>,
    ) -> Result<Response<pb::Election>, Status> {
        Ok(Response::new(
            self.create(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn get_election(
        &self,
        request: Request<pb::GetElectionRequest>,
    ) -> Result<Response<pb::Election>, Status> {
        Ok(Response::new(self.get(request.into_inner()).await?))
    }

    async fn list_elections(
        &self,
        request: Request<pb::ListElectionsRequest>,
    ) -> Result<Response<pb::ListElectionsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn update_election(
        &self,
        request: Request<pb::UpdateElectionRequest>,
    ) -> Result<Response<pb::Election>, Status> {
        Ok(Response::new(
            self.update(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }

    async fn delete_election(
        &self,
        request: Request<pb::DeleteElectionRequest>,
    ) -> Result<Response<()>, Status> {
        self.delete(&Caller::of(&request), request.into_inner())
            .await?;
        Ok(Response::new(()))
    }

    async fn get_election_summary(
        &self,
        request: Request<pb::GetElectionSummaryRequest>,
    ) -> Result<Response<pb::ElectionSummary>, Status> {
        Ok(Response::new(self.summary(request.into_inner()).await?))
    }

    async fn erase_personal_data(
        &self,
        request: Request<pb::ErasePersonalDataRequest>,
    ) -> Result<Response<pb::Election>, Status> {
        Ok(Response::new(
            self.erase_personal_data(&Caller::of(&request), request.into_inner())
                .await?,
        ))
    }
}
