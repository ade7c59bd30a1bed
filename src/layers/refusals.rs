//! Calls refused before any handler ran — no or unknown credentials, a missing role, a path
//! that names no method, a full server — are logged as one summary line a second at most,
//! with counts by reason. A line per refused call would let any caller, without credentials,
//! write as much log as it sends requests; the metrics count every call all the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Why a layer refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No credentials, or credentials of no agency.
    Unauthenticated,
    /// The agency lacks the role the method needs.
    PermissionDenied,
    /// The path names no method of this server.
    UnknownMethod,
    /// The server was at its concurrency limit.
    Overloaded,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::Unauthenticated,
        Refusal::PermissionDenied,
        Refusal::UnknownMethod,
        Refusal::Overloaded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::PermissionDenied => "permission_denied",
            Refusal::UnknownMethod => "unknown_method",
            Refusal::Overloaded => "overloaded",
        }
    }

    fn index(self) -> usize {
        match self {
            Refusal::Unauthenticated => 0,
            Refusal::PermissionDenied => 1,
            Refusal::UnknownMethod => 2,
            Refusal::Overloaded => 3,
        }
    }
}

/// Put in the extensions of a response that a layer refused, so that the outer layers count
/// it (`observe`) and leave it out of the per-call log (also `observe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused(pub Refusal);

/// The refused calls of one summary line, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub unauthenticated: u64,
    pub permission_denied: u64,
    pub unknown_method: u64,
    pub overloaded: u64,
}

impl Summary {
    pub fn total(&self) -> u64 {
        self.unauthenticated + self.permission_denied + self.unknown_method + self.overloaded
    }

    /// The summary as a log line: a warning when the server was full (the operator's
    /// concern), information otherwise (the callers').
    pub fn log(&self) {
        let Summary {
            unauthenticated,
            permission_denied,
            unknown_method,
            overloaded,
        } = *self;
        if overloaded > 0 {
            tracing::warn!(
                unauthenticated,
                permission_denied,
                unknown_method,
                overloaded,
                "calls refused (some at the concurrency limit); one line a second at most"
            );
        } else {
            tracing::info!(
                unauthenticated,
                permission_denied,
                unknown_method,
                overloaded,
                "calls refused; one line a second at most"
            );
        }
    }
}

/// Counts refused calls and has a task write them out, one line a second at most: the first
/// refusal after a quiet second is written at once, later ones at the end of the second.
/// The task sleeps while nothing is refused, and writes what is left when the log is dropped.
#[derive(Debug)]
pub struct RefusalLog {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    counts: [AtomicU64; 4],
    /// Counts were added since the task last took them.
    pending: AtomicBool,
    closed: AtomicBool,
    wake: Notify,
}

impl Shared {
    fn take(&self) -> Summary {
        self.pending.store(false, Ordering::SeqCst);
        let take = |refusal: Refusal| self.counts[refusal.index()].swap(0, Ordering::SeqCst);
        Summary {
            unauthenticated: take(Refusal::Unauthenticated),
            permission_denied: take(Refusal::PermissionDenied),
            unknown_method: take(Refusal::UnknownMethod),
            overloaded: take(Refusal::Overloaded),
        }
    }
}

impl RefusalLog {
    /// Starts the writing task on the current Tokio runtime; lines go to `tracing`.
    pub fn start() -> RefusalLog {
        RefusalLog::start_with(Duration::from_secs(1), |summary| summary.log())
    }

    /// Starts the writing task: at most one line each `period`, written by `write` (tests
    /// collect the lines, and shorten the period rather than pause Tokio's clock).
    pub fn start_with(period: Duration, write: impl Fn(&Summary) + Send + 'static) -> RefusalLog {
        let shared = Arc::new(Shared::default());
        let task = shared.clone();
        tokio::spawn(async move {
            loop {
                task.wake.notified().await;
                let summary = task.take();
                if summary.total() > 0 {
                    write(&summary);
                }
                if task.closed.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(period).await;
            }
        });
        RefusalLog { shared }
    }

    pub fn note(&self, refusal: Refusal) {
        self.shared.counts[refusal.index()].fetch_add(1, Ordering::SeqCst);
        // Only the first refusal since the last line wakes the task: a flood costs one
        // atomic swap per call, not a wake-up.
        if !self.shared.pending.swap(true, Ordering::SeqCst) {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for RefusalLog {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::time::Instant;

    type Lines = Arc<Mutex<Vec<(Instant, Summary)>>>;

    const PERIOD: Duration = Duration::from_millis(50);

    fn collecting() -> (RefusalLog, Lines) {
        let lines: Lines = Arc::default();
        let sink = lines.clone();
        let log = RefusalLog::start_with(PERIOD, move |summary| {
            sink.lock().unwrap().push((Instant::now(), *summary));
        });
        (log, lines)
    }

    #[tokio::test]
    async fn a_flood_of_refusals_is_one_line_a_period_with_every_call_counted() {
        let (log, lines) = collecting();
        let start = Instant::now();
        // 10,000 refusals over about six periods, mostly unknown paths.
        for i in 0..10_000u32 {
            log.note(match i % 10 {
                0 => Refusal::Unauthenticated,
                1 => Refusal::PermissionDenied,
                2 => Refusal::Overloaded,
                _ => Refusal::UnknownMethod,
            });
            if i % 500 == 0 {
                tokio::time::sleep(PERIOD / 3).await;
            }
        }
        let elapsed = start.elapsed();
        tokio::time::sleep(PERIOD * 3).await;

        let lines = lines.lock().unwrap().clone();
        let periods = elapsed.as_secs_f64() / PERIOD.as_secs_f64();
        assert!(
            lines.len() as f64 <= periods.ceil() + 1.0,
            "{} lines in {periods} periods",
            lines.len()
        );
        assert!(lines.len() >= 2, "{lines:?}");
        for pair in lines.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= PERIOD, "{lines:?}");
        }
        let mut sum = Summary::default();
        for (_, line) in &lines {
            sum.unauthenticated += line.unauthenticated;
            sum.permission_denied += line.permission_denied;
            sum.unknown_method += line.unknown_method;
            sum.overloaded += line.overloaded;
        }
        assert_eq!(
            sum,
            Summary {
                unauthenticated: 1000,
                permission_denied: 1000,
                unknown_method: 7000,
                overloaded: 1000,
            }
        );
    }

    #[tokio::test]
    async fn the_first_refusal_is_written_at_once_and_a_quiet_log_writes_nothing() {
        let (log, lines) = collecting();
        tokio::time::sleep(PERIOD * 3).await;
        assert!(lines.lock().unwrap().is_empty());

        log.note(Refusal::Unauthenticated);
        tokio::time::sleep(PERIOD / 5).await;
        {
            let lines = lines.lock().unwrap();
            assert_eq!(lines.len(), 1, "not written at once: {lines:?}");
            assert_eq!(lines[0].1.unauthenticated, 1);
        }
        // What is counted in the last period is written when the log goes.
        log.note(Refusal::UnknownMethod);
        drop(log);
        tokio::time::sleep(PERIOD * 3).await;
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[1].1.unknown_method, 1);
    }
}
