//! One connection budget: `DB_POOL_SIZE` bounds every connection the service opens to
//! PostgreSQL, so that replicas × `DB_POOL_SIZE` is what an operator plans `max_connections`
//! with. Besides the calls' pool, the service keeps connections of its own where sharing the
//! pool would break something: one per point-read batch slot (a pool's round trip on return
//! doubled a batch's latency), the change feed's LISTEN (it holds its connection for good)
//! and the health check (a pool busy with calls must not read as a database that is down).

/// How `DB_POOL_SIZE` connections are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// `DB_POOL_SIZE`: every connection the service may open at once.
    pub total: u32,
    /// The calls' pool.
    pub calls: u32,
    /// Coalesced GetObserver batches in flight at once, a connection each.
    pub point_read_batches: usize,
}

impl ConnectionBudget {
    /// The change feed's LISTEN connection and the health check's.
    pub const RESERVED: u32 = 2;
    /// The reserved connections, a point-read slot and two for calls.
    pub const MIN_TOTAL: u32 = Self::RESERVED + 3;

    /// Shares out `total`: the reserved connections first, then the point-read batches —
    /// at most as many as are left for calls, so a large `POINT_READ_BATCHES` cannot starve
    /// every other call — and the rest to the calls' pool.
    pub fn new(total: u32, point_read_batches: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            total >= Self::MIN_TOTAL,
            "DB_POOL_SIZE={total} is too small: it covers every connection of the service \
             (1 for the change feed, 1 for the health check, the point-read batches and the \
             calls' pool); give it at least {}",
            Self::MIN_TOTAL
        );
        let shared = total - Self::RESERVED;
        let most_batches = usize::try_from(shared / 2).unwrap_or(1).max(1);
        let batches = point_read_batches.clamp(1, most_batches);
        let calls = shared - u32::try_from(batches).unwrap_or(shared / 2);
        Ok(ConnectionBudget {
            total,
            calls,
            point_read_batches: batches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_counts_against_the_total() {
        for total in ConnectionBudget::MIN_TOTAL..64 {
            for batches in 0..40 {
                let budget = ConnectionBudget::new(total, batches).unwrap();
                let used = budget.calls
                    + u32::try_from(budget.point_read_batches).unwrap()
                    + ConnectionBudget::RESERVED;
                assert_eq!(used, total, "{budget:?}");
                assert!(budget.point_read_batches >= 1);
                assert!(budget.calls >= 2, "{budget:?}");
                assert!(budget.calls >= u32::try_from(budget.point_read_batches).unwrap());
            }
        }
        // The default on a machine of two cores.
        let budget = ConnectionBudget::new(16, 1).unwrap();
        assert_eq!((budget.calls, budget.point_read_batches), (13, 1));
        let error = ConnectionBudget::new(4, 1).unwrap_err().to_string();
        assert!(error.contains("DB_POOL_SIZE=4 is too small"), "{error}");
    }
}
