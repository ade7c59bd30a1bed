//! The gRPC services, one file each: decode and validate a request, call the store inside
//! one transaction, encode the response. Prost types stop here.

pub mod audit;
pub mod delegations;
pub mod elections;
pub mod invitations;
pub mod meetings;
pub mod observers;
pub mod organizations;
pub mod point_reads;
pub mod skeleton;
pub mod verification;
pub mod watch;

use chrono::{DateTime, Utc};

use crate::aip::paging::PageTokens;
use crate::clock::Clock;
use crate::database::Database;
use crate::error::{Result, Violations};

/// What every service needs: the database, the page-token signer and the time.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    /// GetObserver's and VerifyAccreditation's reads, coalesced.
    pub point_reads: point_reads::PointReads,
    /// The change feeds' wake-ups, shutdown and retention.
    pub feeds: watch::Feeds,
    pub page_tokens: PageTokens,
    pub clock: Clock,
    /// List totals reused while their election is unchanged.
    pub list_counts: std::sync::Arc<crate::store::listing::ListCounts>,
    /// ListObservers pages kept with their election's position (`store::listing`).
    pub observer_pages:
        std::sync::Arc<crate::store::listing::KeptPages<crate::domain::observer::Observer>>,
    /// Observers of BatchCreateObservers being registered at once, at most one full batch:
    /// a batch of a thousand holds tens of megabytes while it is checked, inserted and
    /// answered, and two at once made the service's peak memory (BENCHMARKS.md).
    pub batch_registrations: std::sync::Arc<tokio::sync::Semaphore>,
    /// CreateObserver's registrations, coalesced.
    pub registrations: observers::Registrations,
    /// Badge keys, the verification URL and the limits on verification.
    pub badges: std::sync::Arc<crate::badge::Badges>,
}

/// An instant as the contract writes it.
pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // Always below 1e9, so it fits.
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A contract timestamp as an instant; out-of-range values are refused.
pub fn from_timestamp(timestamp: &prost_types::Timestamp) -> Result<DateTime<Utc>, String> {
    u32::try_from(timestamp.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .and_then(|nanos| DateTime::from_timestamp(timestamp.seconds, nanos))
        .ok_or_else(|| "is not a valid timestamp".to_owned())
}

/// The election id of a child collection's `parent` (`elections/{election}`).
pub fn parse_parent(parent: &str) -> Result<&str> {
    crate::domain::names::parse_top_level(parent, "elections")
        .map_err(|e| crate::error::Error::invalid("parent", e))
}

/// The election a child resource lives in; NOT_FOUND when it does not exist.
pub async fn require_election(
    conn: &mut sqlx::PgConnection,
    election_id: &str,
) -> Result<crate::domain::election::Election> {
    crate::store::elections::get(conn, election_id, false)
        .await?
        .ok_or_else(|| crate::error::Error::not_found(&format!("elections/{election_id}")))
}

/// A list's check that its election exists, made after its page: rows of the election
/// prove it (their foreign key, in the page's snapshot), so only an empty page costs a
/// statement more.
pub async fn require_election_of_page(
    conn: &mut sqlx::PgConnection,
    election_id: &str,
    page_is_empty: bool,
) -> Result<()> {
    if page_is_empty {
        require_election(conn, election_id).await?;
    }
    Ok(())
}

/// An optional calendar date field: empty means unknown.
pub fn optional_date(
    violations: &mut Violations,
    field: &str,
    value: &str,
) -> Option<chrono::NaiveDate> {
    if value.is_empty() {
        None
    } else {
        violations.check(field, crate::domain::date::parse_date(value))
    }
}

/// `total_size` as the contract types it.
pub fn total_size(total: i64) -> i32 {
    i32::try_from(total).unwrap_or(i32::MAX)
}

/// AIP-164: deleting a deleted resource is NOT_FOUND, undeleting a live one ALREADY_EXISTS;
/// then the caller's etag, if any, must be the current one.
pub fn check_soft_delete(
    name: &str,
    deleting: bool,
    deleted_now: bool,
    current_etag: uuid::Uuid,
    etag_given: &str,
) -> Result<()> {
    match (deleting, deleted_now) {
        (true, true) => return Err(crate::error::Error::not_found(name)),
        (false, false) => {
            return Err(crate::error::Error::new(
                crate::error::Reason::AlreadyExists,
                format!("{name} is not deleted"),
            )
            .with_metadata("resource", name));
        }
        _ => {}
    }
    crate::aip::etag::check(etag_given, current_etag, name)
}
