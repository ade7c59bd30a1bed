//! Health Watch and reflection streams need no credentials and are never shed, so nothing
//! else bounds them: at most `limit` are open at once across the server (more are refused
//! with RESOURCE_EXHAUSTED / WATCH_LIMIT), and each ends after the maximum stream age with
//! UNAVAILABLE / STREAM_MAX_AGE. Health Check, a unary call, is left alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;

use crate::error::{Error, Reason};

#[derive(Debug, Clone)]
pub struct InfraStreamsLayer {
    permits: Arc<Semaphore>,
    limit: usize,
    max_age: Duration,
}

impl InfraStreamsLayer {
    pub fn new(limit: usize, max_age: Duration) -> Self {
        InfraStreamsLayer {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            max_age,
        }
    }
}

/// The server-streaming methods of health and reflection (reflection has no other kind).
fn is_infra_stream(path: &str) -> bool {
    path == "/grpc.health.v1.Health/Watch" || path.starts_with("/grpc.reflection.")
}

impl<S> tower::Layer<S> for InfraStreamsLayer {
    type Service = InfraStreams<S>;

    fn layer(&self, inner: S) -> InfraStreams<S> {
        InfraStreams {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InfraStreams<S> {
    inner: S,
    layer: InfraStreamsLayer,
}

impl<S, B> tower::Service<http::Request<B>> for InfraStreams<S>
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
        if !is_infra_stream(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            let error = Error::new(
                Reason::WatchLimit,
                format!(
                    "the server has its limit of {} health Watch and reflection streams open",
                    self.layer.limit
                ),
            )
            .with_metadata("limit", self.layer.limit.to_string());
            return Box::pin(std::future::ready(Ok(super::error_response(error))));
        };
        let max_age = self.layer.max_age;
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(response.map(|body| {
                Body::new(Aged {
                    body,
                    _permit: permit,
                    ends: Box::pin(tokio::time::sleep(max_age)),
                    done: false,
                })
            }))
        })
    }
}

/// A stream's body that holds its permit until dropped and ends at the maximum age.
struct Aged {
    body: Body,
    _permit: OwnedSemaphorePermit,
    ends: Pin<Box<tokio::time::Sleep>>,
    /// Trailers were sent: nothing may follow them.
    done: bool,
}

impl http_body::Body for Aged {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.ends.as_mut().poll(cx).is_ready() {
            this.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(max_age_trailers()))));
        }
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = &frame {
            this.done = true;
        }
        if let Poll::Ready(Some(Ok(frame))) = &frame
            && frame.is_trailers()
        {
            this.done = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.body.is_end_stream()
    }
}

/// The trailers of a stream ended at its maximum age: its status, as tonic writes one.
fn max_age_trailers() -> http::HeaderMap {
    let status = Status::from(Error::new(
        Reason::StreamMaxAge,
        "the stream reached its maximum age; open it again",
    ));
    let mut trailers = status.into_http::<()>().into_parts().0.headers;
    // A trailers-only response carries its content type; trailers after data do not.
    trailers.remove(http::header::CONTENT_TYPE);
    trailers
}
