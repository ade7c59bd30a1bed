//! The channel under every service client: it adds the token and the trace context, gives a
//! call the default deadline, and repeats the calls that are safe to repeat.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderValue;
use http_body_util::BodyExt;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, StdError};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::ServiceExt;
use tower::retry::backoff::{Backoff, ExponentialBackoffMaker, MakeBackoff};
use tower::util::rng::HasherRng;

use crate::http2::Http2Transport;
use crate::methods::{self, Method, Retry};
use crate::request_id::ensure_request_id;
use crate::{RetryPolicy, TlsFailure, trace_context};

/// A channel to the service that authenticates, traces, times out and retries every call;
/// the generated service clients run over it. See [`RetryPolicy`] for what is repeated.
#[derive(Clone)]
pub struct RegistryChannel {
    inner: Inner,
    settings: Arc<Settings>,
}

/// What carries the calls: tonic's `Channel`, or HTTP/2 connections driven directly (see
/// [`Transport`](crate::Transport)).
#[derive(Clone)]
pub(crate) enum Inner {
    Channel(Channel),
    Http2(Http2Transport),
}

impl tower::Service<http::Request<Body>> for Inner {
    type Response = http::Response<Body>;
    type Error = StdError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Inner::Channel(channel) => channel.poll_ready(cx).map_err(Into::into),
            Inner::Http2(transport) => transport.poll_ready(cx),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self {
            Inner::Channel(channel) => {
                let call = channel.call(request);
                Box::pin(async move { Ok(call.await?) })
            }
            Inner::Http2(transport) => transport.call(request),
        }
    }
}

struct Settings {
    authorization: Option<HeaderValue>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    backoff: ExponentialBackoffMaker,
}

impl RegistryChannel {
    pub(crate) fn new(
        inner: Inner,
        authorization: Option<HeaderValue>,
        timeout: Option<Duration>,
        retry: RetryPolicy,
    ) -> Self {
        // An invalid policy (max below min, a jitter out of range) falls back to the default
        // rather than fail a connection.
        let backoff = ExponentialBackoffMaker::new(
            retry.initial_backoff,
            retry.max_backoff,
            retry.jitter,
            HasherRng::default(),
        )
        .or_else(|_| {
            let default = RetryPolicy::default();
            ExponentialBackoffMaker::new(
                default.initial_backoff,
                default.max_backoff,
                default.jitter,
                HasherRng::default(),
            )
        })
        .unwrap_or_default();
        RegistryChannel {
            inner,
            settings: Arc::new(Settings {
                authorization,
                timeout,
                retry,
                backoff,
            }),
        }
    }
}

impl tower::Service<http::Request<Body>> for RegistryChannel {
    type Response = http::Response<Body>;
    type Error = StdError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each attempt waits for the inner channel's readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let headers = request.headers_mut();
        if let Some(authorization) = &self.settings.authorization {
            headers.insert(http::header::AUTHORIZATION, authorization.clone());
        }
        // Here, not in the future: this runs inside the caller's span.
        trace_context::inject(headers);
        let (inner, settings) = (self.inner.clone(), self.settings.clone());
        Box::pin(send(inner, settings, request))
    }
}

