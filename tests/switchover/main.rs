//! A PostgreSQL switchover under load (HA.md, "PostgreSQL switchover"): the real binary on a
//! primary with a streaming standby (two local clusters of the test's own, `pg.rs`), reached
//! through a proxy as through CloudNativePG's `-rw` Service; the primary stops mid-load, the
//! standby is promoted and the proxy re-pointed at it. A binary of its own, so that
//! `cargo test --test switchover` runs only these; its tests are named `switchover::…`.

#[path = "../api/common/mod.rs"]
mod common;

mod pg;
mod switchover;
