//! ObserverService: registration (one or a batch), reads, updates and corrections, soft
//! deletion, the accreditation state machine (one observer or a batch) and badges. The rules
//! live in `domain::observer` and `domain::badge`; each submodule reads parse → load facts →
//! decide → store and audit → encode.

mod badge;
mod batch_accredit;
mod change;
pub mod convert;
mod decide;
mod read;
mod register;

use chrono::NaiveDate;
use tonic::{Request, Response, Status};

use crate::api::AppState;
use crate::auth::Caller;
use crate::domain::names;
use crate::error::{Error, Result};
use crate::pb::v1 as pb;
use crate::pb::v1::observer_service_server::ObserverService;
use convert::{all_for_caller, for_caller};
use decide::Decision;

pub use convert::redact;
pub use register::Registrations;

/// Observers one BatchCreateObservers call registers at most (AIP-233).
pub const MAX_BATCH_CREATE: usize = register::MAX_BATCH;

/// The ObserverService implementation.
#[derive(Debug, Clone)]
pub struct ObserverApi {
    state: AppState,
}

impl ObserverApi {
    pub fn new(state: AppState) -> Self {
        ObserverApi { state }
    }

    /// Today, by the service's clock: dates of birth must be before it.
    fn today(&self) -> NaiveDate {
        self.state.clock.now().date_naive()
    }
}

fn parse_name<'a>(name: &'a str, field: &str) -> Result<(&'a str, &'a str)> {
    names::parse_child(name, "elections", "observers").map_err(|e| Error::invalid(field, e))
}

#[tonic::async_trait]
impl ObserverService for ObserverApi {
    async fn create_observer(
        &self,
        request: Request<pb::CreateObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let observer = self.create(&caller, request.into_inner()).await?;
        Ok(Response::new(for_caller(&caller, observer)))
    }

    async fn batch_create_observers(
        &self,
        request: Request<pb::BatchCreateObserversRequest>,
    ) -> Result<Response<pb::BatchCreateObserversResponse>, Status> {
        let caller = Caller::of(&request);
        let mut response = self.batch_create(&caller, request.into_inner()).await?;
        response.observers = all_for_caller(&caller, response.observers);
        Ok(Response::new(response))
    }

    async fn get_observer(
        &self,
        request: Request<pb::GetObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let observer = self
            .get(&Caller::of(&request), request.into_inner())
            .await?;
        Ok(Response::new(observer))
    }

    async fn list_observers(
        &self,
        request: Request<pb::ListObserversRequest>,
    ) -> Result<Response<pb::ListObserversResponse>, Status> {
        let page = self
            .list(&Caller::of(&request), request.into_inner())
            .await?;
        Ok(Response::new(page))
    }

    async fn update_observer(
        &self,
        request: Request<pb::UpdateObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let observer = self.update(&caller, request.into_inner()).await?;
        Ok(Response::new(for_caller(&caller, observer)))
    }

    async fn correct_observer(
        &self,
        request: Request<pb::CorrectObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let observer = self.correct(&caller, request.into_inner()).await?;
        Ok(Response::new(for_caller(&caller, observer)))
    }

    async fn delete_observer(
        &self,
        request: Request<pb::DeleteObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let observer = self
            .set_deleted(&caller, &request.name, &request.etag, true)
            .await?;
        Ok(Response::new(for_caller(&caller, observer)))
    }

    async fn undelete_observer(
        &self,
        request: Request<pb::UndeleteObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let observer = self
            .set_deleted(&caller, &request.name, &request.etag, false)
            .await?;
        Ok(Response::new(for_caller(&caller, observer)))
    }

    async fn accredit_observer(
        &self,
        request: Request<pb::AccreditObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let decision = Decision::accredit(&request.decision)?;
        let observer = self
            .decide(&caller, &request.name, &request.etag, decision)
            .await?;
        Ok(Response::new(observer))
    }

    async fn batch_accredit_observers(
        &self,
        request: Request<pb::BatchAccreditObserversRequest>,
    ) -> Result<Response<pb::BatchAccreditObserversResponse>, Status> {
        let caller = Caller::of(&request);
        let mut response = self.batch_accredit(&caller, request.into_inner()).await?;
        response.observers = all_for_caller(&caller, response.observers);
        Ok(Response::new(response))
    }

    async fn get_observer_badge(
        &self,
        request: Request<pb::GetObserverBadgeRequest>,
    ) -> Result<Response<pb::ObserverBadge>, Status> {
        let badge = self.badge(request.into_inner()).await?;
        Ok(Response::new(badge))
    }

    async fn reject_observer(
        &self,
        request: Request<pb::RejectObserverRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let decision = Decision::reject(&request.reason, &request.decision)?;
        let observer = self
            .decide(&caller, &request.name, &request.etag, decision)
            .await?;
        Ok(Response::new(observer))
    }

    async fn revoke_accreditation(
        &self,
        request: Request<pb::RevokeAccreditationRequest>,
    ) -> Result<Response<pb::Observer>, Status> {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        let decision = Decision::revoke(&request.reason, &request.decision)?;
        let observer = self
            .decide(&caller, &request.name, &request.etag, decision)
            .await?;
        Ok(Response::new(observer))
    }

    async fn list_public_register(
        &self,
        request: Request<pb::ListPublicRegisterRequest>,
    ) -> Result<Response<pb::ListPublicRegisterResponse>, Status> {
        let page = self.public_register(request.into_inner()).await?;
        Ok(Response::new(page))
    }

    type WatchObserversStream = tonic::codegen::BoxStream<pb::ObserverEvent>;

    async fn watch_observers(
        &self,
        request: Request<pb::WatchObserversRequest>,
    ) -> Result<Response<Self::WatchObserversStream>, Status> {
        let caller = Caller::of(&request);
        let stream = self.watch(caller, request.into_inner()).await?;
        Ok(Response::new(stream))
    }
}
