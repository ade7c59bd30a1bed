//! The observers: registration in atomic batches, the head of Tajikistan's delegation and
//! accreditation, for which the election's long-closed accreditation is briefly reopened.

use std::collections::HashMap;

use crate::client::AuthenticatedChannel;
use anyhow::Context;
use chrono::Utc;
use prost_types::{FieldMask, Timestamp};
use tokio::task::JoinSet;

use super::calls::{failed, id_of, request_id, timestamp, to_timestamp};
use super::{Demo, story};
use crate::pb::v1 as pb;
use pb::observer_service_client::ObserverServiceClient;

/// Observers per BatchCreateObservers call (the API takes up to 1000).
const BATCH_SIZE: usize = 500;
/// AccreditObserver calls in flight. Numbers are handed out under one lock per election, so
/// more would only queue in the database.
const IN_FLIGHT: usize = 8;
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

    /// Accredits the story's PENDING observers. The election's accreditation closed when
    /// voting began in 2023, so it is reopened for the run (the API allows any deadline, to
    /// load the records of a past election) and closed again at the start of voting day,
    /// also when accrediting fails.
    pub(super) async fn accreditation(
        &mut self,
        election: pb::Election,
        observers: &HashMap<String, pb::Observer>,
    ) -> anyhow::Result<()> {
        let mut pending = Vec::new();
        for plan in story::observers() {
            let Some(observer) = observers.get(&plan.id) else {
                continue;
            };
            let state = observer
                .accreditation
                .as_ref()
                .map_or(pb::AccreditationState::Unspecified, |a| a.state());
            match state {
                _ if observer.delete_time.is_some() => {}
                pb::AccreditationState::Pending => {
                    pending.push((observer.name.clone(), observer.etag.clone()));
                }
                pb::AccreditationState::Accredited => self.report.accredited.present += 1,
                other => self.report.warn(format!(
                    "{} is {}; left as it is",
                    observer.name,
                    other.as_str_name()
                )),
            }
        }
        let mut election = election;
        let accredited = if pending.is_empty() {
            Ok(0)
        } else {
            let until = Utc::now() + REOPEN_FOR;
            election = self.set_deadline(election, to_timestamp(until)).await?;
            self.report.reopened_until = Some(until);
            accredit(&self.observers, pending).await
        };
        let closed = self
            .set_deadline(election, timestamp(story::ACCREDITATION_DEADLINE)?)
            .await;
        self.report.accredited.created += accredited?;
        closed.map(|_| ())
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
        let name = election.name.clone();
        let updated = self
            .elections
            .update_election(pb::UpdateElectionRequest {
                election: Some(pb::Election {
                    accreditation_deadline: Some(deadline),
                    ..election
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["accreditation_deadline".to_owned()],
                }),
            })
            .await
            .map_err(|status| failed(&format!("setting the deadline of {name}"), status))?;
        self.report.deadline_changes += 1;
        Ok(updated.into_inner())
    }
}

/// AccreditObserver for each `(name, etag)`, [`IN_FLIGHT`] at a time; the first failure
/// stops the rest. Returns how many were accredited.
async fn accredit(
    client: &ObserverServiceClient<AuthenticatedChannel>,
    pending: Vec<(String, String)>,
) -> anyhow::Result<usize> {
    let mut calls = JoinSet::new();
    let mut accredited = 0;
    for (name, etag) in pending {
        if calls.len() >= IN_FLIGHT {
            accredited += joined(calls.join_next().await)?;
        }
        let mut client = client.clone();
        calls.spawn(async move {
            let request = pb::AccreditObserverRequest {
                name: name.clone(),
                etag,
                // The demo's elections do not require the commission's decision.
                decision: String::new(),
            };
            client
                .accredit_observer(request)
                .await
                .map_err(|status| failed(&format!("accrediting {name}"), status))
        });
    }
    while !calls.is_empty() {
        accredited += joined(calls.join_next().await)?;
    }
    Ok(accredited)
}

/// 1 for a finished accreditation call, its error otherwise.
fn joined<T>(
    result: Option<Result<anyhow::Result<T>, tokio::task::JoinError>>,
) -> anyhow::Result<usize> {
    match result {
        Some(call) => call.context("an accreditation call stopped")?.map(|_| 1),
        None => Ok(0),
    }
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
