//! Coalesces concurrent point reads into one query per kind: GetObserver's observers
//! (`election_id = $1 AND id = ANY($2)`) and VerifyAccreditation's accreditations
//! (`accreditation_number = ANY($1)`), on the same slots and connections.
//!
//! A call queues its key; a dispatcher takes the first key waiting and, once one of a few
//! batch slots is free, every other key queued by then, and reads them all in one statement.
//! Under light load a batch is one key and waits for nothing; under heavy load the queue grows
//! while the slots are busy, so batches grow and the database does less per call. Each batch
//! is a fresh statement that starts after every call in it arrived, so a read never returns
//! data older than a write acknowledged before the read was sent. The observers it read are
//! kept with the election's change-feed position ([`cache`], in a compact form: [`kept`]):
//! the next batch's statement reads only that position and the observers not kept, unless
//! the election changed; a change notified by the change feed forgets them at once. The
//! same batches read elections' positions for ListObservers, which keeps pages likewise.
//!
//! Each slot holds its own connection rather than borrowing one from a pool: sqlx's pool
//! makes a round trip to PostgreSQL every time a connection is returned, which with one batch
//! in flight made every batch wait for two round trips instead of one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::api::watch::Notice;
use crate::database::Database;
use crate::database::PING_AFTER_IDLE;
use crate::domain::observer::Observer;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store;
use crate::store::verification::Accreditation;

mod cache;
mod kept;

use cache::ObserverCache;

/// Keys read by one statement at most.
const MAX_BATCH: usize = 128;

type Key = (String, String);

type Reply<T> = oneshot::Sender<Result<Option<T>>>;

/// One call's read, waiting for a batch.
enum Lookup {
    Observer {
        key: Key,
        reply: Reply<Arc<Observer>>,
    },
    Accreditation {
        number: String,
        reply: Reply<Accreditation>,
    },
    /// The election's change-feed position: ListObservers checks a kept page with it.
    Position {
        election_id: String,
        reply: Reply<i64>,
    },
}

impl Lookup {
    /// The caller gave up (deadline, cancellation): nothing to read for it.
    fn abandoned(&self) -> bool {
        match self {
            Lookup::Observer { reply, .. } => reply.is_closed(),
            Lookup::Accreditation { reply, .. } => reply.is_closed(),
            Lookup::Position { reply, .. } => reply.is_closed(),
        }
    }
}

/// The handle calls use; cheap to clone.
#[derive(Debug, Clone)]
pub struct PointReads {
    queue: mpsc::Sender<Lookup>,
    cache: Arc<ObserverCache>,
}

impl PointReads {
    /// Starts the dispatcher; `slots` batches run at once, each on a connection of its own
    /// whose statements are planned once (`force_generic_plan`): planning an observer lookup
    /// each time (eleven indexes to consider) costs PostgreSQL more than running it.
    pub fn start(db: Database, slots: usize, cache_capacity: usize) -> Self {
        let options = (*db.pool.connect_options()).clone();
        let connector = Connector {
            // A transaction pooler takes no session settings (and its sessions plan nothing
            // of ours twice: each transaction prepares its statements afresh).
            options: if db.route.transactions_only() {
                options
            } else {
                options.options([("plan_cache_mode", "force_generic_plan")])
            },
            timeout: db.pool.options().get_acquire_timeout(),
        };
        let (queue, waiting) = mpsc::channel(MAX_BATCH * 64);
        let cache = Arc::new(ObserverCache::new(cache_capacity, db.metrics.clone()));
        tokio::spawn(dispatch(
            db,
            Arc::new(connector),
            cache.clone(),
            waiting,
            slots.max(1),
        ));
        PointReads { queue, cache }
    }

