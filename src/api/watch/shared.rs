//! Catch-up reads shared by the watchers of one feed of one election.
//!
//! Each watcher still reads at its own position, but through its feed's latest batch: a
//! watcher woken by a change takes what it needs from a batch read after that change (by
//! whichever watcher came first), and reads the table itself only when the batch does not
//! cover it — it is older than the wake-up, starts after the watcher's position, or ends
//! before it. So a change seen by N watchers costs one read, not N, while a slow watcher
//! still reads from the table at its own position. Memory stays bounded: one batch (at most
//! `BATCH` changes) per feed and election being watched, shared by reference.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use sqlx::postgres::PgRow;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::database::Database;
use crate::error::{Error, Result};
use crate::store;
use crate::store::changes::{ChangeMeta, Feed};

/// Changes read per query.
pub const BATCH: i64 = 256;

/// One committed change and its row, shared by the watchers it is sent to.
pub type Change = Arc<(ChangeMeta, PgRow)>;

/// What a watcher gets: the changes after its position, and whether more may follow at once.
pub struct Read {
    pub changes: Vec<Change>,
    pub full: bool,
}

/// The latest batch of one feed of one election.
struct Batch {
    /// The position it was read after.
    after: i64,
    /// When its read started: it holds every change committed before.
    started: Instant,
    changes: Arc<[Change]>,
    full: bool,
}

impl Batch {
    /// The part of this batch a watcher at `after` needs, if it covers what was committed
    /// before `fresh_since`.
    fn serve(&self, after: i64, fresh_since: Instant) -> Option<Read> {
        if self.started < fresh_since || self.after > after {
            return None;
        }
        let from = self.changes.partition_point(|c| c.0.position <= after);
        let changes = self.changes[from..].to_vec();
        // A full batch says nothing about what lies beyond its end.
        if self.full && changes.is_empty() {
            return None;
        }
        Some(Read {
            changes,
            full: self.full,
        })
    }
}

/// The latest batch of one feed of one election, held while anyone watches it.
pub struct SharedFeed {
    feed: Feed,
    election: String,
    latest: tokio::sync::Mutex<Option<Batch>>,
}

impl SharedFeed {
    /// The changes after `after`, from a read that started no earlier than `fresh_since`.
    /// Watchers of the feed take turns: while one reads, the others wait for its batch
    /// instead of reading the same rows on connections of their own.
    pub async fn read(
        &self,
        reads: &SharedReads,
        after: i64,
        fresh_since: Instant,
    ) -> Result<Read> {
        let mut latest = self.latest.lock().await;
        if let Some(read) = latest.as_ref().and_then(|b| b.serve(after, fresh_since)) {
            return Ok(read);
        }
        let started = Instant::now();
        let changes = {
            // Bounds the pool connections watchers hold at once, whatever they watch.
            let _permit = reads
                .connections
                .acquire()
                .await
                .map_err(|e| Error::internal(anyhow::anyhow!("watch reads closed: {e}")))?;
            let mut conn = reads.db.connection().await?;
            reads.db.metrics.watch_read();
            let changes =
                store::changes::after(&mut conn, &self.feed, &self.election, after, BATCH).await?;
            conn.finish().await?;
            changes
        };
        let full = changes.len() == usize::try_from(BATCH).unwrap_or(usize::MAX);
        let changes: Arc<[Change]> = changes.into_iter().map(Arc::new).collect();
        *latest = Some(Batch {
            after,
            started,
            changes: changes.clone(),
            full,
        });
        Ok(Read {
            changes: changes.to_vec(),
            full,
        })
    }
}

/// The shared feeds being watched, and the bound on connections their reads take.
#[derive(Debug)]
pub struct SharedReads {
    db: Database,
    connections: Semaphore,
    feeds: Mutex<HashMap<(&'static str, String), Weak<SharedFeed>>>,
}

impl SharedReads {
    pub fn new(db: Database, connections: usize) -> Arc<Self> {
        Arc::new(SharedReads {
            db,
            connections: Semaphore::new(connections.max(1)),
            feeds: Mutex::new(HashMap::new()),
        })
    }

    /// The shared feed of `feed` in `election`; it lives as long as a watcher holds it.
    pub fn feed(&self, feed: Feed, election: &str) -> Arc<SharedFeed> {
        let mut feeds = self
            .feeds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (feed.resource_type, election.to_owned());
        if let Some(shared) = feeds.get(&key).and_then(Weak::upgrade) {
            return shared;
        }
        // Forget the feeds nobody watches any more: the map stays as small as the watching.
        feeds.retain(|_, shared| shared.strong_count() > 0);
        let shared = Arc::new(SharedFeed {
            feed,
            election: election.to_owned(),
            latest: tokio::sync::Mutex::new(None),
        });
        feeds.insert(key, Arc::downgrade(&shared));
        shared
    }
}

impl std::fmt::Debug for SharedFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFeed")
            .field("feed", &self.feed.resource_type)
            .field("election", &self.election)
            .finish()
    }
}
