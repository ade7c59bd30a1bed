//! How many watches each agency has open: one slot per stream, refused beyond the limit
//! with RESOURCE_EXHAUSTED / WATCH_LIMIT, and freed when the stream is dropped — however
//! it ends, a client's cancel included.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Reason, Result};

#[derive(Debug)]
pub struct WatchSlots {
    limit: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open watch of an agency, until dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<WatchSlots>,
    agency: String,
}

impl WatchSlots {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(WatchSlots {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    pub fn take(self: &Arc<Self>, agency: &str) -> Result<Slot> {
        let mut open = self.lock();
        let count = open.entry(agency.to_owned()).or_default();
        if *count >= self.limit {
            return Err(Error::new(
                Reason::WatchLimit,
                format!(
                    "agency {agency} has its limit of {} watches open; close one first",
                    self.limit
                ),
            )
            .with_metadata("limit", self.limit.to_string()));
        }
        *count += 1;
        Ok(Slot {
            slots: self.clone(),
            agency: agency.to_owned(),
        })
    }

    /// Watches `agency` has open now.
    #[cfg(test)]
    fn open(&self, agency: &str) -> usize {
        self.lock().get(agency).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // A count is updated in one step, so a panic elsewhere cannot leave it half-done.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        if let Some(count) = open.get_mut(&self.agency) {
            *count = count.saturating_sub(1);
            // Agencies without watches take no room.
            if *count == 0 {
                open.remove(&self.agency);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_frees_when_dropped_and_agencies_count_apart() {
        let slots = WatchSlots::new(2);
        let first = slots.take("a").unwrap();
        let _second = slots.take("a").unwrap();
        assert_eq!(slots.take("a").unwrap_err().reason, Reason::WatchLimit);
        let _other = slots.take("b").unwrap();
        drop(first);
        let _third = slots.take("a").unwrap();
        assert_eq!(slots.open("a"), 2);
        assert_eq!(slots.open("b"), 1);
    }
}
