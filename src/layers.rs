//! The tower layers every call passes through, outermost first: metrics (`observe`), load
//! shedding (`shed`), the bounds of health and reflection streams (`infra_streams`), then —
//! after authorization — the call's deadline (`deadline`). Calls that a layer refuses are
//! marked, counted and summarized (`refusals`).

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
