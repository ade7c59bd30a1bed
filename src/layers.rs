//! The tower layers every call passes through, outermost first: metrics (`observe`), the
//! bounds of health and reflection streams (`infra_streams`), then — after authorization —
//! load shedding (`shed`) and the call's deadline (`deadline`). Calls that a layer refuses are
//! marked, counted and summarized (`refusals`), and answered once their request has arrived
//! (`after_request_body`). Shedding comes after authorization so that a call refused for its
//! credentials never holds one of the places that authorized callers share.

pub mod deadline;
pub mod infra_streams;
pub mod observe;
pub mod refusals;
pub mod shed;

/// Health checks and reflection are never shed nor given a deadline: a probe must see the
/// truth under overload, and reflection streams live as long as the operator's tool.
fn is_infrastructure(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// What of a refused request's body is read before the refusal is sent, at most.
const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_millis(100);

/// `response`, sent once the rest of the request's body is read, briefly. A response that
/// ends a stream whose request is still arriving makes h2 reset the stream itself, and h2
/// closes a connection after 1,024 such resets (its defence against "MadeYouReset"), failing
/// every call on it: a client refused often enough on one long-lived connection lost it. A
/// unary request's body follows its headers at once; a slower or larger one is answered
/// anyway after the bound.
pub fn after_request_body<B, E>(
    body: B,
    response: http::Response<tonic::body::Body>,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<http::Response<tonic::body::Body>, E>> + Send>,
>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Send,
{
    Box::pin(async move {
        let mut body = std::pin::pin!(body);
        let mut read = 0;
        let drain = async {
            while read < DRAIN_BYTES && !body.is_end_stream() {
                match std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            read += bytes::Buf::remaining(data);
                        }
                    }
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        Ok(response)
    })
}

/// A trailers-only error response for `error`.
fn error_response(error: crate::error::Error) -> http::Response<tonic::body::Body> {
    tonic::Status::from(error).into_http()
}

/// The trailers-only error response of a call refused for `refusal`, marked as refused.
pub fn refused_response(
    error: crate::error::Error,
    refusal: refusals::Refusal,
) -> http::Response<tonic::body::Body> {
    let mut response = error_response(error);
    response.extensions_mut().insert(refusals::Refused(refusal));
    response
}
