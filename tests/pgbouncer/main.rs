//! The service behind PgBouncer in transaction mode (HA.md, "Behind PgBouncer"): Debian's
//! PgBouncer (1.18, which tracks no prepared statements) started per test on a free port
//! with a pool of two server connections, the real binary on it with
//! `--database-pooler transaction` and its LISTEN on a direct connection, driven by the
//! shipped client. A binary of its own, so that `cargo test --test pgbouncer` runs only these;
//! its tests are named `pgbouncer::…`. Without PgBouncer installed they fail, saying how to
//! install it.

#[path = "../api/common/mod.rs"]
mod common;

mod bouncer;
mod pgbouncer;
