//! What a server is built from: its options, limits and TLS, and how they come from the
//! settings.

use std::sync::Arc;
use std::time::Duration;

use super::tls::{ServerTls, TlsFiles};
use crate::auth::IdentityStore;
use crate::badge::Badges;
use crate::clock::Clock;
use crate::config::{LimitSettings, Settings, TlsSettings};
use crate::database::DatabaseRoute;
use crate::health::Availability;
use crate::metrics::Metrics;

/// What the server needs beyond the listener and the pool.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub health_check_interval: Duration,
    pub request_id_retention: Duration,
    /// How long the change feed keeps changes (and resume tokens stay valid).
    pub change_retention: Duration,
    /// How often the background erasure of personal data runs (`crate::retention`); `None`
    /// runs none on this server (tests, unless they opt in with a clock of their own).
    pub personal_data_erase_interval: Option<Duration>,
    pub clock: Clock,
    /// The agencies; `IdentityStore::anonymous()` when none are configured.
    pub identities: Arc<IdentityStore>,
    /// Whether anonymous callers are accepted when no agencies are configured.
    pub allow_anonymous: bool,
    /// TLS (and mutual TLS) for the server, when configured; its certificate follows its
    /// files.
    pub tls: Option<ServerTls>,
    pub limits: Limits,
    /// The server's metrics, also served by the admin port.
    pub metrics: Arc<Metrics>,
    /// Database reachability and shutdown, also read by the admin port's `/readyz`.
    pub availability: Arc<Availability>,
    /// Badge keys, the verification URL and the limits on verification.
    pub badges: Arc<Badges>,
    /// What the pool's connections go through, and where LISTEN connects.
    pub database_route: DatabaseRoute,
}

/// What one caller or connection may ask of the server (see `config::LimitSettings` for each).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent_requests: usize,
    pub max_concurrent_streams: u32,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub default_deadline: Duration,
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    pub max_connection_age: Duration,
    pub max_connection_age_grace: Duration,
    /// Longest life of a watch, health Watch or reflection stream.
    pub max_stream_age: Duration,
    pub max_watches_per_agency: usize,
    /// Health Watch and reflection streams open at once, server-wide.
    pub max_infra_streams: usize,
    /// Of those, how many one peer address may hold.
    pub max_infra_streams_per_peer: usize,
    /// Coalesced GetObserver batches running at once (see `api::point_reads`).
    pub point_read_batches: usize,
    /// Observers the point reads keep, checked against their election's position.
    pub point_read_cache: usize,
    /// Rows of ListObservers pages kept, checked against their election's position.
    pub list_cache_rows: usize,
}

impl Default for Limits {
    /// The defaults of the command line.
    fn default() -> Self {
        Limits::from_settings(&LimitSettings::default())
    }
}

/// One batch in flight per two cores, and at least two: fewer batches in flight make bigger
/// batches, and on a small machine PostgreSQL does less per call that way; but with one, the
/// calls that arrive while it is in PostgreSQL wait for it to come back before theirs can
/// leave (two gave GetObserver a fifth more throughput on 2 cores, BENCHMARKS.md).
pub fn default_point_read_batches() -> usize {
    point_read_batches_for(std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn point_read_batches_for(cores: usize) -> usize {
    (cores / 2).max(2)
}

impl Limits {
    pub fn from_settings(settings: &LimitSettings) -> Self {
        let bytes = |size: bytesize::ByteSize| usize::try_from(size.as_u64()).unwrap_or(usize::MAX);
        Limits {
            max_concurrent_requests: usize::try_from(settings.max_concurrent_requests)
                .unwrap_or(usize::MAX),
            max_concurrent_streams: settings.max_concurrent_streams,
            max_request_bytes: bytes(settings.max_request_bytes),
            max_response_bytes: bytes(settings.max_response_bytes),
            default_deadline: settings.default_deadline,
            http2_keepalive_interval: settings.http2_keepalive_interval,
            http2_keepalive_timeout: settings.http2_keepalive_timeout,
            max_connection_age: settings.max_connection_age,
            max_connection_age_grace: settings.max_connection_age_grace,
            max_stream_age: settings.max_stream_age,
            max_watches_per_agency: usize::try_from(settings.max_watches_per_agency)
                .unwrap_or(usize::MAX),
            max_infra_streams: usize::try_from(settings.max_infra_streams).unwrap_or(usize::MAX),
            max_infra_streams_per_peer: usize::try_from(settings.max_infra_streams_per_peer)
                .unwrap_or(usize::MAX),
            point_read_batches: settings
                .point_read_batches
                .map_or_else(default_point_read_batches, |n| n.max(1)),
            point_read_cache: settings.point_read_cache,
            list_cache_rows: settings.list_cache_rows,
        }
    }
}

impl ServeOptions {
    /// The options of the settings: reads the agencies file and the TLS material, and
    /// refuses anonymous callers on a non-loopback address unless explicitly allowed.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let identities = match &settings.identities.identities {
            Some(path) => IdentityStore::load(path)?,
            None => IdentityStore::anonymous(),
        };
        let allow_anonymous = settings.identities.allow_anonymous;
        let loopback = settings.listen_addr.is_local();
        if !identities.is_configured() && !loopback && !allow_anonymous {
            anyhow::bail!(
                "refusing to serve on {} without an agencies file: give --identities FILE \
                 (IDENTITIES_FILE), or --allow-anonymous (ALLOW_ANONYMOUS=true) to let anyone \
                 call with every role",
                settings.listen_addr
            );
        }
        Ok(ServeOptions {
            health_check_interval: settings.health_check_interval,
            request_id_retention: settings.retention.request_id_retention,
            change_retention: settings.retention.change_retention,
            personal_data_erase_interval: Some(settings.retention.personal_data_erase_interval)
                .filter(|interval| !interval.is_zero()),
            clock: Clock::system(),
            identities: Arc::new(identities),
            allow_anonymous: allow_anonymous || loopback,
            tls: server_tls(&settings.tls)?,
            limits: Limits::from_settings(&settings.limits),
            metrics: Arc::new(Metrics::new()),
            availability: Arc::new(Availability::new()),
            badges: Badges::from_settings(&settings.badges)?,
            database_route: DatabaseRoute::from_settings(&settings.database)?,
        })
    }
}

/// The server's TLS configuration, when a certificate and key are given; with a client CA,
/// agencies may also present client certificates (a bearer token still works without one).
fn server_tls(settings: &TlsSettings) -> anyhow::Result<Option<ServerTls>> {
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        return Ok(None);
    };
    ServerTls::load(&TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: settings.tls_client_ca.clone(),
    })
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_point_read_batches_at_least_then_one_per_two_cores() {
        assert_eq!(point_read_batches_for(1), 2);
        assert_eq!(point_read_batches_for(2), 2);
        assert_eq!(point_read_batches_for(8), 4);
    }
}
