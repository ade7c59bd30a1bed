//! Observer Registry: a gRPC service for international election observation — elections,
//! sending organizations, delegations, observers and meetings — over PostgreSQL.
//!
//! Data flows one way: wire (`pb`) → `api` → `domain` → `store` → PostgreSQL, and back.

/// The generated gRPC contract: messages, server traits and the shipped client.
pub mod pb;

/// Shared AIP mechanics: paging, filters, field masks, request-id idempotency.
pub mod aip;
/// One gRPC service per file: decode and validate, call the store, encode.
pub mod api;
/// Operator commands that talk to a running service through the shipped client.
pub mod cli;
/// The injectable current time.
pub mod clock;
/// Command-line and environment configuration.
pub mod config;
/// Database connection, creation and migration.
pub mod db;
/// Validated domain types and rules; no prost, no SQL.
pub mod domain;
/// The one error type and its mapping to gRPC statuses with rich details.
pub mod error;
/// Readiness and liveness reporting through `grpc.health.v1.Health`.
pub mod health;
/// Builds the tonic router and serves it on an injected listener.
pub mod server;
/// All SQL, one file per resource.
pub mod store;
/// Logging set-up.
pub mod telemetry;
