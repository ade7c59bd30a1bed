//! PostgreSQL restarted under the writers' feet (`faults.rs`): a binary of its own, since it
//! restarts the cluster every other test uses, and cargo runs test binaries one after another.
//! Its tests are named `faults::…`, so `cargo test -- --skip faults::` leaves them out.

#[path = "../api/common/mod.rs"]
mod common;

mod faults;
