//! What the load generator sends: one scenario's calls, built so that every run's writes
//! are new and every read finds data of the loaded set.

use anyhow::Context;
use rand::Rng;
use tonic::Code;

use crate::pb;
use crate::transport::Transport;
use crate::{Args, Scenario};
use pb::election_service_client::ElectionServiceClient;
use pb::observer_service_client::ObserverServiceClient;
use pb::verification_service_client::VerificationServiceClient;
use pb::verify_accreditation_request::Subject;

/// Badges fetched for `verify-accreditation`: enough that the calls do not repeat a few.
const BADGES: usize = 1000;

/// Citizenships of generated observers: never the host country.
const CITIZENSHIPS: [&str; 41] = [
    "AZ", "MD", "MN", "TR", "TJ", "BY", "RU", "KG", "UZ", "CN", "IN", "PK", "IR", "AM", "GE", "UA",
    "DE", "FR", "IT", "ES", "PL", "CZ", "SK", "HU", "RO", "BG", "RS", "HR", "SI", "AT", "CH", "BE",
    "NL", "SE", "NO", "FI", "DK", "EE", "LV", "LT", "US",
];

/// One scenario's calls: how to make the `n`-th call of a worker.
pub(super) struct Workload {
    pub(super) scenario: Scenario,
    pub(super) election: String,
    pub(super) keys: u64,
    /// The page token 90% into the list, for `list-deep`.
    pub(super) deep_token: String,
    /// Unique per run, so creates never collide with an earlier run.
    pub(super) run: String,
    pub(super) batch_size: usize,
    /// The list scenarios' filter.
    pub(super) filter: String,
    /// Badge tokens of the data set, for `verify-accreditation`.
    pub(super) badges: Vec<String>,
}

impl Workload {
    pub(super) fn new(args: &Args) -> Self {
        Workload {
            scenario: args.scenario,
            election: args.election.clone(),
            keys: args.keys.max(1),
            deep_token: String::new(),
            run: format!("{:x}", rand::rng().random::<u32>()),
            batch_size: args.batch_size,
            filter: args.filter.clone(),
            badges: Vec::new(),
        }
    }

    /// Makes one call; Ok(items) or the status code. One arm per scenario.
    pub(super) async fn call(
        &self,
        channel: Transport,
        worker: usize,
        n: u64,
    ) -> Result<u64, Code> {
        let observers = || ObserverServiceClient::new(channel.clone());
        let result = match self.scenario {
            Scenario::GetObserver => {
                let key = rand::rng().random_range(1..=self.keys);
                observers()
                    .get_observer(pb::GetObserverRequest {
                        name: format!("{}/observers/o-{key}", self.election),
                    })
                    .await
                    .map(|_| 1)
            }
            Scenario::ListFirst | Scenario::ListDeep => observers()
                .list_observers(pb::ListObserversRequest {
                    parent: self.election.clone(),
                    page_size: 100,
                    filter: self.filter.clone(),
                    page_token: if matches!(self.scenario, Scenario::ListDeep) {
                        self.deep_token.clone()
                    } else {
                        String::new()
                    },
                    ..Default::default()
                })
                .await
                .map(|page| page.into_inner().observers.len() as u64),
            Scenario::CreateObserver => observers()
                .create_observer(self.create_request(worker, n, 0))
                .await
                .map(|_| 1),
            Scenario::Import => {
                let requests = (0..self.batch_size)
                    .map(|i| self.create_request(worker, n, i))
                    .collect();
                observers()
                    .batch_create_observers(pb::BatchCreateObserversRequest {
                        parent: self.election.clone(),
                        requests,
                        request_id: uuid::Uuid::new_v4().to_string(),
                        validate_only: false,
                    })
                    .await
                    .map(|created| created.into_inner().observers.len() as u64)
            }
            Scenario::VerifyAccreditation => {
                let token = &self.badges[rand::rng().random_range(0..self.badges.len())];
                VerificationServiceClient::new(channel.clone())
                    .verify_accreditation(pb::VerifyAccreditationRequest {
                        subject: Some(Subject::Token(token.clone())),
                    })
                    .await
                    .map(|_| 1)
            }
            Scenario::Watchers => return Err(Code::Unimplemented),
            Scenario::Health => tonic_health::pb::health_client::HealthClient::new(channel.clone())
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|_| 1),
            Scenario::Summary => ElectionServiceClient::new(channel.clone())
                .get_election_summary(pb::GetElectionSummaryRequest {
                    name: self.election.clone(),
                })
                .await
                .map(|_| 1),
        };
        result.map_err(|status| status.code())
    }

    fn create_request(&self, worker: usize, n: u64, i: usize) -> pb::CreateObserverRequest {
        let mut rng = rand::rng();
        // Unique across phases (warm-up, measurement) and runs.
        let id = format!(
            "b{}-{worker}-{n}-{i}-{}",
            self.run,
            rand::rng().random::<u32>()
        );
        pb::CreateObserverRequest {
            parent: self.election.clone(),
            observer_id: id.clone(),
            observer: Some(pb::Observer {
                given_name: "Bench".into(),
                family_name: format!("Observer {id}"),
                citizenship: CITIZENSHIPS[rng.random_range(0..CITIZENSHIPS.len())].into(),
                organization: format!("organizations/org-{}", rng.random_range(1..=12)),
                // Canonical (A-Z, 0-9, at most 20) and unique enough for any run.
                travel_document_number: format!("BN{:016X}", rng.random::<u64>()),
                ..Default::default()
            }),
            request_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Walks the list once to find the token of the page 90% deep.
    pub(super) async fn find_deep_token(&mut self, channel: Transport) -> anyhow::Result<()> {
        let mut tokens = Vec::new();
        let mut token = String::new();
        loop {
            let page = ObserverServiceClient::new(channel.clone())
                .list_observers(pb::ListObserversRequest {
                    parent: self.election.clone(),
                    page_size: 100,
                    filter: self.filter.clone(),
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .context("walking the list for the deep page")?
                .into_inner();
            tokens.push(token);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        self.deep_token = tokens[(tokens.len() * 9) / 10].clone();
        tracing::info!(pages = tokens.len(), "deep page found");
        Ok(())
    }

    /// Fetches up to [`BADGES`] badges of accredited observers (the first page's worth of
    /// the accredited, then GetObserverBadge each).
    pub(super) async fn fetch_badges(&mut self, channel: Transport) -> anyhow::Result<()> {
        let page = ObserverServiceClient::new(channel.clone())
            .list_observers(pb::ListObserversRequest {
                parent: self.election.clone(),
                page_size: BADGES as i32,
                filter: "accreditation.state = ACCREDITED".into(),
                ..Default::default()
            })
            .await
            .context("listing accredited observers for their badges")?
            .into_inner();
        for observer in page.observers {
            let badge = ObserverServiceClient::new(channel.clone())
                .get_observer_badge(pb::GetObserverBadgeRequest {
                    name: observer.name,
                })
                .await
                .context("GetObserverBadge (does the service have --badge-signing-key?)")?;
            self.badges.push(badge.into_inner().token);
        }
        anyhow::ensure!(!self.badges.is_empty(), "no accredited observer to badge");
        tracing::info!(badges = self.badges.len(), "badges fetched");
        Ok(())
    }
}