async fn send(
    inner: Inner,
    settings: Arc<Settings>,
    mut request: http::Request<Body>,
) -> Result<http::Response<Body>, StdError> {
    let method = methods::find(request.uri().path());
    let streaming = method.is_some_and(|m| m.server_streaming || m.client_streaming);
    let timeout =
        grpc_timeout(request.headers()).or(if streaming { None } else { settings.timeout });
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let retry = match method {
        Some(Method {
            retry,
            client_streaming: false,
            ..
        }) if settings.retry.max_attempts > 1 => *retry,
        _ => Retry::Never,
    };
    if retry == Retry::Never {
        if let Some(timeout) = timeout {
            set_grpc_timeout(request.headers_mut(), timeout);
        }
        let response = within(deadline, inner.oneshot(request)).await?;
        return response.map_err(connection_failed);
    }

    let (parts, body) = request.into_parts();
    let mut message = body.collect().await?.to_bytes();
    let mut max_attempts = settings.retry.max_attempts;
    if let Retry::WithRequestId { field } = retry {
        match ensure_request_id(message.clone(), field) {
            Some(with_id) => message = with_id,
            // A frame the client cannot read may lack an id: send it once.
            None => max_attempts = 1,
        }
    }
    let server_streaming = method.is_some_and(|m| m.server_streaming);
    let mut backoff = settings.backoff.clone().make_backoff();
    let mut attempt = 1;
    loop {
        let mut request = http::Request::from_parts(parts.clone(), Body::new(buffered(&message)));
        if let Some(deadline) = deadline {
            set_grpc_timeout(
                request.headers_mut(),
                deadline.saturating_duration_since(Instant::now()),
            );
        }
        let outcome = within(deadline, attempt_call(&inner, request, server_streaming)).await?;
        let retryable = match &outcome {
            Outcome::Answered(_) => false,
            Outcome::Refused(_, code) => {
                matches!(code, Code::Unavailable | Code::ResourceExhausted)
            }
            // A certificate the other side refuses stays refused.
            Outcome::Broken(error) => TlsFailure::find(error.as_ref()).is_none(),
        };
        if !retryable || attempt >= max_attempts {
            return outcome.into_result();
        }
        let wait = backoff.next_backoff();
        if deadline.is_some_and(|deadline| wait.deadline() >= deadline) {
            return outcome.into_result();
        }
        tracing::debug!(
            method = parts.uri.path(),
            attempt,
            failure = %outcome.describe(),
            wait_ms = wait.deadline().saturating_duration_since(Instant::now()).as_millis() as u64,
            "the call failed; trying again"
        );
        wait.await;
        attempt += 1;
    }
}

/// What one attempt came to.
enum Outcome {
    /// An answer to hand to the caller as it is: a result, a refusal not worth repeating, or
    /// a stream that has begun.
    Answered(http::Response<Body>),
    /// A refusal with its code, perhaps worth repeating.
    Refused(http::Response<Body>, Code),
    /// No answer: the connection failed or broke.
    Broken(StdError),
}

impl Outcome {
    /// What went wrong, for the retry's log event.
    fn describe(&self) -> String {
        match self {
            Outcome::Answered(_) => "answered".to_owned(),
            Outcome::Refused(_, code) => format!("{code:?}"),
            Outcome::Broken(error) => error.to_string(),
        }
    }

    fn into_result(self) -> Result<http::Response<Body>, StdError> {
        match self {
            Outcome::Answered(response) | Outcome::Refused(response, _) => Ok(response),
            Outcome::Broken(error) => Err(connection_failed(error)),
        }
    }
}

/// A call that got no answer fails with UNAVAILABLE, as gRPC names a connection failure,
/// keeping the transport error as its source. tonic would say CANCELLED ("operation was
/// canceled") or UNKNOWN ("transport error") for a connection the server closed, which
/// read as if the caller or the service had done something. TLS failures keep their own
/// error, which [`TlsFailure`] reads.
fn connection_failed(error: StdError) -> StdError {
    if TlsFailure::find(error.as_ref()).is_some() || error.is::<Status>() {
        return error;
    }
    // The whole chain: "transport error" alone does not say that the connection was refused.
    // (Layers that repeat their source's words are said once.)
    let mut message = format!("no answer from the service: {error}");
    let mut last = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if cause_text != last {
            message.push_str(&format!(": {cause_text}"));
        }
        last = cause_text;
        source = cause.source();
    }
    let mut status = Status::unavailable(message);
    status.set_source(std::sync::Arc::from(error));
    Box::new(status)
}

