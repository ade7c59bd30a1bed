//! The observers: registration in atomic batches, the head of Tajikistan's delegation and
//! accreditation by the commission's decisions, for which the election's long-closed
//! accreditation is briefly reopened.

use std::collections::HashMap;

use crate::client::AuthenticatedChannel;
use chrono::Utc;
use prost_types::{FieldMask, Timestamp};

use super::calls::{failed, id_of, request_id, timestamp, to_timestamp};
use super::report::DecisionTaken;
use super::{Demo, story};
use crate::pb::v1 as pb;
use pb::observer_service_client::ObserverServiceClient;

/// Observers per BatchCreateObservers call (the API takes up to 1000).
const BATCH_SIZE: usize = 500;
/// How long accreditation is reopened while the demo accredits.
const REOPEN_FOR: chrono::Duration = chrono::Duration::hours(1);

impl Demo {
    /// Registers the story's observers that the election does not hold yet, in atomic
    /// batches; returns every one of them as the service has it, by id.
    pub(super) async fn observers(&mut self) -> anyhow::Result<HashMap<String, pb::Observer>> {
        let mut existing = self.existing_observers().await?;
        let plans = story::observers();
        let missing: Vec<pb::CreateObserverRequest> = plans
            .iter()
            .filter(|plan| !existing.contains_key(&plan.id))
            .map(create_observer_request)
            .collect();
        self.report.observers.present += plans.len() - missing.len();
        for batch in missing.chunks(BATCH_SIZE) {
            let mut request = pb::BatchCreateObserversRequest {
                parent: story::ELECTION.to_owned(),
                requests: batch.to_vec(),
                request_id: String::new(),
                validate_only: false,
            };
            // Derived from the batch's content: a batch repeated after a lost answer is
            // answered from the first call instead of failing as duplicates.
            request.request_id = request_id("BatchCreateObservers", &request);
            let (first, last) = (&batch[0].observer_id, &batch[batch.len() - 1].observer_id);
            let created = self
                .observers
                .batch_create_observers(request)
                .await
                .map_err(|status| failed(&format!("registering {first}..{last}"), status))?
                .into_inner()
                .observers;
            self.report.observers.created += created.len();
            for observer in created {
                existing.insert(id_of(&observer.name).to_owned(), observer);
            }
        }
        let deleted = plans
            .iter()
            .filter(|plan| {
                existing
                    .get(&plan.id)
                    .is_some_and(|o| o.delete_time.is_some())
            })
            .count();
        if deleted > 0 {
            self.report.warn(format!(
                "{deleted} of the story's observers are deleted; left as they are \
                 (UndeleteObserver restores them)"
            ));
        }
        Ok(existing)
    }

