//! The one LISTEN connection of the server: it turns NOTIFY into wake-ups of the watchers of
//! the election that changed, each stamped with when it arrived (see `shared`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

/// The notice that wakes every watcher: notifications resumed and some may have been lost.
const EVERYONE: &str = "*";
/// The channel NOTIFY uses (see the change-feed migration).
const CHANNEL: &str = "observer_registry_changes";
/// How long to wait before listening again after the connection was lost.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// An election changed (or everything must be read again), as of `at`: a read that starts
/// after `at` sees the commit that caused it, since PostgreSQL notifies after commit.
#[derive(Debug, Clone)]
pub struct Notice {
    pub at: Instant,
    election: Arc<str>,
}

impl Notice {
    /// The election that changed; `None` when every election must be read again.
    pub fn election(&self) -> Option<&str> {
        (&*self.election != EVERYONE).then_some(&*self.election)
    }

    fn new(election: &str) -> Self {
        Notice {
            at: Instant::now(),
            election: election.into(),
        }
    }
}

/// Listens until `stopping` turns true, sending a notice for each notification.
pub async fn listen(
    pool: sqlx::PgPool,
    notices: broadcast::Sender<Notice>,
    listening: Arc<AtomicBool>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let listened = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            listening.store(true, Ordering::Release);
            // Whatever was committed while nobody listened: everyone looks again.
            let _ = notices.send(Notice::new(EVERYONE));
            loop {
                match listener.try_recv().await? {
                    Some(notification) => {
                        let _ = notices.send(Notice::new(notification.payload()));
                    }
                    // The connection was lost and is back: notifications may have been
                    // lost meanwhile, so everyone looks again.
                    None => {
                        let _ = notices.send(Notice::new(EVERYONE));
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
            _ = tokio::time::sleep(RETRY_INTERVAL) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// Resolves when `election` changed (or notices were lost and everything must be read
/// again), with the instant a read must start after to see it.
pub async fn woken_for(notices: &mut broadcast::Receiver<Notice>, election: &str) -> Instant {
    loop {
        match notices.recv().await {
            Ok(notice) if &*notice.election == election || &*notice.election == EVERYONE => {
                return notice.at;
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return Instant::now(),
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}
