//! The change feed behind WatchObservers, WatchDelegations, WatchMeetings and
//! WatchInvitations.
//!
//! The `changes` table is the source of truth: each watcher reads it from its own position,
//! in commit order, a batch at a time, and sends what it read before reading more — so a slow
//! consumer only slows its own reads (a bounded channel pushes back) and one far behind is
//! served from the table, never from memory. Watchers of one feed and election share their
//! reads (`shared`). One LISTEN connection wakes them (`listen`); a lost notification costs
//! at most a poll interval.
//!
//! A stream is held in check while it lives (`stream`): its caller is looked up again after
//! every reload of the agencies, it ends at its maximum age with UNAVAILABLE, and each agency
//! has a limited number of slots (`slots`). It ends when the server shuts down, and with
//! UNAVAILABLE when the database is lost: the client resumes with its last token.

mod listen;
mod shared;
mod slots;
mod stream;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::PgRow;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tonic::Status;

use crate::aip::resume_token;
use crate::api::AppState;
use crate::auth::{Caller, IdentityStore, reauthorize};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::store;
use crate::store::changes::{ChangeMeta, Feed};
pub use listen::Notice;
use shared::{SharedFeed, SharedReads};
use slots::WatchSlots;
use stream::{Item, Watcher};

/// Watchers look again this often while notifications are not coming through…
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// …and this often while they are (a safety net only): idle watchers cost the database
/// next to nothing.
const IDLE_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Pool connections the watchers' reads may hold at once, whatever they watch: the calls
/// keep the rest of the pool.
const READ_CONNECTIONS: usize = 4;
/// Changes read ahead of what a watcher's client has taken.
const READ_AHEAD: usize = 32;

/// How the feeds bound their streams.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// How long changes are kept (and resume tokens stay valid).
    pub retention: Duration,
    /// Whom a stream's caller is looked up in again after each reload.
    pub identities: Arc<IdentityStore>,
    pub max_stream_age: Duration,
    pub max_watches_per_agency: usize,
}

/// What the feeds share: who to wake when an election changed, the shared reads, the
/// agencies' watch slots, when to stop.
#[derive(Debug, Clone)]
pub struct Feeds {
    notices: broadcast::Sender<Notice>,
    /// Whether LISTEN is in place, so that watchers can rely on being woken.
    listening: Arc<AtomicBool>,
    stopping: watch::Receiver<bool>,
    reads: Arc<SharedReads>,
    slots: Arc<WatchSlots>,
    identities: Arc<IdentityStore>,
    max_stream_age: Duration,
    pub retention: Duration,
}

impl Feeds {
    /// Starts the listener that turns NOTIFY into wake-ups, until `stopping` turns true.
    pub fn start(db: &Database, stopping: watch::Receiver<bool>, settings: FeedSettings) -> Self {
        let (notices, _) = broadcast::channel(1024);
        // LISTEN holds its connection for good: one of its own, not one of the calls' pool,
        // and past any pooler (a transaction pooler lends no session to listen in).
        let listener_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(db.route.listen_options(&db.pool));
        let listening = Arc::new(AtomicBool::new(false));
        tokio::spawn(listen::listen(
            listener_pool,
            notices.clone(),
            listening.clone(),
            stopping.clone(),
        ));
        Feeds {
            notices,
            listening,
            stopping,
            reads: SharedReads::new(db.clone(), READ_CONNECTIONS),
            slots: WatchSlots::new(settings.max_watches_per_agency),
            identities: settings.identities,
            max_stream_age: settings.max_stream_age,
            retention: settings.retention,
        }
    }
}

impl Feeds {
    /// A notice for every election that changes from now on (see `listen::Notice`).
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }
}

/// Turns a change and its row into the event sent to the caller (with the token given).
pub type MakeEvent<E> =
    Box<dyn Fn(&Caller, &ChangeMeta, &PgRow, String) -> Result<E> + Send + Sync>;

