//! The integration tests, in one binary (one link instead of one per file): a real server on
//! `127.0.0.1:0`, the generated client, a fresh database per test. `tests/faults/` is a binary
//! of its own, because it restarts the PostgreSQL cluster these tests share.

mod common;

mod agencies_file;
mod audit;
mod auth;
mod badges;
mod client_retries;
mod client_streams;
mod client_transport;
mod coalesced_creates;
mod database;
mod decisions;
mod delegations;
mod demo;
mod elections;
mod error_reasons;
mod feeds;
mod figures;
mod health_command;
mod import_export;
mod invitations;
mod meetings;
mod metrics;
mod observers;
mod operations;
mod organizations;
mod paging;
mod production;
mod record;
mod request_ids;
mod retention;
mod streams;
mod telemetry;
mod tls_failures;
mod tls_reload;
mod verification;
mod verification_page;
mod verify_badge;
