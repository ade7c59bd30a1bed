//! Observers that earlier batches read, each kept with its election's change-feed position at
//! the time: a batch asks PostgreSQL for that position and the observers it does not hold, in
//! one statement (`store::observers::get_many_since`), and answers from here only when the
//! position has not moved.
//!
//! Every committed change to an election's observers advances the position at commit
//! (`change_positions`, the change feed's triggers), so an unchanged position in the batch's
//! own snapshot proves that what is kept is what reading the rows would give in that
//! snapshot. A read is therefore never older than a write acknowledged before it was sent,
//! whichever replica took the write. While an election changes, every batch reads its rows as
//! before and the cache only restarts from them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::kept::KeptObserver;
use crate::domain::observer::Observer;
use crate::metrics::Metrics;

/// What one batch knows of an election before it asks PostgreSQL.
pub struct Known {
    /// The position the kept observers were read at; -1 (below every position) when none.
    pub position: i64,
    /// Per asked id, what is kept: `Some(None)` for an id known not to exist.
    pub kept: Vec<Option<Option<Observer>>>,
}

#[derive(Debug)]
struct Election {
    position: i64,
    observers: HashMap<Box<str>, Option<Box<KeptObserver>>>,
    /// What the election takes ([`election_bytes`]) and its `observers` ([`entry_bytes`]).
    bytes: usize,
}

impl Election {
    fn new(election_id: &str) -> Self {
        Election {
            position: -1,
            observers: HashMap::new(),
            bytes: election_bytes(election_id),
        }
    }
}

/// The bytes a kept observer may take on average: the keep holds at most `capacity` of them
/// and `capacity` times this, so that observers with long texts (a registrar writes them)
/// cannot make it much larger than typical ones would (100-250 bytes each).
const BYTES_PER_PLACE: usize = 256;

/// Bounded by the number of observers kept across elections and by their bytes; beyond
/// either, arbitrary kept observers are forgotten (a miss costs one row of a statement the
/// batch runs anyway). Which ones does not matter to random keys and hardly to hot ones,
/// which come back at once; forgetting everything instead left the keep half empty on
/// average.
#[derive(Debug)]
pub struct ObserverCache {
    capacity: usize,
    elections: Mutex<HashMap<String, Election>>,
    /// Told what is kept after each change.
    metrics: Arc<Metrics>,
}

/// What an election takes beside its observers, as the byte bound counts it: its id, its
/// place among the elections and the smallest table. Ids of elections that do not exist are
/// kept too (their observers known absent), so a caller naming many cannot grow the keep
/// past its bound either.
fn election_bytes(election_id: &str) -> usize {
    std::mem::size_of::<(String, Election)>() + election_id.len() + 64
}

/// What an entry of an election's table takes, as the byte bound counts it: its id, the
/// kept observer if any, and its place in the table.
fn entry_bytes(id: &str, kept: Option<&KeptObserver>) -> usize {
    std::mem::size_of::<(Box<str>, Option<Box<KeptObserver>>)>()
        + id.len()
        + kept.map_or(0, KeptObserver::bytes)
}

impl ObserverCache {
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> Self {
        ObserverCache {
            capacity,
            elections: Mutex::default(),
            metrics,
        }
    }

    /// What is kept of `ids` in the election, at which position.
    pub fn known(&self, election_id: &str, ids: &[&str]) -> Known {
        let unknown = || Known {
            position: -1,
            kept: vec![None; ids.len()],
        };
        let Ok(elections) = self.elections.lock() else {
            return unknown();
        };
        let Some(election) = elections.get(election_id) else {
            return unknown();
        };
        Known {
            position: election.position,
            kept: ids
                .iter()
                .map(|id| {
                    let kept = election.observers.get(*id)?;
                    Some(kept.as_ref().map(|kept| kept.observer(election_id, id)))
                })
                .collect(),
        }
    }

