//! Coalesces concurrent GetObserver calls into one query (`(election_id, id) IN unnest(…)`).
//!
//! A call queues its key; a dispatcher takes the first key waiting and, once one of a few
//! batch slots is free, every other key queued by then, and reads them all in one statement.
//! Under light load a batch is one key and waits for nothing; under heavy load the queue grows
//! while the slots are busy, so batches grow and the database does less per call. Never a
//! cache: each batch is a fresh statement that starts after every call in it arrived, so a
//! read never returns data older than a write acknowledged before the read was sent.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::postgres::PgPoolOptions;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::database::Database;
use crate::domain::observer::Observer;
use crate::error::{Error, Result};
use crate::store;

/// Keys read by one statement at most.
const MAX_BATCH: usize = 128;

type Key = (String, String);

struct Lookup {
    key: Key,
    reply: oneshot::Sender<Result<Option<Observer>>>,
}

/// The handle calls use; cheap to clone.
#[derive(Debug, Clone)]
pub struct ObserverReads {
    queue: mpsc::Sender<Lookup>,
}

impl ObserverReads {
    /// Starts the dispatcher; `slots` batches run at once, each on a connection of a small
    /// pool of their own whose statements are planned once (`force_generic_plan`): planning
    /// an observer lookup each time (eleven indexes to consider) costs PostgreSQL more than
    /// running it.
    pub fn start(db: Database, slots: usize) -> Self {
        let slots = slots.max(1);
        let options = (*db.pool.connect_options())
            .clone()
            .options([("plan_cache_mode", "force_generic_plan")]);
        let pool = crate::db::ping_when_idle(PgPoolOptions::new())
            .max_connections(u32::try_from(slots).unwrap_or(u32::MAX))
            .acquire_timeout(db.pool.options().get_acquire_timeout())
            .connect_lazy_with(options);
        let db = Database { pool, ..db };
        let (queue, waiting) = mpsc::channel(MAX_BATCH * 64);
        tokio::spawn(dispatch(db, waiting, slots));
        ObserverReads { queue }
    }

    /// The observer (deleted or not), or None.
    pub async fn get(&self, election_id: &str, id: &str) -> Result<Option<Observer>> {
        let (reply, answer) = oneshot::channel();
        let lookup = Lookup {
            key: (election_id.to_owned(), id.to_owned()),
            reply,
        };
        let gone = || Error::internal(anyhow::anyhow!("the observer reader stopped"));
        self.queue.send(lookup).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn dispatch(db: Database, mut waiting: mpsc::Receiver<Lookup>, slots: usize) {
    let slots = Arc::new(Semaphore::new(slots));
    while let Some(first) = waiting.recv().await {
        // Waiting for a slot is what lets a batch grow under load.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(lookup) => batch.push(lookup),
                Err(_) => break,
            }
        }
        let db = db.clone();
        tokio::spawn(async move {
            read_batch(&db, batch).await;
            drop(slot);
        });
    }
}

async fn read_batch(db: &Database, batch: Vec<Lookup>) {
    // Callers that gave up (deadline, cancellation) are left out.
    let batch: Vec<Lookup> = batch.into_iter().filter(|l| !l.reply.is_closed()).collect();
    if batch.is_empty() {
        return;
    }
    // In a call scope of its own, so database errors are counted and a lost connection
    // makes later calls fail fast, as in a handler.
    let result = db
        .in_scope(async {
            let mut conn = db.connection().await?;
            let mut found = Vec::with_capacity(batch.len());
            // Nearly always one election per batch.
            let mut elections: Vec<&str> = batch.iter().map(|l| l.key.0.as_str()).collect();
            elections.sort_unstable();
            elections.dedup();
            for election in elections {
                let ids: Vec<&str> = batch
                    .iter()
                    .filter(|l| l.key.0 == election)
                    .map(|l| l.key.1.as_str())
                    .collect();
                found.extend(store::observers::get_many(&mut conn, election, &ids).await?);
            }
            Ok::<_, Error>(found)
        })
        .await;
    match result {
        Ok(observers) => {
            let found: HashMap<Key, Observer> = observers
                .into_iter()
                .map(|o| ((o.election_id.clone(), o.id.clone()), o))
                .collect();
            for lookup in batch {
                let _ = lookup.reply.send(Ok(found.get(&lookup.key).cloned()));
            }
        }
        Err(error) => {
            for lookup in batch {
                let _ = lookup.reply.send(Err(error.copy_for_client()));
            }
        }
    }
}
