//! A change feed followed across disconnections and restarts.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use tonic::codec::Streaming;
use tonic::{Code, Status};

use crate::{ErrorDetails, ErrorReason};

/// A pending open of a feed's stream.
type Opening<E> = Pin<Box<dyn Future<Output = Result<Streaming<E>, Status>> + Send>>;

/// Opens a feed's stream after a resume token.
pub(crate) type OpenFeed<E> = Box<dyn Fn(String) -> Opening<E> + Send + Sync>;

/// The first wait before a reconnection.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A change feed followed across disconnections, server restarts and shutdowns: when the
/// stream breaks or ends, the feed reconnects with the last event's resume token (backing
/// off up to 5 s; at once when the stream reached the server's maximum age), so every change
/// arrives exactly once and in commit order.
///
/// Read it with [`Feed::next`], or as a [`Stream`] of `Result<E, Status>` (e.g. with
/// `futures::StreamExt`). It never ends by itself. Errors that a reconnection cannot fix (an
/// invalid or expired token, a missing election, missing credentials) are yielded, and the
/// caller decides: reading on tries again after a backoff.
pub struct Feed<E> {
    open: OpenFeed<E>,
    token_of: fn(&E) -> &str,
    resume_token: String,
    state: State<E>,
    backoff: Duration,
}

/// What a feed is doing between two reads.
enum State<E> {
    /// No stream: the next read opens one.
    Closed,
    Opening(Opening<E>),
    // Boxed: the stream is ten times the size of the other states.
    Open(Box<Streaming<E>>),
    /// Backing off before the next open.
    Waiting(Pin<Box<tokio::time::Sleep>>),
}

impl<E> Feed<E> {
    pub(crate) fn new(open: OpenFeed<E>, token_of: fn(&E) -> &str, resume_token: &str) -> Self {
        Feed {
            open,
            token_of,
            resume_token: resume_token.to_owned(),
            state: State::Closed,
            backoff: INITIAL_BACKOFF,
        }
    }

    /// The token of the last event returned: keep it to resume after a restart of your own.
    pub fn resume_token(&self) -> &str {
        &self.resume_token
    }

    /// Opens the stream now rather than at the first read: a feed without a resume token
    /// reports the changes committed after it opened, so open it before taking a snapshot
    /// with List.
    pub async fn open(&mut self) -> Result<(), Status> {
        if !matches!(self.state, State::Open(_)) {
            let stream = (self.open)(self.resume_token.clone()).await?;
            self.state = State::Open(Box::new(stream));
        }
        Ok(())
    }

    /// The next change. Cancelling it (e.g. in a `select!` or a timeout) loses nothing: the
    /// next call goes on where it stopped.
    pub async fn next(&mut self) -> Result<E, Status> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<E, Status>> {
        loop {
            match &mut self.state {
                State::Closed => {
                    self.state = State::Opening((self.open)(self.resume_token.clone()));
                }
                State::Opening(opening) => match ready!(opening.as_mut().poll(cx)) {
                    Ok(stream) => self.state = State::Open(Box::new(stream)),
                    Err(status) if transient(&status) => self.back_off(),
                    Err(status) => return self.fail(status),
                },
                State::Waiting(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = State::Closed;
                }
                State::Open(stream) => match ready!(Pin::new(&mut **stream).poll_next(cx)) {
                    Some(Ok(event)) => {
                        self.resume_token = (self.token_of)(&event).to_owned();
                        self.backoff = INITIAL_BACKOFF;
                        return Poll::Ready(Ok(event));
                    }
                    // The server ended the stream (it is shutting down) or it broke: resume.
                    None => self.back_off(),
                    // The stream reached the server's maximum age: nothing is wrong, so
                    // resume at once.
                    Some(Err(status)) if reached_max_age(&status) => self.state = State::Closed,
                    Some(Err(status)) if transient(&status) => self.back_off(),
                    Some(Err(status)) => return self.fail(status),
                },
            }
        }
    }

    /// Waits before the next open, longer each time until an event arrives.
    fn back_off(&mut self) {
        self.state = State::Waiting(Box::pin(tokio::time::sleep(self.backoff)));
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Yields `status`; a caller who reads on tries again after a backoff, so one who ignores
    /// the error does not call the service in a tight loop.
    fn fail(&mut self, status: Status) -> Poll<Result<E, Status>> {
        self.back_off();
        Poll::Ready(Err(status))
    }
}

impl<E> Stream for Feed<E> {
    type Item = Result<E, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx).map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Endless.
        (usize::MAX, None)
    }
}

impl<E> std::fmt::Debug for Feed<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Closed => "closed",
            State::Opening(_) => "opening",
            State::Open(_) => "open",
            State::Waiting(_) => "waiting",
        };
        f.debug_struct("Feed")
            .field("resume_token", &self.resume_token)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// The server ended a stream at its maximum age (UNAVAILABLE / STREAM_MAX_AGE).
fn reached_max_age(status: &Status) -> bool {
    status.code() == Code::Unavailable && status.reason() == Some(ErrorReason::StreamMaxAge)
}

/// Failures a reconnection can fix.
fn transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::ResourceExhausted
    )
}
