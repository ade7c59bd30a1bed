//! The stream a watcher's client receives: each change turned into an event for the caller
//! as the agencies in force see it now, and the stream's end — a revoked caller, its
//! maximum age, a failed read.
//!
//! Events are made here, as the client takes them, not when the change was read: a change
//! that waited in the channel across a reload is shown with the caller's new roles.

use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::Status;

use super::MakeEvent;
use super::shared::Change;
use super::slots::Slot;
use crate::auth::{Caller, IdentityStore, reauthorize};
use crate::error::{Error, Reason};

/// A change read for this watcher, with its resume token; or why the feed ended.
pub type Item = std::result::Result<(Change, String), Status>;

/// What the stream of one watch holds while it is open.
pub struct Watcher<E> {
    pub changes: mpsc::Receiver<Item>,
    pub caller: Caller,
    pub identities: Arc<IdentityStore>,
    pub reloads: watch::Receiver<u64>,
    pub make_event: MakeEvent<E>,
    pub ends_at: Instant,
    /// The agency's watch slot, held until the stream is dropped.
    pub _slot: Slot,
}

impl<E: Send + 'static> Watcher<E> {
    pub fn into_stream(self) -> impl Stream<Item = std::result::Result<E, Status>> + Send {
        futures_util::stream::unfold(Some(self), |watcher| async move {
            let mut watcher = watcher?;
            let ended = match watcher.next().await {
                Next::Event(event) => return Some((Ok(event), Some(watcher))),
                Next::End(status) => status,
                Next::Closed => return None,
            };
            // The slot is freed with the watcher, before the client reads the status.
            drop(watcher);
            Some((Err(ended), None))
        })
    }

    async fn next(&mut self) -> Next<E> {
        let mut reloads_open = true;
        loop {
            tokio::select! {
                // First: a reload decides how the next change may be shown, if at all.
                biased;
                reloaded = self.reloads.changed(), if reloads_open => {
                    if reloaded.is_err() {
                        reloads_open = false;
                        continue;
                    }
                    match reauthorize(&self.identities, &self.caller) {
                        Ok(caller) => self.caller = caller,
                        Err(error) => {
                            tracing::info!(
                                agency = %self.caller.agency,
                                reason = error.reason.as_str(),
                                "watch ended: its caller's rights changed"
                            );
                            return Next::End(error.into());
                        }
                    }
                }
                _ = tokio::time::sleep_until(self.ends_at) => {
                    return Next::End(Error::new(
                        Reason::StreamMaxAge,
                        "the stream reached its maximum age; resume with the resume_token \
                         of the last event received",
                    ).into());
                }
                item = self.changes.recv() => {
                    return match item {
                        Some(Ok((change, token))) => {
                            match (self.make_event)(&self.caller, &change.0, &change.1, token) {
                                Ok(event) => Next::Event(event),
                                Err(error) => Next::End(error.into()),
                            }
                        }
                        Some(Err(status)) => Next::End(status),
                        // The feed stopped: the server is shutting down.
                        None => Next::Closed,
                    };
                }
            }
        }
    }
}

enum Next<E> {
    Event(E),
    End(Status),
    Closed,
}