    /// Every observer of the election, deleted ones too (their ids are taken), by id.
    async fn existing_observers(&mut self) -> anyhow::Result<HashMap<String, pb::Observer>> {
        let mut observers = HashMap::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .observers
                .list_observers(pb::ListObserversRequest {
                    parent: story::ELECTION.to_owned(),
                    page_size: 1000,
                    page_token,
                    show_deleted: true,
                    ..Default::default()
                })
                .await
                .map_err(|status| failed("listing the observers", status))?
                .into_inner();
            for observer in page.observers {
                observers.insert(id_of(&observer.name).to_owned(), observer);
            }
            if page.next_page_token.is_empty() {
                return Ok(observers);
            }
            page_token = page.next_page_token;
        }
    }

    /// Makes Bakhtiyor Hudoerzoda (`obs-0001`) head of Tajikistan's delegation. A new
    /// delegation has no members, so this can only follow the observers' registration.
    pub(super) async fn head(&mut self) -> anyhow::Result<()> {
        let name = format!(
            "{}/delegations/{}",
            story::ELECTION,
            story::HEADED_DELEGATION
        );
        let head = format!("{}/observers/{}", story::ELECTION, story::observer_id(1));
        // Read now, not when it was ensured: registering its members may have moved its etag.
        let delegation = self
            .delegations
            .get_delegation(pb::GetDelegationRequest { name: name.clone() })
            .await
            .map_err(|status| failed(&format!("reading {name}"), status))?
            .into_inner();
        if delegation.head == head {
            return Ok(());
        }
        self.delegations
            .update_delegation(pb::UpdateDelegationRequest {
                delegation: Some(pb::Delegation {
                    head: head.clone(),
                    ..delegation
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["head".to_owned()],
                }),
            })
            .await
            .map_err(|status| failed(&format!("making {head} head of {name}"), status))?;
        self.report.head_set = true;
        Ok(())
    }

    /// Accredits the story's PENDING observers, one BatchAccreditObservers a decision (see
    /// [`story::DECISIONS`]), so that each decision's numbers follow one another. The
    /// election requires decisions first. Its accreditation closed when voting began in
    /// 2023, so it is reopened for the run (the API allows any deadline, to load the records
    /// of a past election) and closed again at the start of voting day, also when
    /// accrediting fails.
    pub(super) async fn accreditation(
        &mut self,
        election: pb::Election,
        mut observers: HashMap<String, pb::Observer>,
    ) -> anyhow::Result<()> {
        let mut election = self.require_decisions(election).await?;
        let plans = story::observers();
        let mut batches = Vec::new();
        for decision in story::DECISIONS {
            let names = self.pending(decision, &plans, &observers);
            if !names.is_empty() {
                batches.push((decision, names));
            }
        }
        let accredited = if batches.is_empty() {
            Ok(Vec::new())
        } else {
            let until = Utc::now() + REOPEN_FOR;
            election = self.set_deadline(election, to_timestamp(until)).await?;
            self.report.reopened_until = Some(until);
            accredit(&self.observers, batches).await
        };
        let closed = self
            .set_deadline(election, timestamp(story::ACCREDITATION_DEADLINE)?)
            .await;
        for (decision, batch) in accredited? {
            self.report.accredited.created += batch.len();
            self.report
                .decisions
                .push(DecisionTaken::new(decision, &batch));
            for observer in batch {
                observers.insert(id_of(&observer.name).to_owned(), observer);
            }
        }
        self.report.first_accredited = first_accredited(&plans, &observers);
        closed.map(|_| ())
    }

    /// The names of `decision`'s observers that are PENDING, in the roster's order; the
    /// others are counted or warned about.
    fn pending(
        &mut self,
        decision: &story::Decision,
        plans: &[story::Observer],
        observers: &HashMap<String, pb::Observer>,
    ) -> Vec<String> {
        let mut names = Vec::new();
        for plan in plans {
            if !decision.organizations.contains(&plan.organization) {
                continue;
            }
            let Some(observer) = observers.get(&plan.id) else {
                continue;
            };
            match state(observer) {
                _ if observer.delete_time.is_some() => {}
                pb::AccreditationState::Pending => names.push(observer.name.clone()),
                pb::AccreditationState::Accredited => self.report.accredited.present += 1,
                other => self.report.warn(format!(
                    "{} is {}; left as it is",
                    observer.name,
                    other.as_str_name()
                )),
            }
        }
        names
    }

    /// Makes the election require a decision behind each accreditation, unless it does.
    async fn require_decisions(&mut self, election: pb::Election) -> anyhow::Result<pb::Election> {
        if election.decision_required {
            return Ok(election);
        }
        let changed = pb::Election {
            decision_required: true,
            ..election
        };
        let updated = self.update_election(changed, "decision_required").await?;
        self.report.decisions_required = true;
        Ok(updated)
    }

    /// Sets the election's accreditation deadline unless it already is `deadline`.
    async fn set_deadline(
        &mut self,
        election: pb::Election,
        deadline: Timestamp,
    ) -> anyhow::Result<pb::Election> {
        if election.accreditation_deadline.as_ref() == Some(&deadline) {
            return Ok(election);
        }
        let changed = pb::Election {
            accreditation_deadline: Some(deadline),
            ..election
        };
        let updated = self
            .update_election(changed, "accreditation_deadline")
            .await?;
        self.report.deadline_changes += 1;
        Ok(updated)
    }

    /// UpdateElection of the one field `path`.
    pub(super) async fn update_election(
        &mut self,
        election: pb::Election,
        path: &str,
    ) -> anyhow::Result<pb::Election> {
        let name = election.name.clone();
        let updated = self
            .elections
            .update_election(pb::UpdateElectionRequest {
                election: Some(election),
                update_mask: Some(FieldMask {
                    paths: vec![path.to_owned()],
                }),
            })
            .await
            .map_err(|status| failed(&format!("setting the {path} of {name}"), status))?;
        Ok(updated.into_inner())
    }
}

fn state(observer: &pb::Observer) -> pb::AccreditationState {
    observer
        .accreditation
        .as_ref()
        .map_or(pb::AccreditationState::Unspecified, |a| a.state())
}

/// One BatchAccreditObservers a decision, in the decisions' order; the first failure stops
/// the rest. Each batch carries a `request_id` of its content, so a batch repeated after a
/// lost answer is answered from the first call instead of failing as not PENDING.
async fn accredit<'a>(
    client: &ObserverServiceClient<AuthenticatedChannel>,
    batches: Vec<(&'a story::Decision, Vec<String>)>,
) -> anyhow::Result<Vec<(&'a story::Decision, Vec<pb::Observer>)>> {
    let mut accredited = Vec::new();
    for (decision, names) in batches {
        let mut request = pb::BatchAccreditObserversRequest {
            parent: story::ELECTION.to_owned(),
            names,
            decision: decision.text.to_owned(),
            request_id: String::new(),
        };
        request.request_id = request_id("BatchAccreditObservers", &request);
        let observers = client
            .clone()
            .batch_accredit_observers(request)
            .await
            .map_err(|status| failed(&format!("accrediting by {}", decision.text), status))?
            .into_inner()
            .observers;
        accredited.push((decision, observers));
    }
    Ok(accredited)
}

/// The accreditation number of the first observer of the first decision that is
/// accredited: the one the report shows how to verify.
fn first_accredited(
    plans: &[story::Observer],
    observers: &HashMap<String, pb::Observer>,
) -> Option<String> {
    let first = story::DECISIONS.first()?;
    plans
        .iter()
        .filter(|plan| first.organizations.contains(&plan.organization))
        .filter_map(|plan| observers.get(&plan.id))
        .find(|observer| state(observer) == pb::AccreditationState::Accredited)
        .and_then(|observer| observer.accreditation.as_ref())
        .map(|accreditation| accreditation.number.clone())
}

fn create_observer_request(plan: &story::Observer) -> pb::CreateObserverRequest {
    pb::CreateObserverRequest {
        parent: story::ELECTION.to_owned(),
        observer_id: plan.id.clone(),
        observer: Some(pb::Observer {
            given_name: plan.given_name.clone(),
            family_name: plan.family_name.clone(),
            citizenship: plan.citizenship.to_owned(),
            organization: format!("organizations/{}", plan.organization),
            delegation: plan
                .delegation
                .map(|id| format!("{}/delegations/{id}", story::ELECTION))
                .unwrap_or_default(),
            role: plan.role.into(),
            travel_document_number: plan.travel_document_number.clone(),
            deployment_region: plan.deployment_region.to_owned(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}