    /// Keeps what a statement read at `position`: `found` among `asked`, the rest known
    /// absent. A read at an older position than what is kept (a slower batch) is not kept.
    pub fn keep(
        &self,
        election_id: &str,
        position: i64,
        asked: &[&str],
        found: &HashMap<&str, Arc<Observer>>,
    ) {
        if self.capacity == 0 {
            return;
        }
        // Made before the lock is taken: the copies are the costly part.
        let asked: Vec<(Box<str>, Option<Box<KeptObserver>>)> = asked
            .iter()
            .filter_map(|id| {
                let kept = match found.get(id) {
                    Some(observer) => Some(Box::new(KeptObserver::new(observer)?)),
                    None => None,
                };
                Some((Box::from(*id), kept))
            })
            .collect();
        let Ok(mut elections) = self.elections.lock() else {
            return;
        };
        let new_election = if elections.contains_key(election_id) {
            0
        } else {
            election_bytes(election_id)
        };
        let adding: usize = new_election
            + asked
                .iter()
                .map(|(id, kept)| entry_bytes(id, kept.as_deref()))
                .sum::<usize>();
        let (kept, bytes) = elections.values().fold((0, 0), |(kept, bytes), e| {
            (kept + e.observers.len(), bytes + e.bytes)
        });
        let room = self.capacity.saturating_sub(asked.len());
        let byte_room = (self.capacity * BYTES_PER_PLACE).saturating_sub(adding);
        if kept > room || bytes > byte_room {
            // An eighth more than needed, so that the keeps after this one find room without
            // evicting again: the scan is paid once per eighth of the capacity.
            forget(
                &mut elections,
                kept.saturating_sub(room - room / 8),
                bytes.saturating_sub(byte_room - byte_room / 8),
            );
        }
        let election = elections
            .entry(election_id.to_owned())
            .or_insert_with(|| Election::new(election_id));
        if position < election.position {
            return;
        }
        if position > election.position {
            election.position = position;
            election.observers.clear();
            election.bytes = election_bytes(election_id);
        }
        for (id, kept) in asked {
            let id_bytes = entry_bytes(&id, None);
            election.bytes += entry_bytes(&id, kept.as_deref());
            if let Some(old) = election.observers.insert(id, kept) {
                election.bytes -= id_bytes + old.as_deref().map_or(0, KeptObserver::bytes);
            }
        }
        self.report(&elections);
    }

    fn report(&self, elections: &HashMap<String, Election>) {
        let (kept, bytes) = elections.values().fold((0, 0), |(kept, bytes), e| {
            (kept + e.observers.len(), bytes + e.bytes)
        });
        self.metrics.observers_kept(kept, bytes);
    }

    /// Forgets what is kept of an election that changed: the next batch would read it
    /// again anyway, and meanwhile its memory serves the writes.
    pub fn forget_election(&self, election_id: &str) {
        if let Ok(mut elections) = self.elections.lock()
            && elections.remove(election_id).is_some()
        {
            self.report(&elections);
        }
    }

    /// Observers kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.elections
            .lock()
            .map(|elections| elections.values().map(|e| e.observers.len()).sum())
            .unwrap_or(0)
    }

    /// Their bytes, as the bound counts them.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.elections
            .lock()
            .map(|elections| elections.values().map(|e| e.bytes).sum())
            .unwrap_or(0)
    }
}

#[cfg(test)]
impl ObserverCache {
    fn new_for_test(capacity: usize) -> Self {
        ObserverCache::new(capacity, Arc::default())
    }

    /// The bytes kept, counted again from the elections and their entries.
    fn recounted(&self) -> usize {
        let elections = self.elections.lock().unwrap();
        elections
            .iter()
            .map(|(election_id, e)| {
                election_bytes(election_id)
                    + e.observers
                        .iter()
                        .map(|(id, kept)| entry_bytes(id, kept.as_deref()))
                        .sum::<usize>()
            })
            .sum()
    }
}

