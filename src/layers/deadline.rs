//! Every call gets a deadline: the client's `grpc-timeout`, capped by the server's default
//! deadline (which also applies when the client sends none). The call is answered
//! DEADLINE_EXCEEDED when it passes, and its database work is bounded by the same instant
//! (`statement_timeout`, see `api::AppState`), so no query outlives the call.
//!
//! The deadline travels with the call as a task-local, so that the database code reaches it
//! without threading it through every handler.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::body::Body;

use crate::error::{Error, Reason};

tokio::task_local! {
    /// The deadline of the call being handled.
    static DEADLINE: Instant;
}

/// The deadline of the current call, if running inside one.
pub fn current_deadline() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// Runs `work` with `deadline`, for database work done outside a handler on behalf of calls.
pub async fn run_with_deadline<T>(deadline: Instant, work: impl Future<Output = T>) -> T {
    DEADLINE.scope(deadline, work).await
}

#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    default_deadline: Duration,
}

impl DeadlineLayer {
    pub fn new(default_deadline: Duration) -> Self {
        DeadlineLayer { default_deadline }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = WithDeadline<S>;

    fn layer(&self, inner: S) -> WithDeadline<S> {
        WithDeadline {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WithDeadline<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S, B> tower::Service<http::Request<B>> for WithDeadline<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if super::is_infrastructure(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let timeout = request
            .headers()
            .get(&GRPC_TIMEOUT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map_or(self.layer.default_deadline, |client| {
                client.min(self.layer.default_deadline)
            });
        let deadline = Instant::now() + timeout;
        Box::pin(async move {
            let call = DEADLINE.scope(deadline, inner.call(request));
            match tokio::time::timeout_at(deadline, call).await {
                Ok(response) => response,
                Err(_) => Ok(super::error_response(Error::new(
                    Reason::DeadlineExceeded,
                    format!(
                        "the call's deadline of {} passed",
                        humantime::format_duration(timeout)
                    ),
                ))),
            }
        })
    }
}

/// Named once: a header looked up by a string is parsed on every lookup.
static GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// `grpc-timeout` per the gRPC HTTP/2 protocol: at most 8 digits and a unit.
fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value.checked_mul(3600)?),
        "M" => Duration::from_secs(value.checked_mul(60)?),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("50m"), Some(Duration::from_millis(50)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
    }
}
