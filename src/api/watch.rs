//! The change feed behind WatchObservers, WatchDelegations and WatchMeetings.
//!
//! The `changes` table is the source of truth: each watcher reads it from its own position,
//! in commit order, a batch at a time, and sends what it read before reading more — so a slow
//! consumer only slows its own reads (tonic's bounded channel pushes back) and one far behind
//! is served from the table, never from memory. LISTEN/NOTIFY only wakes watchers up; a lost
//! notification costs at most a poll interval. A stream ends when the server shuts down, and
//! with UNAVAILABLE when the database is lost: the client resumes with its last token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgRow};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::aip::resume_token;
use crate::api::AppState;
use crate::error::{Error, Result};
use crate::store;
use crate::store::changes::{ChangeMeta, Feed};

/// Changes read per query.
const BATCH: i64 = 256;
/// Watchers look again this often while notifications are not coming through…
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// …and this often while they are (a safety net only): idle watchers cost the database
/// next to nothing.
const IDLE_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// The notice that wakes every watcher: notifications resumed and some may have been lost.
const EVERYONE: &str = "*";
/// The channel NOTIFY uses (see the change-feed migration).
const CHANNEL: &str = "observer_registry_changes";

/// What the feeds share: who to wake when an election changes, when to stop, how long
/// tokens stay valid.
#[derive(Debug, Clone)]
pub struct Feeds {
    notices: broadcast::Sender<Arc<str>>,
    /// Whether LISTEN is in place, so that watchers can rely on being woken.
    listening: Arc<AtomicBool>,
    stopping: watch::Receiver<bool>,
    pub retention: Duration,
}

impl Feeds {
    /// Starts the listener that turns NOTIFY into wake-ups, until `stopping` turns true.
    pub fn start(pool: sqlx::PgPool, stopping: watch::Receiver<bool>, retention: Duration) -> Self {
        let (notices, _) = broadcast::channel(1024);
        // LISTEN holds its connection for good: one of its own, not one of the calls' pool.
        let listener_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*pool.connect_options()).clone());
        let listening = Arc::new(AtomicBool::new(false));
        tokio::spawn(listen(
            listener_pool,
            notices.clone(),
            listening.clone(),
            stopping.clone(),
        ));
        Feeds {
            notices,
            listening,
            stopping,
            retention,
        }
    }
}

async fn listen(
    pool: sqlx::PgPool,
    notices: broadcast::Sender<Arc<str>>,
    listening: Arc<AtomicBool>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let listened = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            listening.store(true, Ordering::Release);
            // Whatever was committed while nobody listened: everyone looks again.
            let _ = notices.send(EVERYONE.into());
            loop {
                match listener.try_recv().await? {
                    Some(notification) => {
                        let _ = notices.send(notification.payload().into());
                    }
                    // The connection was lost and is back: notifications may have been
                    // lost meanwhile, so everyone looks again.
                    None => {
                        let _ = notices.send(EVERYONE.into());
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listened => {
                listening.store(false, Ordering::Release);
                if let Err(error) = result {
                    tracing::debug!(%error, "change notifications interrupted; watchers poll meanwhile");
                }
            }
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// Turns a change and its row into the event sent to the client (with the token given).
pub type MakeEvent<E> = Box<dyn Fn(&ChangeMeta, &PgRow, String) -> Result<E> + Send + Sync>;

impl AppState {
    /// Starts a watch of `feed` in `election_id` after `resume_token` (or after the last
    /// change committed now, without one).
    pub async fn watch<E: Send + 'static>(
        &self,
        feed: Feed,
        election_id: &str,
        resume_token: &str,
        make_event: MakeEvent<E>,
    ) -> Result<ReceiverStream<std::result::Result<E, Status>>> {
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
        let mut conn = self.db.connection().await?;
        crate::api::require_election(&mut conn, election_id).await?;
        let start_after = match resumed_after {
            Some(position) => position,
            None => store::changes::last_position(&mut conn, election_id).await?,
        };
        drop(conn);
        let (events, stream) = mpsc::channel(64);
        tokio::spawn(follow(
            self.clone(),
            feed,
            election_id.to_owned(),
            start_after,
            make_event,
            events,
        ));
        Ok(ReceiverStream::new(stream))
    }
}

async fn follow<E>(
    state: AppState,
    feed: Feed,
    election_id: String,
    mut after: i64,
    make_event: MakeEvent<E>,
    events: mpsc::Sender<std::result::Result<E, Status>>,
) {
    let mut notices = state.feeds.notices.subscribe();
    let mut stopping = state.feeds.stopping.clone();
    loop {
        if *stopping.borrow() {
            return;
        }
        let batch = async {
            let mut conn = state.db.connection().await?;
            store::changes::after(&mut conn, &feed, &election_id, after, BATCH).await
        }
        .await;
        let batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                let _ = events.send(Err(error.into())).await;
                return;
            }
        };
        let full = batch.len() == usize::try_from(BATCH).unwrap_or(usize::MAX);
        for (meta, row) in &batch {
            let token = resume_token::issue(
                &state.page_tokens,
                &election_id,
                feed.resource_type,
                meta.position,
                meta.change_time,
            );
            let event = make_event(meta, row, token).map_err(Status::from);
            let failed = event.is_err();
            if events.send(event).await.is_err() || failed {
                return;
            }
            after = meta.position;
        }
        if full {
            continue;
        }
        let poll = if state.feeds.listening.load(Ordering::Acquire) {
            IDLE_POLL_INTERVAL
        } else {
            POLL_INTERVAL
        };
        tokio::select! {
            _ = woken_for(&mut notices, &election_id) => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
            _ = events.closed() => return,
        }
    }
}

/// Resolves when `election` changed (or notices were lost and everything must be re-read).
async fn woken_for(notices: &mut broadcast::Receiver<Arc<str>>, election: &str) {
    loop {
        match notices.recv().await {
            Ok(changed) if &*changed == election || &*changed == EVERYONE => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
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