/// Forgets at least `count` kept observers and `bytes` of them, whichever the tables list
/// first (an order set by their ids' hashes, so unrelated to when they were read), and
/// elections left with none.
fn forget(elections: &mut HashMap<String, Election>, mut count: usize, mut bytes: usize) {
    for election in elections.values_mut() {
        if count == 0 && bytes == 0 {
            break;
        }
        let mut freed = 0;
        election.observers.retain(|id, kept| {
            if count == 0 && bytes == 0 {
                return true;
            }
            let size = entry_bytes(id, kept.as_deref());
            count = count.saturating_sub(1);
            bytes = bytes.saturating_sub(size);
            freed += size;
            false
        });
        election.bytes -= freed;
    }
    elections.retain(|_, election| !election.observers.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(observers: &[(&'static str, Arc<Observer>)]) -> HashMap<&'static str, Arc<Observer>> {
        observers.iter().cloned().collect()
    }

    #[test]
    fn nothing_is_known_of_an_election_never_read() {
        let cache = ObserverCache::new_for_test(10);
        let known = cache.known("e", &["a", "b"]);
        assert_eq!(known.position, -1);
        assert!(known.kept.iter().all(Option::is_none));
    }

    #[test]
    fn a_kept_observer_is_answered_as_it_was_read() {
        let cache = ObserverCache::new_for_test(10);
        let observer = crate::api::point_reads::kept::tests::full();
        cache.keep(
            &observer.election_id,
            3,
            &[observer.id.as_str()],
            &found(&[("o-1", Arc::new(observer.clone()))]),
        );
        let known = cache.known(&observer.election_id, &[observer.id.as_str()]);
        assert_eq!(known.position, 3);
        assert_eq!(known.kept[0], Some(Some(observer)));
    }

    #[test]
    fn observers_with_long_texts_are_bounded_by_their_bytes() {
        let cache = ObserverCache::new_for_test(10);
        let mut long = crate::api::point_reads::kept::tests::full();
        long.accreditation.reason = "x".repeat(1000);
        for n in 0..5 {
            let id = format!("o-{n}");
            let observer = Arc::new(Observer {
                id: id.clone(),
                ..long.clone()
            });
            cache.keep("e", 1, &[&id], &HashMap::from([(id.as_str(), observer)]));
            assert!(
                cache.known("e", &[&id]).kept[0].is_some(),
                "the last read is kept"
            );
            assert!(cache.bytes() <= 10 * BYTES_PER_PLACE, "{}", cache.bytes());
        }
        assert!(cache.len() < 5, "kept {}", cache.len());
        // Forgetting and replacing keep the count of bytes exact.
        cache.keep("e", 1, &["o-4"], &found(&[]));
        assert_eq!(cache.bytes(), cache.recounted());
        cache.keep("f", 1, &["a"], &found(&[]));
        cache.forget_election("e");
        assert_eq!(cache.bytes(), cache.recounted());
        assert_eq!(cache.bytes(), election_bytes("f") + entry_bytes("a", None));
    }

    #[test]
    fn ids_of_many_elections_are_bounded_by_their_bytes_too() {
        let cache = ObserverCache::new_for_test(100);
        // Long ids, so that the bytes bind before the count does.
        let elections: Vec<String> = (0..200)
            .map(|n| format!("no-such-election-{n}-{}", "x".repeat(200)))
            .collect();
        for election in &elections {
            cache.keep(election, 0, &["x"], &found(&[]));
            assert!(cache.bytes() <= 100 * BYTES_PER_PLACE, "{}", cache.bytes());
        }
        assert_eq!(cache.bytes(), cache.recounted());
        assert!(cache.len() < 70, "kept {}", cache.len());
    }

    #[test]
    fn a_changed_election_is_forgotten_and_only_it() {
        let cache = ObserverCache::new_for_test(10);
        cache.keep("e", 1, &["a"], &found(&[]));
        cache.keep("f", 1, &["b"], &found(&[]));
        cache.forget_election("e");
        assert_eq!(cache.known("e", &["a"]).position, -1);
        assert!(cache.known("e", &["a"]).kept[0].is_none());
        assert!(cache.known("f", &["b"]).kept[0].is_some());
    }

    #[test]
    fn absent_ids_are_kept_as_absent_at_their_position() {
        let cache = ObserverCache::new_for_test(10);
        cache.keep("e", 7, &["a"], &found(&[]));
        let known = cache.known("e", &["a", "b"]);
        assert_eq!(known.position, 7);
        assert!(matches!(known.kept[0], Some(None)));
        assert!(known.kept[1].is_none());
    }

    #[test]
    fn a_newer_position_forgets_what_was_read_before_it() {
        let cache = ObserverCache::new_for_test(10);
        cache.keep("e", 7, &["a", "b"], &found(&[]));
        cache.keep("e", 9, &["c"], &found(&[]));
        let known = cache.known("e", &["a", "c"]);
        assert_eq!(known.position, 9);
        assert!(known.kept[0].is_none(), "read at 7, so not current at 9");
        assert!(known.kept[1].is_some());
    }

    #[test]
    fn an_older_read_finishing_late_is_not_kept() {
        let cache = ObserverCache::new_for_test(10);
        cache.keep("e", 9, &["a"], &found(&[]));
        cache.keep("e", 7, &["b"], &found(&[]));
        let known = cache.known("e", &["b"]);
        assert_eq!(known.position, 9);
        assert!(known.kept[0].is_none());
    }

    #[test]
    fn the_capacity_bounds_what_is_kept() {
        let cache = ObserverCache::new_for_test(3);
        cache.keep("e", 1, &["a", "b"], &found(&[]));
        cache.keep("f", 1, &["c", "d"], &found(&[]));
        assert!(cache.len() <= 3);
        assert!(cache.known("f", &["c"]).kept[0].is_some());
        let off = ObserverCache::new_for_test(0);
        off.keep("e", 1, &["a"], &found(&[]));
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn a_full_keep_forgets_only_some_to_make_room() {
        let cache = ObserverCache::new_for_test(80);
        let ids: Vec<String> = (0..80).map(|n| format!("o-{n}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        cache.keep("e", 1, &ids, &found(&[]));
        assert_eq!(cache.len(), 80);
        cache.keep("e", 1, &["new"], &found(&[]));
        let kept = cache.len();
        assert!((60..=80).contains(&kept), "kept {kept}");
        assert!(cache.known("e", &["new"]).kept[0].is_some());
        let still = ids
            .iter()
            .filter(|id| cache.known("e", &[**id]).kept[0].is_some())
            .count();
        assert_eq!(still, kept - 1, "only the forgotten are unknown");
    }
}
