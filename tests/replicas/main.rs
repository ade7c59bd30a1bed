//! Several replicas of the service on one database (HA.md): three instances of the real
//! binary over one fresh database per test, driven by the shipped client with its calls
//! spread over the three. A binary of its own, so that `cargo test --test replicas` runs only
//! these; its tests are named `replicas::…`.

#[path = "../api/common/mod.rs"]
mod common;

mod cluster;
mod replicas;
mod roll;
