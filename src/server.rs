//! Builds the tonic router (contract services, health, reflection, layers) and serves it on
//! an injected listener until the shutdown future resolves. Tests bind `127.0.0.1:0`.

mod options;
mod router;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use crate::aip::paging::PageTokens;
use crate::api::AppState;
use crate::api::point_reads::PointReads;
use crate::api::watch::{FeedSettings, Feeds};
use crate::database::{Attempt, Database, DatabaseRoute};
use crate::health::{DatabaseWatch, Readiness};
use crate::listen::Listener;
use crate::retention::Eraser;
use crate::store;
use crate::store::listing::KeptPages;

pub use options::{Limits, ServeOptions, default_point_read_batches};
pub use tls::{ServerTls, TlsFiles};

/// How often forgotten request ids are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Serves until `shutdown` resolves; then readiness goes NOT_SERVING at once, new calls
/// are refused and the calls in flight finish.
pub async fn serve(
    listener: impl Into<Listener>,
    pool: PgPool,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stopping_tx, stopping) = watch::channel(false);
    let state = app_state(&pool, &options, stopping.clone()).await?;
    let services = router::services();
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let readiness = Readiness::new(reporter, services.clone()).await;
    let mut database_watch = DatabaseWatch::new(
        &pool,
        readiness.clone(),
        options.availability.clone(),
        options.health_check_interval,
    );
    // The first check before the first call, so no call is refused for want of one.
    database_watch.check().await;
    tokio::spawn(database_watch.run(stopping.clone()));
    tokio::spawn(purge_expired(
        options.database_route.clone(),
        pool.clone(),
        options.request_id_retention,
        options.change_retention,
        stopping.clone(),
    ));
    if let Some(interval) = options.personal_data_erase_interval {
        let eraser = Eraser {
            db: state.db.clone(),
            clock: options.clock.clone(),
            metrics: options.metrics.clone(),
        };
        tokio::spawn(eraser.run(interval, stopping));
    }

    let availability = options.availability.clone();
    let stopping = async move {
        shutdown.await;
        availability.set_stopping();
        let _ = stopping_tx.send(true);
        readiness.set(false).await;
        tracing::info!("shutdown started: refusing new calls, finishing calls in flight");
    };
    router::run(
        &options,
        state,
        health_service,
        &services,
        listener.into(),
        stopping,
    )
    .await?;
    tracing::info!("all calls finished");
    Ok(())
}

/// What every service shares: the database, coalesced point reads, the change feeds, the
/// page-token signer (its key kept in the database) and the clock.
async fn app_state(
    pool: &PgPool,
    options: &ServeOptions,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<AppState> {
    let key = in_transaction(&options.database_route, pool, |conn| {
        Box::pin(store::secrets::page_token_key(conn))
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot read the page-token key: {e}"))?;
    let page_tokens = PageTokens::new(&key);
    let db = Database {
        pool: pool.clone(),
        availability: options.availability.clone(),
        metrics: options.metrics.clone(),
        route: options.database_route.clone(),
    };
    let feeds = Feeds::start(
        &db,
        stopping,
        FeedSettings {
            retention: options.change_retention,
            identities: options.identities.clone(),
            max_stream_age: options.limits.max_stream_age,
            max_watches_per_agency: options.limits.max_watches_per_agency,
        },
    );
    let point_reads = PointReads::start(
        db.clone(),
        options.limits.point_read_batches,
        options.limits.point_read_cache,
    );
    point_reads.forget_on_change(feeds.notices());
    let registrations = crate::api::observers::Registrations::start(db.clone());
    Ok(AppState {
        point_reads,
        feeds,
        db,
        page_tokens,
        clock: options.clock.clone(),
        badges: options.badges.clone(),
        list_counts: Default::default(),
        observer_pages: Arc::new(KeptPages::new(options.limits.list_cache_rows)),
        batch_registrations: Arc::new(tokio::sync::Semaphore::new(
            crate::api::observers::MAX_BATCH_CREATE,
        )),
        registrations,
    })
}

/// Runs `work` in a transaction of its own and commits it (a transaction pooler lends a
/// session for no less), for work outside calls.
async fn in_transaction<T>(
    route: &DatabaseRoute,
    pool: &PgPool,
    work: impl for<'c> FnOnce(&'c mut PgConnection) -> Attempt<'c, T>,
) -> crate::error::Result<T> {
    let mut transaction = route.begin(pool).await?;
    let done = work(&mut transaction).await?;
    transaction.commit().await?;
    Ok(done)
}

/// Forgets request ids and change-feed entries past their retention, hourly, until shutdown.
async fn purge_expired(
    route: DatabaseRoute,
    pool: PgPool,
    retention: Duration,
    change_retention: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
        let purged = in_transaction(&route, &pool, |conn| {
            Box::pin(store::request_ids::purge(conn, retention))
        });
        match purged.await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "forgot expired request ids"),
            Err(error) => tracing::warn!(%error, "could not purge expired request ids"),
        }
        let purged = in_transaction(&route, &pool, |conn| {
            Box::pin(store::changes::purge(conn, change_retention))
        });
        match purged.await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "forgot change-feed entries past retention"),
            Err(error) => tracing::warn!(%error, "could not purge the change feed"),
        }
    }
}
