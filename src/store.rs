//! All SQL of the service, one file per resource. Functions take a connection or an open
//! transaction, so the api layer decides what one transaction holds.

/// SQL assembled only from trusted constants (column lists, lock clauses); values are
/// always bound as parameters, never formatted in.
macro_rules! trusted_sql {
    ($($arg:tt)*) => {
        sqlx::AssertSqlSafe(format!($($arg)*))
    };
}

pub mod audit;
pub mod changes;
pub mod delegations;
pub mod elections;
pub mod figures;
pub mod heads;
pub mod invitations;
pub mod listing;
pub mod meetings;
pub mod observers;
pub mod organizations;
pub mod registration;
pub mod request_ids;
pub mod secrets;
pub mod verification;
