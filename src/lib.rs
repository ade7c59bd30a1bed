//! Observer Registry: a gRPC service for international election observation — elections,
//! sending organizations, delegations, observers and meetings — over PostgreSQL.
//!
//! Data flows one way: wire (`pb`) → `api` → `domain` → `store` → PostgreSQL, and back.

/// The generated gRPC contract: the client crate's messages and stubs, and the server traits.
pub mod pb;

/// Connecting to the service as a partner: TLS, client certificates, bearer tokens. The crate
/// `observer-registry-client`, under the name it had before it became a crate of its own.
pub use observer_registry_client as client;

/// The admin HTTP port: metrics and probes.
#[cfg(feature = "server")]
pub mod admin;
/// Shared AIP mechanics: paging, filters, field masks, request-id idempotency.
#[cfg(feature = "server")]
pub mod aip;
/// One gRPC service per file: decode and validate, call the store, encode.
#[cfg(feature = "server")]
pub mod api;
/// Who may call what: identities, roles, the authorizing layer.
#[cfg(feature = "server")]
pub mod auth;
/// Badges: the keys they are signed and verified with, and the printable card.
#[cfg(feature = "server")]
pub mod badge;
/// The command line; operator commands talk to a running service through the shipped client.
#[cfg(feature = "server")]
pub mod cli;
/// The injectable current time.
#[cfg(feature = "server")]
pub mod clock;
/// The server's settings from flags and environment, grouped by owner.
#[cfg(feature = "server")]
pub mod config;
/// PostgreSQL: connecting, migrating, and how calls reach it (fail fast, deadlines,
/// retried transactions, database-error metrics).
#[cfg(feature = "server")]
pub mod database;
/// Validated domain types and rules; no prost, no SQL.
#[cfg(feature = "server")]
pub mod domain;
/// The one error type and its mapping to gRPC statuses with rich details.
#[cfg(feature = "server")]
pub mod error;
/// Readiness and liveness reporting through `grpc.health.v1.Health`.
#[cfg(feature = "server")]
pub mod health;
/// The tower layers of every call: metrics, load shedding, deadlines.
#[cfg(feature = "server")]
pub mod layers;
/// TCP or Unix-socket listening.
#[cfg(feature = "server")]
pub mod listen;
/// Prometheus metrics of a server.
#[cfg(feature = "server")]
pub mod metrics;
/// The background erasure of personal data past its election's retention period.
#[cfg(feature = "server")]
pub mod retention;
/// Builds the tonic router and serves it on an injected listener.
#[cfg(feature = "server")]
pub mod server;
/// All SQL, one file per resource.
#[cfg(feature = "server")]
pub mod store;
/// Logging set-up.
#[cfg(feature = "server")]
pub mod telemetry;
/// Verification over plain HTTP for phones: the JSON check, the keys and the page.
#[cfg(feature = "server")]
pub mod verify_http;
