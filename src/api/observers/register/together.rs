//! Coalesces concurrent CreateObserver calls: those of one election waiting at the same time
//! are registered in one transaction, with one statement that inserts them all, their audit
//! events and their remembered responses, and one commit. PostgreSQL's work per create was
//! mostly per transaction and per statement (BEGIN, the facts' lookups, the insert's
//! statement-level triggers, the commit and its WAL flush), so under load that work is shared.
//!
//! A call queues its registration; a dispatcher takes the first one waiting and, once one of
//! a few slots is free, every other one queued by then (as `point_reads` does for reads).
//! Under light load a batch is one registration, made in a transaction of its own exactly as
//! before; under heavy load batches grow while the slots are busy.
//!
//! Each call keeps its own answer: its own replay, refusal or observer. Registrations that
//! could refuse one another (the same id, the same person, the same request id) are not made
//! together: the later ones are made alone after the batch, and see its observers. A shared
//! transaction is bounded by the earliest deadline among its calls, so a call with less than
//! a second left is made alone. If the batch's write fails (a change made meanwhile by
//! someone else, a request id claimed meanwhile), nothing of it stays and each call
//! registers alone, with its own precise answer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::{Registration, check, register_alone};
use crate::api::observers::convert::to_proto;
use crate::api::skeleton;
use crate::database::{Database, Tx};
use crate::domain::observer::Observer;
use crate::domain::observer::registration::Candidate;
use crate::error::{Error, Result};
use crate::layers::deadline::run_with_deadline;
use crate::pb::v1 as pb;
use crate::store;
use crate::store::audit::CreateRecords;
use crate::store::registration::{Loaded, Registering};

/// Registrations made together at most: a statement's arrays stay small, and a batch holds
/// its observers' memory only briefly.
const MAX_TOGETHER: usize = 64;

/// Batches in flight at once. Two cores here: one batch committing (waiting for the WAL)
/// while the next is checked and inserted keeps PostgreSQL busy without splitting the queue
/// into batches too small to share anything.
const SLOTS: usize = 2;

/// The least time a call must have left to share a transaction.
const TIME_TO_SHARE: Duration = Duration::from_secs(1);

/// The deadline of a batch whose calls have none (never a call's: the deadline layer gives
/// each one).
const WITHOUT_DEADLINE: Duration = Duration::from_secs(30);

/// What became of a registration handed to [`Registrations::register`].
pub enum Outcome {
    /// Made (or refused, or replayed): the call's answer.
    Done(Box<Result<pb::Observer>>),
    /// To make alone, in the caller's transaction: it could not be made with others.
    Alone(Box<Registration>),
}

struct Waiting {
    registration: Box<Registration>,
    reply: oneshot::Sender<Outcome>,
}

/// The handle calls use; cheap to clone.
#[derive(Debug, Clone)]
pub struct Registrations {
    queue: mpsc::Sender<Waiting>,
}

impl Registrations {
    /// Starts the dispatcher.
    pub fn start(db: Database) -> Self {
        let (queue, waiting) = mpsc::channel(MAX_TOGETHER * SLOTS * 8);
        tokio::spawn(dispatch(db, waiting));
        Registrations { queue }
    }

    /// Makes `registration`, with others waiting at the same time if any. A full queue
    /// answers [`Outcome::Alone`] at once.
    pub async fn register(&self, registration: Registration) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting {
            registration: Box::new(registration),
            reply,
        };
        if let Err(refused) = self.queue.try_send(waiting) {
            return Outcome::Alone(refused.into_inner().registration);
        }
        answer.await.unwrap_or_else(|_| {
            Outcome::Done(Box::new(Err(Error::internal(anyhow::anyhow!(
                "the registration ended without an answer"
            )))))
        })
    }
}

async fn dispatch(db: Database, mut waiting: mpsc::Receiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(SLOTS));
    while let Some(first) = waiting.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_TOGETHER {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let db = db.clone();
        tokio::spawn(async move {
            for election in by_election(batch) {
                make(&db, election).await;
            }
            drop(slot);
        });
    }
}

