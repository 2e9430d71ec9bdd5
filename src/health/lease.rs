//! The lease table: one expiry time per check, written by the check threads and read by the
//! feeder without locks or allocation. A check's lease is valid while `now < expiry`; a
//! check that never passed, or whose thread hangs, simply has an expired lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::time::duration_to_nanos;

/// Expiry times on the daemon's clock, in nanoseconds; 0 means "never granted".
pub struct LeaseTable {
    expiries: Box<[AtomicU64]>,
}

impl LeaseTable {
    /// A table of `n` leases, none granted yet.
    pub fn new(n: usize) -> Self {
        LeaseTable {
            expiries: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Makes lease `index` valid until `until`. A renewal never shortens a lease.
    pub fn renew(&self, index: usize, until: Duration) {
        if let Some(slot) = self.expiries.get(index) {
            slot.fetch_max(duration_to_nanos(until), Ordering::SeqCst);
        }
    }

    /// When lease `index` runs out (`None` if never granted).
    pub fn expiry(&self, index: usize) -> Option<Duration> {
        match self.expiries.get(index)?.load(Ordering::SeqCst) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    /// The first lease that is not valid at `now`, if any. Allocates nothing.
    pub fn first_expired(&self, now: Duration) -> Option<usize> {
        let now = duration_to_nanos(now);
        self.expiries
            .iter()
            .position(|slot| slot.load(Ordering::SeqCst) <= now)
    }

    /// True while every lease is valid at `now`.
    pub fn all_valid(&self, now: Duration) -> bool {
        self.first_expired(now).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_lease_never_granted_is_expired() {
        let t = LeaseTable::new(2);
        t.renew(0, S(100));
        assert_eq!(t.first_expired(S(1)), Some(1));
        assert!(!t.all_valid(S(1)));
        assert_eq!(t.expiry(1), None);
    }

    #[test]
    fn leases_are_valid_until_their_expiry_and_not_at_it() {
        let t = LeaseTable::new(2);
        t.renew(0, S(10));
        t.renew(1, S(20));
        assert!(t.all_valid(S(9)));
        assert_eq!(t.first_expired(S(10)), Some(0));
        t.renew(0, S(30));
        assert!(t.all_valid(S(19)));
        assert_eq!(t.first_expired(S(20)), Some(1));
    }

    #[test]
    fn a_renewal_never_shortens_a_lease() {
        let t = LeaseTable::new(1);
        t.renew(0, S(30));
        t.renew(0, S(10));
        assert_eq!(t.expiry(0), Some(S(30)));
    }

    #[test]
    fn an_empty_table_is_healthy() {
        let t = LeaseTable::new(0);
        assert!(t.all_valid(S(5)));
        assert_eq!(t.first_expired(S(5)), None);
    }
}
