//! A change feed followed across disconnections and restarts.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tonic::codec::Streaming;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Opens a feed's stream after a resume token.
pub(crate) type OpenFeed<E> = Box<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Streaming<E>, Status>> + Send>>
        + Send
        + Sync,
>;

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A change feed followed across disconnections, server restarts and shutdowns: when the
/// stream breaks or ends, [`Feed::next`] reconnects with the last event's resume token
/// (backing off up to 5 s; at once when the stream reached the server's maximum age), so
/// every change arrives exactly once and in commit order.
/// Errors that a reconnection cannot fix (an invalid or expired token, a missing election,
/// missing credentials) are returned.
pub struct Feed<E> {
    open: OpenFeed<E>,
    token_of: fn(&E) -> &str,
    resume_token: String,
    stream: Option<Streaming<E>>,
    backoff: Duration,
}

impl<E> Feed<E> {
    pub(crate) fn new(open: OpenFeed<E>, token_of: fn(&E) -> &str, resume_token: &str) -> Self {
        Feed {
            open,
            token_of,
            resume_token: resume_token.to_owned(),
            stream: None,
            backoff: Duration::from_millis(100),
        }
    }

    /// The token of the last event returned: keep it to resume after a restart of your own.
    pub fn resume_token(&self) -> &str {
        &self.resume_token
    }

    /// Opens the stream now rather than at the first [`Feed::next`]: a feed without a resume
    /// token reports the changes committed after it opened, so open it before taking a
    /// snapshot with List.
    pub async fn open(&mut self) -> Result<(), Status> {
        if self.stream.is_none() {
            self.stream = Some((self.open)(self.resume_token.clone()).await?);
        }
        Ok(())
    }

    /// The next change.
    pub async fn next(&mut self) -> Result<E, Status> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => match (self.open)(self.resume_token.clone()).await {
                    Ok(stream) => self.stream.insert(stream),
                    Err(status) if transient(&status) => {
                        self.wait().await;
                        continue;
                    }
                    Err(status) => return Err(status),
                },
            };
            match stream.message().await {
                Ok(Some(event)) => {
                    self.resume_token = (self.token_of)(&event).to_owned();
                    self.backoff = Duration::from_millis(100);
                    return Ok(event);
                }
                // The server ended the stream (it is shutting down) or it broke: resume.
                Ok(None) => {
                    self.stream = None;
                    self.wait().await;
                }
                // The stream reached the server's maximum age: nothing is wrong, so resume
                // at once.
                Err(status) if reached_max_age(&status) => self.stream = None,
                Err(status) if transient(&status) => {
                    self.stream = None;
                    self.wait().await;
                }
                Err(status) => return Err(status),
            }
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

/// The server ended a stream at its maximum age (UNAVAILABLE / STREAM_MAX_AGE).
fn reached_max_age(status: &Status) -> bool {
    status.code() == Code::Unavailable
        && status
            .get_details_error_info()
            .is_some_and(|info| info.reason == "STREAM_MAX_AGE")
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
