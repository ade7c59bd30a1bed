//! Everything about PostgreSQL in one place: connecting, creating and migrating the database
//! at start-up (`connect`), how `DB_POOL_SIZE` is shared out (`budget`), and how calls reach
//! it — fail fast while it is down, deadlines, retried transactions, and counting what
//! failed (`calls`).

mod budget;
mod calls;
mod connect;
mod route;

pub use budget::ConnectionBudget;
pub use calls::{Attempt, Autocommit, Database, Tx};
pub use connect::{
    APPLICATION_NAME, MIGRATOR, PING_AFTER_IDLE, Schema, connect_options, direct_options,
    ensure_database, ping_when_idle, pool, prepare,
};
pub use route::DatabaseRoute;
