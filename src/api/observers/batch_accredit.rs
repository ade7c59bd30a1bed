//! BatchAccreditObservers: parse every name → claim the request id → lock the observers and
//! the election's facts → check the whole batch (domain) → lock the host country's sequence
//! → decide each in the order given → store and audit each as AccreditObserver does.

use std::collections::{HashMap, HashSet};

use super::ObserverApi;
use super::decide::{self, parse_decision, terms};
use super::register::MAX_BATCH;
use crate::aip::request_id;
use crate::api::invitations::check_invited;
use crate::api::require_election;
use crate::auth::Caller;
use crate::database::Tx;
use crate::domain::invitation::Sender;
use crate::domain::names;
use crate::domain::observer::accreditation::{self, BatchEntry};
use crate::error::{Error, Result, Violations};
use crate::pb::v1 as pb;
use crate::store::{self, request_ids};

const METHOD: &str = "/observer_registry.v1.ObserverService/BatchAccreditObservers";

/// A batch as the request states it, parsed.
struct Batch<'r> {
    election_id: &'r str,
    /// (where in the request, name, id), in the order of `names`.
    entries: Vec<(String, &'r str, &'r str)>,
    decision: String,
}

impl ObserverApi {
    pub(super) async fn batch_accredit(
        &self,
        caller: &Caller,
        request: pb::BatchAccreditObserversRequest,
    ) -> Result<pb::BatchAccreditObserversResponse> {
        let key = request_id::key(caller, &request.request_id, METHOD, &request)?;
        let batch = parse(&request)?;
        let (key, batch, request_id) = (&key, &batch, request.request_id.as_str());
        self.state
            .db
            .transaction(|tx| {
                Box::pin(async move {
                    if let Some(first) = request_ids::claim(tx, key.as_ref()).await? {
                        return Ok(first);
                    }
                    let observers = self.accredit_all(tx, caller, batch, request_id).await?;
                    let response = pb::BatchAccreditObserversResponse { observers };
                    request_ids::record(tx, key.as_ref(), &response).await?;
                    let (election_, count_) =
                        (batch.election_id.to_owned(), response.observers.len());
                    tx.after_commit(move || {
                        tracing::info!(election = %election_, count = count_, "observers accredited in a batch")
                    });
                    Ok(response)
                })
            })
            .await
    }

    /// Accredits the whole batch in `tx`, or refuses it whole; the observers in the order of
    /// the request.
    async fn accredit_all(
        &self,
        tx: &mut Tx<'_>,
        caller: &Caller,
        batch: &Batch<'_>,
        request_id: &str,
    ) -> Result<Vec<pb::Observer>> {
        let election = require_election(tx, batch.election_id).await?;
        let terms = terms(&election);
        let ids: Vec<&str> = batch.entries.iter().map(|(_, _, id)| *id).collect();
        let found = store::observers::lock_live(tx, batch.election_id, &ids).await?;
        let by_id: HashMap<&str, _> = found.iter().map(|o| (o.id.as_str(), o)).collect();
        let entries: Vec<BatchEntry> = batch
            .entries
            .iter()
            .map(|(at, name, id)| BatchEntry {
                at,
                name,
                current: by_id.get(id).map(|o| &o.accreditation),
            })
            .collect();
        // Checked before the sequence is locked: a refused batch holds no number.
        accreditation::check_batch(&entries, &batch.decision, &terms)?;
        let senders: Vec<Sender> = batch
            .entries
            .iter()
            .filter_map(|(at, _, id)| {
                by_id.get(id).map(|o| Sender {
                    at,
                    organization_id: &o.fields.organization_id,
                })
            })
            .collect();
        check_invited(tx, &election, &senders).await?;
        let first = store::observers::next_accreditation_sequence(
            tx,
            terms.host_country,
            terms.voting_year,
        )
        .await?;
        // Read after the sequence's lock, so decision times follow number order.
        let now = self.state.clock.now();
        let decided = accreditation::accredit_all(&entries, &batch.decision, first, &terms, now)?;
        let mut observers = Vec::with_capacity(decided.len());
        for ((_, _, id), decided) in batch.entries.iter().zip(&decided) {
            let current = by_id.get(id).ok_or_else(|| {
                Error::internal(anyhow::anyhow!("checked observer {id} went missing"))
            })?;
            observers.push(decide::record(tx, caller, current, decided, request_id).await?);
        }
        Ok(observers)
    }
}

/// The batch's election, names and decision, or INVALID_ARGUMENT naming every bad field:
/// `names[3]` for a malformed name, one of another election, or one given twice.
fn parse(request: &pb::BatchAccreditObserversRequest) -> Result<Batch<'_>> {
    let mut violations = Violations::new();
    let election_id = violations.check(
        "parent",
        names::parse_top_level(&request.parent, "elections"),
    );
    let decision = violations.check("decision", parse_decision(&request.decision));
    if request.names.is_empty() || request.names.len() > MAX_BATCH {
        violations.add(
            "names",
            format!(
                "must hold 1 to {MAX_BATCH} names, not {}",
                request.names.len()
            ),
        );
    }
    let mut entries = Vec::with_capacity(request.names.len());
    let mut seen = HashSet::new();
    for (i, name) in request.names.iter().enumerate() {
        let at = format!("names[{i}]");
        match names::parse_child(name, "elections", "observers") {
            Err(why) => violations.add(at, why),
            Ok((election, _)) if election_id.is_some_and(|parent| parent != election) => {
                violations.add(
                    at,
                    format!("{name} is not an observer of {}", request.parent),
                );
            }
            Ok((_, id)) if !seen.insert(id) => violations.add(at, "appears twice in the batch"),
            Ok((_, id)) => entries.push((at, name.as_str(), id)),
        }
    }
    violations.finish()?;
    match (election_id, decision) {
        (Some(election_id), Some(decision)) => Ok(Batch {
            election_id,
            entries,
            decision,
        }),
        _ => Err(Error::internal(anyhow::anyhow!(
            "validation passed without values"
        ))),
    }
}
