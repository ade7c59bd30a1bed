//! Global load shedding: at most `limit` calls are handled at once across all connections;
//! a call beyond that is refused at once with RESOURCE_EXHAUSTED / OVERLOADED instead of
//! waiting in an unbounded queue, so latency stays bounded and goodput near peak. Shed calls
//! are logged in the summary of refused calls (`refusals`), not one line each.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tonic::body::Body;

use super::refusals::Refusal;
use crate::error::{Error, Reason};
use crate::metrics::{Metrics, methods};

#[derive(Debug, Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
    limit: usize,
    metrics: Arc<Metrics>,
}

impl ShedLayer {
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> Self {
        ShedLayer {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            metrics,
        }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    layer: ShedLayer,
}

impl<S, B> tower::Service<http::Request<B>> for Shed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Send,
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
        let path = request.uri().path();
        if super::is_infrastructure(path) {
            return Box::pin(inner.call(request));
        }
        match self.layer.permits.clone().try_acquire_owned() {
            Ok(permit) => Box::pin(async move {
                let response = inner.call(request).await;
                drop(permit);
                response
            }),
            Err(_) => {
                self.layer.metrics.call_shed(methods::lookup(path));
                let error = Error::new(
                    Reason::Overloaded,
                    format!(
                        "the server is handling its limit of {} calls; retry with backoff",
                        self.layer.limit
                    ),
                );
                super::after_request_body(
                    request.into_body(),
                    super::refused_response(error, Refusal::Overloaded),
                )
            }
        }
    }
}