    /// Forgets the kept observers of each election named by `notices` as it changes, until
    /// they end. Only memory depends on it: a batch never answers from observers kept at an
    /// older position, notified or not.
    pub fn forget_on_change(&self, mut notices: broadcast::Receiver<Notice>) {
        let cache = self.cache.clone();
        tokio::spawn(async move {
            loop {
                match notices.recv().await {
                    Ok(notice) => {
                        if let Some(election) = notice.election() {
                            cache.forget_election(election);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// The observer (deleted or not), or None.
    pub async fn observer(&self, election_id: &str, id: &str) -> Result<Option<Arc<Observer>>> {
        let (reply, answer) = oneshot::channel();
        let key = (election_id.to_owned(), id.to_owned());
        self.ask(Lookup::Observer { key, reply }, answer).await
    }

    /// The accreditation holding `number` (see `store::verification`), or None.
    pub async fn accreditation(&self, number: &str) -> Result<Option<Accreditation>> {
        let (reply, answer) = oneshot::channel();
        let number = number.to_owned();
        self.ask(Lookup::Accreditation { number, reply }, answer)
            .await
    }

    /// The election's change-feed position in a snapshot taken after this call (0 before its
    /// first change).
    pub async fn position(&self, election_id: &str) -> Result<i64> {
        let (reply, answer) = oneshot::channel();
        let election_id = election_id.to_owned();
        let position = self
            .ask(Lookup::Position { election_id, reply }, answer)
            .await?;
        Ok(position.unwrap_or(0))
    }

    async fn ask<T>(
        &self,
        lookup: Lookup,
        answer: oneshot::Receiver<Result<Option<T>>>,
    ) -> Result<Option<T>> {
        let gone = || Error::internal(anyhow::anyhow!("the point reader stopped"));
        self.queue.send(lookup).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// How a slot (re)connects.
struct Connector {
    options: PgConnectOptions,
    /// Bounds a connection attempt like waiting for a pooled connection.
    timeout: Duration,
}

/// A batch slot and the connection it keeps between batches.
#[derive(Default)]
struct Slot {
    connection: Option<PgConnection>,
    last_used: Option<Instant>,
}

impl Slot {
    /// The slot's connection, ready for a statement: fails fast while the database is down,
    /// connects when the slot has none, and pings one that sat idle (PostgreSQL may have
    /// restarted meanwhile), as the pools do.
    async fn ready(&mut self, db: &Database, connector: &Connector) -> Result<&mut PgConnection> {
        db.ensure_available()?;
        let idle = self
            .last_used
            .is_none_or(|t| t.elapsed() >= PING_AFTER_IDLE);
        let mut connection = self.connection.take();
        if idle
            && let Some(conn) = connection.as_mut()
            && conn.ping().await.is_err()
        {
            connection = None;
        }
        let connection = match connection {
            Some(conn) => conn,
            None => tokio::time::timeout(
                connector.timeout,
                PgConnection::connect_with(&connector.options),
            )
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??,
        };
        Ok(self.connection.insert(connection))
    }
}

async fn dispatch(
    db: Database,
    connector: Arc<Connector>,
    cache: Arc<ObserverCache>,
    mut waiting: mpsc::Receiver<Lookup>,
    slots: usize,
) {
    let (release, mut free) = mpsc::channel::<Slot>(slots);
    for _ in 0..slots {
        let _ = release.try_send(Slot::default());
    }
    while let Some(first) = waiting.recv().await {
        // Waiting for a slot is what lets a batch grow under load.
        let Some(slot) = free.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(lookup) => batch.push(lookup),
                Err(_) => break,
            }
        }
        let (db, connector, release) = (db.clone(), connector.clone(), release.clone());
        let cache = cache.clone();
        tokio::spawn(async move {
            // Boxed where it starts: the batch's future (sqlx's among it) is tens of
            // kilobytes, which spawning would otherwise copy several times.
            let slot = Box::pin(read_batch(&db, &connector, &cache, slot, batch)).await;
            // Never full: there are as many places as slots.
            let _ = release.try_send(slot);
        });
    }
}

/// The lookups of a batch, by kind.
#[derive(Default)]
struct Batch {
    observers: Vec<(Key, Reply<Arc<Observer>>)>,
    accreditations: Vec<(String, Reply<Accreditation>)>,
    positions: Vec<(String, Reply<i64>)>,
}

/// What a batch found, by kind.
struct Found {
    observers: Vec<Arc<Observer>>,
    accreditations: Vec<Accreditation>,
    positions: Vec<(String, i64)>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.observers.is_empty() && self.accreditations.is_empty() && self.positions.is_empty()
    }

    fn answer(self, found: Found) {
        answer(
            self.observers,
            found
                .observers
                .into_iter()
                .map(|o| ((o.election_id.clone(), o.id.clone()), o)),
        );
        answer(
            self.accreditations,
            found
                .accreditations
                .into_iter()
                .map(|a| (a.accreditation_number.clone(), a)),
        );
        answer(self.positions, found.positions.into_iter());
    }

    fn fail(self, error: &Error) {
        for (_, reply) in self.observers {
            let _ = reply.send(Err(error.copy_for_client()));
        }
        for (_, reply) in self.accreditations {
            let _ = reply.send(Err(error.copy_for_client()));
        }
        for (_, reply) in self.positions {
            let _ = reply.send(Err(error.copy_for_client()));
        }
    }
}

/// One batch on its slot's connection: a statement per kind of lookup in it.
async fn read_batch(
    db: &Database,
    connector: &Connector,
    cache: &ObserverCache,
    mut slot: Slot,
    lookups: Vec<Lookup>,
) -> Slot {
    let mut batch = Batch::default();
    for lookup in lookups.into_iter().filter(|lookup| !lookup.abandoned()) {
        match lookup {
            Lookup::Observer { key, reply } => batch.observers.push((key, reply)),
            Lookup::Accreditation { number, reply } => batch.accreditations.push((number, reply)),
            Lookup::Position { election_id, reply } => batch.positions.push((election_id, reply)),
        }
    }
    if batch.is_empty() {
        return slot;
    }
    db.metrics.point_read_batch();
    // In a call scope of its own, so database errors are counted and a lost connection
    // makes later calls fail fast, as in a handler.
    let result = db
        .in_scope(async {
            let conn = slot.ready(db, connector).await?;
            if !db.route.transactions_only() {
                return read_lookups(conn, cache, &db.metrics, &batch).await;
            }
            // Behind a transaction pooler, a statement outside a transaction may lose its
            // session between parsing and binding.
            let mut transaction = db.route.read_on(conn).await?;
            let found = read_lookups(&mut transaction, cache, &db.metrics, &batch).await?;
            transaction.commit().await?;
            Ok(found)
        })
        .await;
    match result {
        Ok(found) => {
            slot.last_used = Some(Instant::now());
            batch.answer(found);
        }
        Err(error) => {
            // The connection may be broken; the next batch connects afresh.
            slot.connection = None;
            batch.fail(&error);
        }
    }
    slot
}

/// What a batch asks for: a statement per kind.
async fn read_lookups(
    conn: &mut PgConnection,
    cache: &ObserverCache,
    metrics: &Metrics,
    batch: &Batch,
) -> Result<Found> {
    let observers = if batch.observers.is_empty() {
        Vec::new()
    } else {
        read_observers(conn, cache, &batch.observers, metrics).await?
    };
    let accreditations = if batch.accreditations.is_empty() {
        Vec::new()
    } else {
        let numbers: Vec<&str> = batch
            .accreditations
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        store::verification::by_numbers(&mut *conn, &numbers).await?
    };
    let positions = if batch.positions.is_empty() {
        Vec::new()
    } else {
        let mut elections: Vec<&str> = batch.positions.iter().map(|(e, _)| e.as_str()).collect();
        elections.sort_unstable();
        elections.dedup();
        store::changes::last_positions(&mut *conn, &elections).await?
    };
    Ok(Found {
        observers,
        accreditations,
        positions,
    })
}

/// The observers of a batch: a statement per election (nearly always one), which reads the
/// rows of the observers the cache does not keep at the election's current position, or of
/// all of them when the election changed since.
async fn read_observers(
    conn: &mut PgConnection,
    cache: &ObserverCache,
    lookups: &[(Key, Reply<Arc<Observer>>)],
    metrics: &Metrics,
) -> Result<Vec<Arc<Observer>>> {
    let mut elections: Vec<&str> = lookups.iter().map(|(key, _)| key.0.as_str()).collect();
    elections.sort_unstable();
    elections.dedup();
    let mut found = Vec::with_capacity(lookups.len());
    for election in elections {
        let mut ids: Vec<&str> = lookups
            .iter()
            .filter(|(key, _)| key.0 == election)
            .map(|(key, _)| key.1.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let known = cache.known(election, &ids);
        let missing: Vec<&str> = ids
            .iter()
            .zip(&known.kept)
            .filter(|(_, kept)| kept.is_none())
            .map(|(id, _)| *id)
            .collect();
        let (position, read) =
            store::observers::get_many_since(&mut *conn, election, known.position, &missing, &ids)
                .await?;
        let read: Vec<Arc<Observer>> = read.into_iter().map(Arc::new).collect();
        let by_id: HashMap<&str, Arc<Observer>> =
            read.iter().map(|o| (o.id.as_str(), o.clone())).collect();
        if position == known.position {
            metrics.kept_observers_read(ids.len() - missing.len());
            found.extend(known.kept.into_iter().flatten().flatten().map(Arc::new));
            cache.keep(election, position, &missing, &by_id);
        } else {
            cache.keep(election, position, &ids, &by_id);
        }
        found.extend(read);
    }
    Ok(found)
}

/// Answers each caller with what was found for its key.
fn answer<K: Ord + std::hash::Hash + Eq, T: Clone>(
    mut lookups: Vec<(K, Reply<T>)>,
    found: impl Iterator<Item = (K, T)>,
) {
    let mut found: HashMap<K, T> = found.collect();
    // Sorted, so that a key asked for twice is cloned for all but its last caller.
    lookups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut lookups = lookups.into_iter().peekable();
    while let Some((key, reply)) = lookups.next() {
        let asked_again = lookups.peek().is_some_and(|(next, _)| *next == key);
        let value = if asked_again {
            found.get(&key).cloned()
        } else {
            found.remove(&key)
        };
        let _ = reply.send(Ok(value));
    }
}
