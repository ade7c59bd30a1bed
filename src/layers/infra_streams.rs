//! Health Watch and reflection streams need no credentials and are never shed, so nothing
//! else bounds them: at most `limit` are open at once across the server, and at most
//! `per_peer` of those from one peer address, so that one outsider cannot hold them all
//! (more are refused with RESOURCE_EXHAUSTED / WATCH_LIMIT); each ends after the maximum
//! stream age with UNAVAILABLE / STREAM_MAX_AGE. Health Check, a unary call, is left alone.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::error::{Error, Reason};

#[derive(Debug, Clone)]
pub struct InfraStreamsLayer {
    permits: Arc<Semaphore>,
    limit: usize,
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
    per_peer: usize,
    max_age: Duration,
}

impl InfraStreamsLayer {
    pub fn new(limit: usize, per_peer: usize, max_age: Duration) -> Self {
        InfraStreamsLayer {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            peers: Arc::default(),
            per_peer,
            max_age,
        }
    }

    /// A place for one more stream of `peer`, or the error that refuses it.
    fn admit(&self, peer: Option<IpAddr>) -> Result<Admitted, Error> {
        let refused = |message: String, limit: usize| {
            Error::new(Reason::WatchLimit, message).with_metadata("limit", limit.to_string())
        };
        let peer = match peer {
            Some(ip) => Some(PeerSlot::take(&self.peers, ip, self.per_peer).ok_or_else(|| {
                refused(
                    format!(
                        "this address has its limit of {} health Watch and reflection streams open",
                        self.per_peer
                    ),
                    self.per_peer,
                )
            })?),
            // A Unix socket's peers are local processes: the server-wide bound is enough.
            None => None,
        };
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            refused(
                format!(
                    "the server has its limit of {} health Watch and reflection streams open",
                    self.limit
                ),
                self.limit,
            )
        })?;
        Ok(Admitted {
            _permit: permit,
            _peer: peer,
        })
    }
}

/// The places one admitted stream holds until its body is dropped.
struct Admitted {
    _permit: OwnedSemaphorePermit,
    _peer: Option<PeerSlot>,
}

/// One stream counted against its peer's address; the count is forgotten at zero, so the map
/// is as small as the open streams.
struct PeerSlot {
    peers: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PeerSlot {
    fn take(peers: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, limit: usize) -> Option<Self> {
        let mut counts = peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: peers.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The caller's IP address, over plain TCP or TLS; `None` on a Unix socket.
fn peer_ip<B>(request: &http::Request<B>) -> Option<IpAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .map(TlsConnectInfo::get_ref)
        })
        .and_then(TcpConnectInfo::remote_addr)
        .map(|address| address.ip())
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
        if !is_infra_stream(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let admitted = match self.layer.admit(peer_ip(&request)) {
            Ok(admitted) => admitted,
            Err(error) => {
                return super::after_request_body(
                    request.into_body(),
                    super::error_response(error),
                );
            }
        };
        let max_age = self.layer.max_age;
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(response.map(|body| {
                Body::new(Aged {
                    body,
                    _admitted: admitted,
                    ends: Box::pin(tokio::time::sleep(max_age)),
                    done: false,
                })
            }))
        })
    }
}

/// A stream's body that holds its places until dropped and ends at the maximum age.
struct Aged {
    body: Body,
    _admitted: Admitted,
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