/// The batch's registrations by election, in order of arrival; those whose caller gave up
/// (deadline, cancellation) are not made.
fn by_election(batch: Vec<Waiting>) -> Vec<Vec<Waiting>> {
    let mut elections: Vec<Vec<Waiting>> = Vec::new();
    for waiting in batch.into_iter().filter(|w| !w.reply.is_closed()) {
        let election_id = &waiting.registration.election_id;
        match elections
            .iter_mut()
            .find(|e| e[0].registration.election_id == *election_id)
        {
            Some(election) => election.push(waiting),
            None => elections.push(vec![waiting]),
        }
    }
    elections
}

/// Makes one election's registrations: alone when there is one, else together; those that
/// could refuse one another, alone after the others.
async fn make(db: &Database, election: Vec<Waiting>) {
    // A shared transaction is bounded by the earliest deadline among its calls: a call with
    // little time left goes alone, and cannot cut the others' transaction short.
    let share_until = Instant::now() + TIME_TO_SHARE;
    let (election, hurried): (Vec<_>, Vec<_>) = election
        .into_iter()
        .partition(|w| w.registration.deadline.is_none_or(|d| d >= share_until));
    for waiting in hurried {
        let _ = waiting.reply.send(Outcome::Alone(waiting.registration));
    }
    let (together, after) = apart_from_each_other(election);
    match <[Waiting; 1]>::try_from(together) {
        Ok([one]) => {
            let registration = &one.registration;
            let made = within(registration.deadline, register_alone(db, registration)).await;
            let _ = one.reply.send(Outcome::Done(Box::new(made)));
        }
        Err(together) if together.is_empty() => {}
        Err(together) => {
            let registrations: Vec<&Registration> =
                together.iter().map(|w| &*w.registration).collect();
            let deadline = registrations.iter().filter_map(|r| r.deadline).min();
            let registrations = &registrations;
            let made = within(
                deadline,
                db.transaction(|tx| Box::pin(register_together(tx, registrations))),
            )
            .await;
            match made {
                Ok(answers) => {
                    db.metrics.registered_together(answers.len());
                    for (waiting, answer) in together.into_iter().zip(answers) {
                        let _ = waiting.reply.send(Outcome::Done(Box::new(answer)));
                    }
                }
                Err(error) => {
                    tracing::debug!(
                        ?error,
                        "registrations made together failed: each is made alone"
                    );
                    for waiting in together {
                        let _ = waiting.reply.send(Outcome::Alone(waiting.registration));
                    }
                }
            }
        }
    }
    for waiting in after {
        let _ = waiting.reply.send(Outcome::Alone(waiting.registration));
    }
}

/// Splits off the registrations that name an id, a person or a request id an earlier one of
/// the batch names: together they would refuse one another.
fn apart_from_each_other(election: Vec<Waiting>) -> (Vec<Waiting>, Vec<Waiting>) {
    let (mut ids, mut persons, mut keys) = (HashSet::new(), HashSet::new(), HashSet::new());
    election.into_iter().partition(|waiting| {
        let registration = &waiting.registration;
        let fields = &registration.entry.observer.fields;
        let new_id = ids.insert(registration.entry.id.clone());
        let new_person = match &fields.travel_document_number {
            Some(document) => persons.insert((
                fields.citizenship.as_str().to_owned(),
                document.as_str().to_owned(),
            )),
            None => true,
        };
        let new_key = match &registration.key {
            Some(key) => keys.insert((key.agency.clone(), key.request_id)),
            None => true,
        };
        new_id && new_person && new_key
    })
}

/// Runs `work` within `deadline`, or [`WITHOUT_DEADLINE`] from now.
async fn within<T>(
    deadline: Option<Instant>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let deadline = deadline.unwrap_or_else(|| Instant::now() + WITHOUT_DEADLINE);
    run_with_deadline(deadline, work).await
}