impl AppState {
    /// Starts `caller`'s watch of `feed` in `election_id` after `resume_token` (or after the
    /// last change committed now, without one).
    pub async fn watch<E: Send + 'static>(
        &self,
        caller: Caller,
        feed: Feed,
        election_id: &str,
        resume_token: &str,
        make_event: MakeEvent<E>,
    ) -> Result<tonic::codegen::BoxStream<E>> {
        // A token is checked before the database is asked anything.
        let resumed_after = if resume_token.is_empty() {
            None
        } else {
            Some(resume_token::position(
                &self.page_tokens,
                resume_token,
                election_id,
                feed.resource_type,
                self.feeds.retention,
                self.clock.now(),
            )?)
        };
        let feeds = &self.feeds;
        let slot = feeds.slots.take(&caller.agency)?;
        // Subscribed before the caller is checked again, so that no reload falls between
        // the check of the auth layer and the stream's.
        let reloads = feeds.identities.reloads();
        let caller = reauthorize(&feeds.identities, &caller)?;
        let ends_at = Instant::now() + feeds.max_stream_age;
        let started = Instant::now();
        let mut conn = self.db.connection().await?;
        crate::api::require_election(&mut conn, election_id).await?;
        let start_after = match resumed_after {
            Some(position) => position,
            None => store::changes::last_position(&mut conn, election_id).await?,
        };
        conn.finish().await?;
        let (changes, received) = mpsc::channel(READ_AHEAD);
        tokio::spawn(follow(
            self.clone(),
            feeds.reads.feed(feed, election_id),
            Position {
                feed,
                election_id: election_id.to_owned(),
                after: start_after,
                fresh_since: started,
            },
            changes,
        ));
        let watcher = Watcher {
            changes: received,
            caller,
            identities: feeds.identities.clone(),
            reloads,
            make_event,
            ends_at,
            _slot: slot,
        };
        Ok(Box::pin(watcher.into_stream()))
    }
}

/// Where a watcher is in its feed.
struct Position {
    feed: Feed,
    election_id: String,
    /// The last change sent.
    after: i64,
    /// Reads must have started after this instant to see what the watcher was woken for.
    fresh_since: Instant,
}

/// Reads the feed after `at` and sends each change with its token, until the stream is
/// dropped, the server stops or a read fails.
async fn follow(
    state: AppState,
    shared: Arc<SharedFeed>,
    mut at: Position,
    changes: mpsc::Sender<Item>,
) {
    let feeds = &state.feeds;
    let mut notices = feeds.notices.subscribe();
    let mut stopping = feeds.stopping.clone();
    loop {
        if *stopping.borrow() {
            return;
        }
        // Boxed: a read's future (pool, statement) is kilobytes, and an idle watcher's
        // task would otherwise carry that much for its whole life.
        let read = match Box::pin(shared.read(&feeds.reads, at.after, at.fresh_since)).await {
            Ok(read) => read,
            Err(error) => {
                let _ = changes.send(Err(Status::from(error))).await;
                return;
            }
        };
        for change in read.changes {
            let (position, change_time) = (change.0.position, change.0.change_time);
            let token = resume_token::issue(
                &state.page_tokens,
                &at.election_id,
                at.feed.resource_type,
                position,
                change_time,
            );
            if changes.send(Ok((change, token))).await.is_err() {
                return;
            }
            at.after = position;
        }
        if read.full {
            continue;
        }
        let poll = if feeds.listening.load(Ordering::Acquire) {
            IDLE_POLL_INTERVAL
        } else {
            POLL_INTERVAL
        };
        at.fresh_since = tokio::select! {
            woken = listen::woken_for(&mut notices, &at.election_id) => woken,
            _ = tokio::time::sleep(poll) => Instant::now(),
            _ = stopping.wait_for(|stop| *stop) => return,
            _ = changes.closed() => return,
        };
    }
}

/// The contract's change type of a stored change.
pub fn change_type(meta: &ChangeMeta) -> Result<crate::pb::v1::ChangeType> {
    use crate::pb::v1::ChangeType;
    Ok(match meta.change_type.as_str() {
        "CREATED" => ChangeType::Created,
        "UPDATED" => ChangeType::Updated,
        "DELETED" => ChangeType::Deleted,
        "UNDELETED" => ChangeType::Undeleted,
        other => {
            return Err(Error::internal(anyhow::anyhow!(
                "stored change of unknown type {other}"
            )));
        }
    })
}
