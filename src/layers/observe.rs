//! Counts every call into the server's metrics: started, in flight while running, then its
//! gRPC status code and latency, under the method's labels from the method table (any other
//! path under `unknown`). The code of a successful call is in the trailers at the end of the
//! response body, so the body is watched; an error comes trailers-only, in the headers.
//! Calls an inner layer refused are counted by reason and go into the refusal summary.
//!
//! The same end writes the per-call log line and the span's `rpc.grpc.status_code`, so its
//! `latency_ms` is the whole call, from the request to the trailers, as the metrics measure it
//! (tower-http's end-of-stream hook times the body alone).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body as HttpBody, Frame};
use tokio::time::Instant;
use tonic::Code;
use tonic::body::Body;
use tracing::Span;

use super::refusals::{Refusal, RefusalLog, Refused};
use crate::metrics::methods::{self, Method};
use crate::metrics::{Counted, Metrics};

#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
    refusals: Arc<RefusalLog>,
}

impl ObserveLayer {
    pub fn new(metrics: Arc<Metrics>, refusals: Arc<RefusalLog>) -> Self {
        ObserveLayer { metrics, refusals }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

impl<S, B> tower::Service<http::Request<B>> for Observe<S>
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
        let method = methods::lookup(request.uri().path());
        let metrics = self.layer.metrics.clone();
        let refusals = self.layer.refusals.clone();
        let mut call = CallRecord {
            in_flight: Some(metrics.call_started(method)),
            metrics,
            method,
            start: Instant::now(),
            // Called inside the trace layer's span of this call.
            span: Span::current(),
            refused: false,
        };
        Box::pin(async move {
            let response = inner.call(request).await?;
            if let Some(Refused(refusal)) = response.extensions().get::<Refused>().copied() {
                // The role check refuses a path that names no method; count it as what it is.
                let refusal = if method.is_known() {
                    refusal
                } else {
                    Refusal::UnknownMethod
                };
                call.metrics.call_refused(refusal);
                refusals.note(refusal);
                call.refused = true;
            }
            if let Some(code) = status_code(response.headers()) {
                call.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(ObservedBody {
                    inner: body,
                    call: Some(call),
                })
            }))
        })
    }
}

/// A call being counted; counted as CANCELLED if dropped before its status was seen (the
/// client went away).
struct CallRecord {
    metrics: Arc<Metrics>,
    method: &'static Method,
    start: Instant,
    in_flight: Option<Counted>,
    span: Span,
    /// Refused calls are summed up by `refusals`, not logged one by one: any caller, without
    /// credentials, could otherwise write a line per request.
    refused: bool,
}

impl CallRecord {
    fn finish(&mut self, code: Code) {
        if self.in_flight.take().is_some() {
            let latency = self.start.elapsed();
            self.metrics
                .call_finished(self.method, code, latency.as_secs_f64());
            record_status(&self.span, code);
            if !self.refused {
                log_call(&self.span, code, latency);
            }
        }
    }
}

/// The status as OpenTelemetry's gRPC conventions put it on a server span: the numeric code,
/// and an error status only for the codes that mean the server failed.
fn record_status(span: &Span, code: Code) {
    span.record("rpc.grpc.status_code", code as i64);
    if matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    ) {
        span.record("otel.status_code", "ERROR");
    }
}

/// One line per call: gRPC status code and latency, inside the call's span (method, agency,
/// trace and span ids); at the span's level, and none when the span is off (a debug span
/// under `RUST_LOG=info`).
fn log_call(span: &Span, code: Code, latency: std::time::Duration) {
    let Some(level) = span
        .metadata()
        .filter(|_| !span.is_disabled())
        .map(|metadata| *metadata.level())
    else {
        return;
    };
    let latency_ms = latency.as_micros() as f64 / 1000.0;
    let code = methods::code_name(code);
    if level == tracing::Level::INFO {
        tracing::info!(parent: span, code, latency_ms, "request finished");
    } else {
        tracing::debug!(parent: span, code, latency_ms, "request finished");
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

pin_project_lite::pin_project! {
    struct ObservedBody {
        #[pin]
        inner: Body,
        call: Option<CallRecord>,
    }
}

impl HttpBody for ObservedBody {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_code)
                    && let Some(mut call) = this.call.take()
                {
                    call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut call) = this.call.take() {
                    call.finish(Code::Internal);
                }
            }
            Poll::Ready(None) => {
                if let Some(mut call) = this.call.take() {
                    call.finish(Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Named once: a header looked up by a string is parsed on every lookup.
static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

fn status_code(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get(&GRPC_STATUS)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(Code::from_i32)
}