/// Registers `registrations` (one election's, none refusing another) in `tx`: each call's
/// answer, in order. An error fails them all, and nothing stays.
async fn register_together(
    tx: &mut Tx<'_>,
    registrations: &[&Registration],
) -> Result<Vec<Result<pb::Observer>>> {
    let mut answers: Vec<Option<Result<pb::Observer>>> =
        registrations.iter().map(|_| None).collect();
    replay(tx, registrations, &mut answers).await?;
    let first: Vec<usize> = (0..registrations.len())
        .filter(|&i| answers[i].is_none())
        .collect();
    if let Some(&any) = first.first() {
        let election_id = registrations[any].election_id.as_str();
        let candidates: Vec<Candidate> = first
            .iter()
            .map(|&i| registrations[i].entry.candidate())
            .collect();
        let ids: Vec<String> = first
            .iter()
            .map(|&i| registrations[i].entry.id.clone())
            .collect();
        match store::registration::claim_and_load(tx, None, election_id, &candidates, &ids).await? {
            Registering::First(loaded) => {
                let made = check_and_insert(tx, registrations, &first, *loaded).await?;
                for (i, answer) in first.into_iter().zip(made) {
                    answers[i] = Some(answer);
                }
            }
            Registering::NoElection => {
                for i in first {
                    answers[i] = Some(Err(Error::not_found(&format!("elections/{election_id}"))));
                }
            }
            Registering::Replay => {
                return Err(Error::internal(anyhow::anyhow!(
                    "registrations without keys found claimed"
                )));
            }
        }
    }
    answered(answers)
}

/// Answers the registrations whose request id a committed call used first.
async fn replay(
    tx: &mut Tx<'_>,
    registrations: &[&Registration],
    answers: &mut [Option<Result<pb::Observer>>],
) -> Result<()> {
    let keys: Vec<_> = registrations
        .iter()
        .filter_map(|r| r.key.as_ref())
        .collect();
    let firsts = store::request_ids::first_calls(tx, &keys).await?;
    for (registration, answer) in registrations.iter().zip(answers) {
        let Some(key) = &registration.key else {
            continue;
        };
        if let Some(first) = firsts
            .iter()
            .find(|f| f.agency == key.agency && f.request_id == key.request_id)
        {
            *answer = Some(store::request_ids::answer(key, first));
        }
    }
    Ok(())
}

/// Checks each of the registrations at `first` against the facts `loaded`, and inserts those
/// that pass in one statement: each one's answer, in order.
async fn check_and_insert(
    tx: &mut Tx<'_>,
    registrations: &[&Registration],
    first: &[usize],
    loaded: Loaded,
) -> Result<Vec<Result<pb::Observer>>> {
    let Loaded {
        election,
        found,
        now,
    } = loaded;
    let mut answers = Vec::with_capacity(first.len());
    let mut made: Vec<(usize, Observer)> = Vec::new();
    for (at, &i) in first.iter().enumerate() {
        let registration = registrations[i];
        let entries = std::slice::from_ref(&registration.entry);
        match check(tx, &registration.caller, &election, &found, entries).await {
            Ok(()) => {
                let entry = &registration.entry;
                let observer = Observer::registered(
                    &election.id,
                    entry.id.clone(),
                    entry.observer.fields.clone(),
                    now,
                    Uuid::new_v4(),
                );
                made.push((at, observer));
                answers.push(None);
            }
            Err(refusal) => answers.push(Some(Err(refusal))),
        }
    }
    if !made.is_empty() {
        let (places, observers): (Vec<usize>, Vec<Observer>) = made.into_iter().unzip();
        let responses: Vec<pb::Observer> = observers.iter().map(to_proto).collect();
        let mut events = Vec::with_capacity(responses.len());
        let mut remembered = Vec::new();
        for (&at, response) in places.iter().zip(&responses) {
            let registration = registrations[first[at]];
            let entry =
                skeleton::entry_created(Some(&election.id), &registration.request_id, response);
            events.push(entry.into_event(&registration.caller));
            if let Some(key) = &registration.key {
                remembered.push((key, response.encode_to_vec()));
            }
        }
        let records = CreateRecords::new(events, remembered);
        store::observers::insert_many(tx, &observers, Some(&records)).await?;
        for (at, response) in places.into_iter().zip(responses) {
            let name = response.name.clone();
            tx.after_commit(move || tracing::info!(observer = %name, "observer registered"));
            answers[at] = Some(Ok(response));
        }
    }
    answered(answers)
}

/// Every registration's answer, or INTERNAL if one went unanswered.
fn answered(answers: Vec<Option<Result<pb::Observer>>>) -> Result<Vec<Result<pb::Observer>>> {
    answers
        .into_iter()
        .map(|answer| {
            answer.ok_or_else(|| Error::internal(anyhow::anyhow!("a registration went unanswered")))
        })
        .collect()
}
