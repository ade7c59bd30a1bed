//! The background erasure of personal data (API.md, "Retention of personal data"): every
//! interval, each election whose retention period has passed by the service's clock is
//! erased with the code of ErasePersonalData (`api::elections::erase`). Every replica runs
//! it; the database makes each erasure happen once: an election is erased under its row
//! lock, taken with `SKIP LOCKED` (a replica busy with it is left alone), and only while its
//! `personal_data_erase_time` is unset (a replica that comes after sees it set).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::elections::erase::{ERASE_METHOD, erase};
use crate::auth::{Caller, Credential};
use crate::clock::Clock;
use crate::database::Database;
use crate::domain::retention::{self, Trigger};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::store;

/// The actor of the audit events of erasures the service makes on its own.
pub const ACTOR: &str = "observer-registry (retention)";

/// What the background erasure needs.
pub struct Eraser {
    pub db: Database,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

impl Eraser {
    /// Erases due elections every `interval` (the first time at once) until shutdown.
    pub async fn run(self, interval: Duration, mut stopping: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stopping.wait_for(|stopping| *stopping) => return,
            }
            if let Err(error) = self.erase_due().await {
                tracing::warn!(%error, "could not erase personal data past retention");
            }
        }
    }

    /// One pass: every election due by the clock, each in a transaction of its own, so one
    /// failure does not hold up the others. Returns how many this pass erased.
    pub async fn erase_due(&self) -> Result<usize> {
        let now = self.clock.now();
        let candidates = self
            .db
            .in_scope(async {
                let mut conn = self.db.read().await?;
                store::elections::keeping_personal_data(&mut conn).await
            })
            .await?;
        let mut erased = 0;
        for election in candidates
            .iter()
            .filter(|election| retention::is_due(election, now))
        {
            match self.db.in_scope(self.erase_one(&election.id)).await {
                Ok(true) => erased += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(election = %election.name(), %error, "could not erase personal data")
                }
            }
        }
        Ok(erased)
    }

    /// Erases the election if it is still due once locked; `false` when another replica holds
    /// it or has erased it.
    async fn erase_one(&self, id: &str) -> Result<bool> {
        let caller = service_caller();
        let clock = &self.clock;
        let erasure = self
            .db
            .transaction(|tx| {
                let caller = &caller;
                Box::pin(async move {
                    let Some(election) = store::elections::lock_unless_busy(tx, id).await? else {
                        return Ok(None);
                    };
                    let now = clock.now();
                    if !retention::is_due(&election, now) {
                        return Ok(None);
                    }
                    let erasure =
                        erase(tx, caller, &election, now, Trigger::RetentionPassed).await?;
                    let (election_, observers_) = (election.name(), erasure.observers);
                    tx.after_commit(move || {
                        tracing::info!(
                            election = %election_,
                            observers = observers_,
                            "personal data erased: the retention period passed"
                        )
                    });
                    Ok(Some(erasure))
                })
            })
            .await?;
        if erasure.is_some() {
            self.metrics.personal_data_erased();
        }
        Ok(erasure.is_some())
    }
}

/// The service itself as the audit trail's actor.
fn service_caller() -> Caller {
    Caller {
        agency: ACTOR.to_owned(),
        roles: Vec::new(),
        method: ERASE_METHOD.to_owned(),
        credential: Credential::Anonymous,
    }
}
