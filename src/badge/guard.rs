//! What keeps verification from being abused: a rate limit per caller (agency or client
//! address) and a watch for probing (many unknown numbers or forged tokens from one caller
//! in a minute, the sign of someone enumerating numbers). Both keep their memory bounded:
//! a caller seen once and then gone is forgotten.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::domain::badge::{Verdict, looks_like_probing};
use crate::metrics::Metrics;

/// How many keys a limiter holds before it forgets the idle ones (an idle key is in the
/// same state as a new one, so forgetting it changes nothing).
const RETAIN_CHECK_EVERY: usize = 1024;

/// A rate of `per_second` calls per caller, with bursts of ten seconds' worth.
#[derive(Debug)]
pub struct RateLimit<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    /// The number of keys after which the idle ones are dropped next.
    next_trim: Mutex<usize>,
}

impl<K: Hash + Eq + Clone> RateLimit<K> {
    pub fn per_second(per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
        RateLimit {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            next_trim: Mutex::new(RETAIN_CHECK_EVERY),
        }
    }

    /// Takes one call from `key`'s allowance; when none is left, how long until one is.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let outcome = self.limiter.check_key(key);
        self.trim();
        outcome.map_err(|not_until| {
            not_until
                .wait_time_from(self.limiter.clock().now())
                .max(Duration::from_millis(1))
        })
    }

    /// Forgets the idle keys once the map has doubled since the last time, so that a flood
    /// of one-off callers (addresses) costs memory only for the callers still limited.
    fn trim(&self) {
        let Ok(mut next_trim) = self.next_trim.lock() else {
            return;
        };
        if self.limiter.len() >= *next_trim {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            *next_trim = (self.limiter.len() * 2).max(RETAIN_CHECK_EVERY);
        }
    }

    /// Keys held now (tests).
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How long a probing count runs.
pub const PROBING_WINDOW: Duration = Duration::from_secs(60);

/// Callers counted in one window at most; past that, new callers are not counted until the
/// next window (the ones already counted still are, and they are the ones that matter).
const MAX_PROBERS: usize = 100_000;

/// Probing verdicts per caller in the current one-minute window.
#[derive(Debug)]
pub struct ProbeWatch<K: Hash + Eq> {
    threshold: u32,
    window: Mutex<Window<K>>,
}

#[derive(Debug)]
struct Window<K> {
    started: Instant,
    counts: HashMap<K, u32>,
}

impl<K: Hash + Eq> ProbeWatch<K> {
    pub fn new(threshold: u32) -> Self {
        ProbeWatch {
            threshold,
            window: Mutex::new(Window {
                started: Instant::now(),
                counts: HashMap::new(),
            }),
        }
    }

    /// Counts one probing verdict of `key`; returns the count the first time it passes the
    /// threshold in this window (so the caller warns once per window), else `None`.
    pub fn probed(&self, key: K) -> Option<u32> {
        let mut window = self.window.lock().ok()?;
        if window.started.elapsed() >= PROBING_WINDOW {
            window.started = Instant::now();
            window.counts = HashMap::new();
        }
        if window.counts.len() >= MAX_PROBERS && !window.counts.contains_key(&key) {
            return None;
        }
        let count = window.counts.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        (*count == self.threshold.saturating_add(1)).then_some(*count)
    }
}

/// The rate limit and probing watch of one channel (`grpc`: keyed by agency, `http`: by
/// client address).
#[derive(Debug)]
pub struct Gate<K: Hash + Eq + Clone> {
    channel: &'static str,
    limit: RateLimit<K>,
    probing: ProbeWatch<K>,
}

impl<K: Hash + Eq + Clone + std::fmt::Display> Gate<K> {
    pub fn new(channel: &'static str, per_second: u32, enumeration_threshold: u32) -> Self {
        Gate {
            channel,
            limit: RateLimit::per_second(per_second),
            probing: ProbeWatch::new(enumeration_threshold),
        }
    }

    /// Lets a call of `key` through, or says how long until it may call again.
    pub fn admit(&self, key: &K) -> Result<(), Duration> {
        self.limit.check(key)
    }

    /// Counts a verdict of `key`'s toward the suspicion of enumeration: logged and counted
    /// once per window when it passes the threshold.
    pub fn counted(&self, key: K, verdict: Verdict, metrics: &Metrics) {
        if !looks_like_probing(verdict) {
            return;
        }
        let caller = key.to_string();
        if let Some(count) = self.probing.probed(key) {
            metrics.probing_seen(self.channel);
            tracing::warn!(
                channel = self.channel,
                caller = %caller,
                count,
                window_seconds = PROBING_WINDOW.as_secs(),
                "possible enumeration: many verifications of unknown numbers or forged badges"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_ten_seconds_worth_at_once_then_waits_and_others_are_not_held_back() {
        let limit = RateLimit::per_second(2);
        for _ in 0..20 {
            assert!(limit.check(&"a").is_ok());
        }
        let wait = limit.check(&"a").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        assert!(limit.check(&"b").is_ok());
    }

    #[test]
    fn one_off_callers_are_forgotten_once_idle() {
        let limit = RateLimit::per_second(1000);
        for caller in 0..5000u32 {
            assert!(limit.check(&caller).is_ok());
        }
        // Each took one of ten thousand: after a few milliseconds they are all idle again,
        // and the map never held much more than twice what was still limited.
        assert!(limit.len() <= 5000);
        std::thread::sleep(Duration::from_millis(5));
        limit.limiter.retain_recent();
        assert!(limit.is_empty());
    }

    #[test]
    fn probing_is_reported_once_when_it_passes_the_threshold() {
        let watch = ProbeWatch::new(3);
        let reports: Vec<_> = (0..6).map(|_| watch.probed("agency-a")).collect();
        assert_eq!(reports, [None, None, None, Some(4), None, None]);
        assert_eq!(watch.probed("agency-b"), None);
    }
}
