//! The `observer-registry` binary: configuration → telemetry → run.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;

use observer_registry::admin::{self, AdminState};
use observer_registry::api::verification::Verifier;
use observer_registry::cli::{self, Cli, Command};
use observer_registry::config::Settings;
use observer_registry::database::Database;
use observer_registry::verify_http::{self, VerifyHttp};
use observer_registry::{database, server, telemetry};

/// See Cargo.toml for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    runtime(cli.settings.limits.worker_threads())?.block_on(run(cli))
}

/// tokio's multi-threaded runtime with `workers` threads (`WORKER_THREADS`), without the LIFO
/// slot when tokio allows turning it off (`.cargo/config.toml`): with it, the task a finished
/// call wakes, hyper's connection task, runs at once, and so writes each answer to its socket
/// alone. Without it, the answers of one coalesced batch of point reads leave in one write
/// (BENCHMARKS.md, "One write per batch").
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers).enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let telemetry = &cli.settings.telemetry;
    let _telemetry = telemetry::init(telemetry.log_format, telemetry.otlp_endpoint.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            cli.settings.log();
            // The migrations run on one connection, under an advisory lock.
            let availability = Default::default();
            database::prepare(
                &cli.settings.database,
                1,
                database::Schema::Migrate,
                &availability,
            )
            .await?
            .close()
            .await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            cli.settings.log();
            serve(cli.settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ImportObservers(args) => cli::import::run(&args).await,
        Command::ExportObservers(args) => cli::export::run(&args).await,
        Command::Badges(args) => cli::badges::run(&args).await,
        Command::Demo(args) => cli::demo::run(&args).await,
        Command::Health(args) => cli::health::run(&args).await,
        Command::BadgeKey(args) => cli::badge_key::run(&args),
        Command::VerifyBadge(args) => cli::verify_badge::run(&args).await,
        Command::HashToken => {
            let mut token = String::new();
            std::io::stdin().read_line(&mut token)?;
            anyhow::ensure!(!token.trim().is_empty(), "give the token on standard input");
            println!(
                "{}",
                observer_registry::auth::identities::hash_token(&token)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut options = server::ServeOptions::from_settings(&settings)?;
    let budget = database::ConnectionBudget::new(
        settings.database.pool_size,
        options.limits.point_read_batches,
    )?;
    if budget.point_read_batches < options.limits.point_read_batches {
        tracing::warn!(
            asked = options.limits.point_read_batches,
            running = budget.point_read_batches,
            "fewer point-read batches than asked: DB_POOL_SIZE leaves no more connections"
        );
    }
    options.limits.point_read_batches = budget.point_read_batches;
    tracing::info!(
        db_pool_size = budget.total,
        calls = budget.calls,
        point_read_batches = budget.point_read_batches,
        change_feed = 1,
        health_check = 1,
        "database connections"
    );
    reload_identities(
        options.identities.clone(),
        settings.identities.identities.clone(),
        settings.identities.identities_reload_interval,
    );
    let schema = if settings.database.migrates_at_start() {
        database::Schema::Migrate
    } else {
        database::Schema::Check
    };
    let pool = database::prepare(
        &settings.database,
        budget.calls,
        schema,
        &options.availability,
    )
    .await?;
    let listener = settings.listen_addr.bind().await?;
    let admin_listener = TcpListener::bind(settings.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.metrics_addr))?;
    tracing::info!(address = %admin_listener.local_addr()?, "serving metrics and probes over HTTP");
    tracing::info!(address = %listener.local_addr()?, "serving gRPC");
    let (admin_stop, admin_stopped) = watch::channel(false);
    let stopped = move || {
        let mut stopped = admin_stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let verify_routes = VerifyHttp::new(Verifier::new(
        Database {
            pool: pool.clone(),
            availability: options.availability.clone(),
            metrics: options.metrics.clone(),
            route: options.database_route.clone(),
        },
        options.clock.clone(),
        options.badges.clone(),
    ))
    .routes();
    let (beside_admin, verify) = match settings.badges.verify_addr {
        Some(address) => {
            let verify_listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?;
            tracing::info!(address = %verify_listener.local_addr()?, "serving verification over HTTP");
            let verify = tokio::spawn(verify_http::serve(
                verify_listener,
                verify_routes,
                stopped(),
            ));
            (axum::Router::new(), Some(verify))
        }
        None => (verify_routes, None),
    };
    let admin = tokio::spawn(admin::serve(
        admin_listener,
        AdminState {
            metrics: options.metrics.clone(),
            availability: options.availability.clone(),
            pool: pool.clone(),
        },
        beside_admin,
        stopped(),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut stopped = stop_rx.clone();
    let server = server::serve(listener, pool.clone(), options, async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });

    let mut stopped = stop_rx;
    let grace_period = settings.shutdown_grace_period;
    tokio::select! {
        result = server => result?,
        _ = async {
            let _ = stopped.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace_period).await;
        } => tracing::warn!(?grace_period, "grace period over; exiting with calls still in flight"),
    }
    let _ = admin_stop.send(true);
    if let Ok(Err(error)) = admin.await {
        tracing::warn!(error = format!("{error:#}"), "admin port");
    }
    if let Some(verify) = verify
        && let Ok(Err(error)) = verify.await
    {
        tracing::warn!(error = format!("{error:#}"), "verification port");
    }
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the agencies file on SIGHUP and when its modification time changes (checked
/// every `interval`: Kubernetes updates a mounted Secret in place and sends no signal).
/// Connections stay open, and a file with a mistake leaves the agencies in force.
fn reload_identities(
    identities: std::sync::Arc<observer_registry::auth::IdentityStore>,
    path: Option<std::path::PathBuf>,
    interval: std::time::Duration,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered before serving: a SIGHUP must never fall to the default action (exit).
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; the agencies file will not be reloaded");
            return;
        };
        let modified = move || {
            path.as_ref()
                .and_then(|path| std::fs::metadata(path).ok()?.modified().ok())
        };
        tokio::spawn(async move {
            let mut last_modified = modified();
            let mut poll = tokio::time::interval(interval);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    hangup = hangups.recv() => if hangup.is_none() { return },
                    _ = poll.tick() => {
                        let now = modified();
                        if now == last_modified {
                            continue;
                        }
                        last_modified = now;
                    }
                }
                match identities.reload() {
                    Ok(agencies) => tracing::info!(agencies, "agencies file reloaded"),
                    Err(error) => tracing::error!(
                        error = format!("{error:#}"),
                        "agencies file not reloaded; the previous one stays in force"
                    ),
                }
            }
        });
    }
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => tracing::info!("SIGINT received"),
                    _ = terminate.recv() => tracing::info!("SIGTERM received"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