/// Sends one attempt. A unary answer is read whole, since its status may come in the
/// trailers; a stream is handed on once its headers show it began.
async fn attempt_call(
    inner: &Inner,
    request: http::Request<Body>,
    server_streaming: bool,
) -> Outcome {
    let response = match inner.clone().oneshot(request).await {
        Ok(response) => response,
        Err(error) => return Outcome::Broken(error),
    };
    if let Some(code) = grpc_status(response.headers()) {
        return refused_or_answered(response, code);
    }
    if server_streaming {
        return Outcome::Answered(response);
    }
    let (parts, body) = response.into_parts();
    let collected = match body.collect().await {
        Ok(collected) => collected,
        Err(error) => return Outcome::Broken(error.into()),
    };
    let trailers = collected.trailers().cloned();
    let code = trailers.as_ref().and_then(grpc_status);
    let data = collected.to_bytes();
    let body = buffered(&data).with_trailers(async move { trailers.map(Ok) });
    let response = http::Response::from_parts(parts, Body::new(body));
    match code {
        Some(code) => refused_or_answered(response, code),
        // No status at all: the stream ended early.
        None => Outcome::Broken(Box::new(Status::unavailable(
            "the service's answer ended without a status",
        ))),
    }
}

fn refused_or_answered(response: http::Response<Body>, code: Code) -> Outcome {
    if code == Code::Ok {
        Outcome::Answered(response)
    } else {
        Outcome::Refused(response, code)
    }
}

/// A body holding one buffered message.
fn buffered(bytes: &Bytes) -> http_body_util::Full<Bytes> {
    http_body_util::Full::new(bytes.clone())
}

/// Runs `future` until `deadline`, after which the call ends with DEADLINE_EXCEEDED.
async fn within<T>(
    deadline: Option<Instant>,
    future: impl Future<Output = T>,
) -> Result<T, StdError> {
    match deadline {
        None => Ok(future.await),
        Some(deadline) => tokio::time::timeout_at(deadline, future)
            .await
            // Boxed as the error itself: `.into()` would box the box, and tonic, finding no
            // `Status` at the top, would answer UNKNOWN.
            .map_err(|_| -> StdError {
                Box::new(Status::deadline_exceeded("the call's deadline passed"))
            }),
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from_i32)
}

/// The `grpc-timeout` a caller set with `Request::set_timeout`.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Writes `timeout` as `grpc-timeout`, in the finest unit that fits its 8 digits.
fn set_grpc_timeout(headers: &mut http::HeaderMap, timeout: Duration) {
    const MAX: u128 = 99_999_999;
    let value = [
        (timeout.as_nanos(), "n"),
        (timeout.as_micros(), "u"),
        (timeout.as_millis(), "m"),
        (u128::from(timeout.as_secs()), "S"),
        (u128::from(timeout.as_secs() / 60), "M"),
        (u128::from(timeout.as_secs() / 3600), "H"),
    ]
    .into_iter()
    .find(|(amount, _)| *amount <= MAX)
    .map(|(amount, unit)| format!("{amount}{unit}"))
    .unwrap_or_else(|| format!("{MAX}H"));
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert("grpc-timeout", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_round_trip() {
        for timeout in [
            Duration::from_nanos(1),
            Duration::from_millis(250),
            Duration::from_secs(30),
            Duration::from_secs(86_400 * 30),
        ] {
            let mut headers = http::HeaderMap::new();
            set_grpc_timeout(&mut headers, timeout);
            let read = grpc_timeout(&headers).unwrap();
            // Coarser units round down, by less than one unit of the one chosen.
            assert!(read <= timeout && timeout - read < timeout / 1000 + Duration::from_nanos(1));
        }
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", HeaderValue::from_static("2S"));
        assert_eq!(grpc_timeout(&headers), Some(Duration::from_secs(2)));
        headers.insert("grpc-timeout", HeaderValue::from_static("S"));
        assert_eq!(grpc_timeout(&headers), None);
    }
}
