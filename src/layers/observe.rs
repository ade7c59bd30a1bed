//! Counts every call into the server's metrics: started, in flight while running, then its
//! gRPC status code and latency, under the method's labels from the method table (any other
//! path under `unknown`). The code of a successful call is in the trailers at the end of the
//! response body, so the body is watched; an error comes trailers-only, in the headers.
//! Calls an inner layer refused are counted by reason and go into the refusal summary.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body as HttpBody, Frame};
use tokio::time::Instant;
use tonic::Code;
use tonic::body::Body;

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
}

impl CallRecord {
    fn finish(&mut self, code: Code) {
        if self.in_flight.take().is_some() {
            self.metrics
                .call_finished(self.method, code, self.start.elapsed().as_secs_f64());
        }
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

fn status_code(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(Code::from_i32)
}
