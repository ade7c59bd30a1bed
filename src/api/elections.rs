//! ElectionService.

use tonic::{Request, Response, Status};

use crate::aip::field_mask::{self, MaskSpec};
use crate::aip::paging::{ListRequest, Page};
use crate::aip::{etag, request_id};
use crate::api::audit;
use crate::api::{AppState, check_text, from_timestamp, to_timestamp};
use crate::auth::Caller;
use crate::domain::country::CountryCode;
use crate::domain::date::{format_date, parse_date};
use crate::domain::election::{Election, ElectionFields};
use crate::domain::names;
use crate::error::{Error, Reason, Result, Violations};
use crate::pb::v1 as pb;
use crate::pb::v1::election_service_server::ElectionService;
use crate::store::{self, request_ids};

const CREATE_METHOD: &str = "/observer_registry.v1.ElectionService/CreateElection";

const MASK: MaskSpec = MaskSpec {
    updatable: &[
        "display_name",
        "host_country",
        "voting_day",
        "accreditation_deadline",
        "description",
    ],
    output_only: &["name", "create_time", "update_time", "etag"],
};

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
        let key = request_id::key(&request.request_id, CREATE_METHOD, &request)?;
        let mut violations = Violations::new();
        let id = violations.check(
            "election_id",
            names::resource_id_or_generated(&request.election_id),
        );
        let fields = match &request.election {
            Some(election) => validate(election, &mut violations),
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

        crate::transaction!(self.state.db, |tx| {
            if let Some(first) = request_ids::claim::<pb::Election>(&mut tx, key.as_ref()).await? {
                return Ok(first);
            }
            let election = to_proto(&store::elections::insert(&mut tx, &id, &fields).await?);
            request_ids::record(&mut tx, key.as_ref(), &election).await?;
            let after = audit::json("Election", &election);
            audit::record(
                &mut tx,
                caller,
                Some(&id),
                &election.name,
                &request.request_id,
                None,
                Some(after),
            )
            .await?;
            tracing::info!(election = %election.name, "election created");
            Ok(election)
        })
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

    async fn update(
        &self,
        caller: &Caller,
        request: pb::UpdateElectionRequest,
    ) -> Result<pb::Election> {
        let changes = request
            .election
            .ok_or_else(|| Error::invalid("election", "is required"))?;
        let id = parse_name(&changes.name, "election.name")?;
        let mask = field_mask::resolve(request.update_mask.as_ref(), &MASK)?;

        crate::transaction!(self.state.db, |tx| {
            let current = store::elections::get(&mut tx, id, true)
                .await?
                .ok_or_else(|| Error::not_found(&changes.name))?;
            etag::check(&changes.etag, current.etag, &changes.name)?;
            let mut merged = to_proto(&current);
            for field in mask.fields() {
                match *field {
                    "display_name" => merged.display_name = changes.display_name.clone(),
                    "host_country" => merged.host_country = changes.host_country.clone(),
                    "voting_day" => merged.voting_day = changes.voting_day.clone(),
                    "accreditation_deadline" => {
                        merged.accreditation_deadline = changes.accreditation_deadline
                    }
                    "description" => merged.description = changes.description.clone(),
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
            if fields.host_country != current.fields.host_country
                && store::elections::has_observer_citizen_of(
                    &mut tx,
                    id,
                    fields.host_country.as_str(),
                )
                .await?
            {
                return Err(Error::precondition(
                    Reason::HostCountryCitizen,
                    format!(
                        "observers of {} are citizens of {}",
                        changes.name, fields.host_country
                    ),
                )
                .with_violation(
                    "election.host_country",
                    "observers are citizens of this country",
                ));
            }
            let election = store::elections::update(&mut tx, id, &fields).await?;
            let (before, after) = (
                audit::json("Election", &to_proto(&current)),
                audit::json("Election", &to_proto(&election)),
            );
            audit::record(
                &mut tx,
                caller,
                Some(id),
                &changes.name,
                "",
                Some(before),
                Some(after),
            )
            .await?;
            tracing::info!(election = %changes.name, fields = ?mask.fields(), "election updated");
            Ok(to_proto(&election))
        })
    }

    async fn delete(&self, caller: &Caller, request: pb::DeleteElectionRequest) -> Result<()> {
        let id = parse_name(&request.name, "name")?;
        crate::transaction!(self.state.db, |tx| {
            let current = store::elections::get(&mut tx, id, true)
                .await?
                .ok_or_else(|| Error::not_found(&request.name))?;
            etag::check(&request.etag, current.etag, &request.name)?;
            if store::elections::has_children(&mut tx, id).await? {
                if !request.force {
                    return Err(Error::precondition(
                        Reason::HasChildren,
                        format!(
                            "{} has delegations, observers or meetings (also deleted ones); set force to \
                             delete them with it",
                            request.name
                        ),
                    )
                    .with_metadata("resource", &request.name));
                }
                store::elections::delete_children(&mut tx, id).await?;
            }
            store::elections::delete(&mut tx, id).await?;
            let before = audit::json("Election", &to_proto(&current));
            audit::record(
                &mut tx,
                caller,
                Some(id),
                &request.name,
                "",
                Some(before),
                None,
            )
            .await?;
            tracing::info!(election = %request.name, "election deleted");
            Ok(())
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

fn parse_name<'a>(name: &'a str, field: &str) -> Result<&'a str> {
    names::parse_top_level(name, "elections").map_err(|e| Error::invalid(field, e))
}

/// Validates the caller-set fields of an election, recording every bad one.
fn validate(election: &pb::Election, violations: &mut Violations) -> Option<ElectionFields> {
    check_text(
        violations,
        "election.display_name",
        &election.display_name,
        true,
        200,
    );
    check_text(
        violations,
        "election.description",
        &election.description,
        false,
        4000,
    );
    let host_country = if election.host_country.is_empty() {
        violations.add("election.host_country", "is required");
        None
    } else {
        violations.check(
            "election.host_country",
            CountryCode::parse(&election.host_country),
        )
    };
    let voting_day = if election.voting_day.is_empty() {
        violations.add("election.voting_day", "is required");
        None
    } else {
        violations.check("election.voting_day", parse_date(&election.voting_day))
    };
    let accreditation_deadline = match &election.accreditation_deadline {
        Some(deadline) => {
            Some(violations.check("election.accreditation_deadline", from_timestamp(deadline))?)
        }
        None => None,
    };
    Some(ElectionFields {
        display_name: election.display_name.trim().to_owned(),
        host_country: host_country?,
        voting_day: voting_day?,
        accreditation_deadline,
        description: election.description.clone(),
    })
}

fn to_proto(election: &Election) -> pb::Election {
    pb::Election {
        name: election.name(),
        display_name: election.fields.display_name.clone(),
        host_country: election.fields.host_country.to_string(),
        voting_day: format_date(election.fields.voting_day),
        accreditation_deadline: election.fields.accreditation_deadline.map(to_timestamp),
        description: election.fields.description.clone(),
        create_time: Some(to_timestamp(election.create_time)),
        update_time: Some(to_timestamp(election.update_time)),
        etag: etag::format(election.etag),
    }
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
}
