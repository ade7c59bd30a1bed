//! The tower layers every call passes through, outermost first: metrics (`observe`), load
//! shedding (`shed`), the bounds of health and reflection streams (`infra_streams`), then —
//! after authorization — the call's deadline (`deadline`).

pub mod deadline;
pub mod infra_streams;
pub mod observe;
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
