//! The lease table: one expiry time per check, written by the check threads and read by the
//! feeder without locks or allocation. A check's lease is valid while `now < expiry`; a
//! check that never passed, or whose thread hangs, simply has an expired lease.
//!
//! Once the daemon is armed, a run that fails with its tolerance used up revokes its lease
//! at once ([`LeaseTable::revoke`]): the feeder fences at its next tick instead of waiting for
//! the lease to run out. A revoked lease stays revoked: no later pass renews it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::time::duration_to_nanos;

/// Expiry times on the daemon's clock, in nanoseconds; 0 means "never granted",
/// [`REVOKED`] revoked for good.
pub struct LeaseTable {
    expiries: Box<[AtomicU64]>,
    /// Set once the daemon is armed: before that a failing check only withholds renewal.
    /// A maintenance pause clears it while it lasts.
    revocable: AtomicBool,
    /// Revocations under way: [`LeaseTable::suspend_revocation`] waits for them to end.
    revoking: AtomicU32,
}

/// The expiry of a revoked lease: in the past for any clock reading, and never renewed.
const REVOKED: u64 = 1;

impl LeaseTable {
    /// A table of `n` leases, none granted yet.
    pub fn new(n: usize) -> Self {
        LeaseTable {
            expiries: (0..n).map(|_| AtomicU64::new(0)).collect(),
            revocable: AtomicBool::new(false),
            revoking: AtomicU32::new(0),
        }
    }

    /// Makes lease `index` valid until `until`. A renewal never shortens a lease, and never
    /// renews a revoked one.
    pub fn renew(&self, index: usize, until: Duration) {
        if let Some(slot) = self.expiries.get(index) {
            let until = duration_to_nanos(until).max(REVOKED + 1);
            let _ = slot.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                (cur != REVOKED).then_some(cur.max(until))
            });
        }
    }

    /// From now on a failing check revokes its lease (the daemon calls this when it arms).
    pub fn allow_revocation(&self) {
        self.revocable.store(true, Ordering::SeqCst);
    }

    /// Revokes lease `index` for good, if revocation is allowed: the check failed in a way
    /// that counts, so the node is unhealthy now, not when the lease would run out. True if
    /// the lease is revoked. Lock-free, allocates nothing.
    pub fn revoke(&self, index: usize) -> bool {
        // Counted before the flag is read: a suspension that clears the flag after this
        // read sees the count and waits for the store below.
        self.revoking.fetch_add(1, Ordering::SeqCst);
        let revoked = self.revocable.load(Ordering::SeqCst)
            && match self.expiries.get(index) {
                Some(slot) => {
                    slot.store(REVOKED, Ordering::SeqCst);
                    true
                }
                None => false,
            };
        self.revoking.fetch_sub(1, Ordering::SeqCst);
        revoked
    }

    /// Stops revocation (a maintenance pause): a failing check only withholds renewal, so
    /// its lease runs out and a pass renews it again. Returns once no revocation is under
    /// way, so the caller then sees every lease as it stays. Not for the feeder: it may spin
    /// for the few instructions of a revocation on another thread.
    pub fn suspend_revocation(&self) {
        self.revocable.store(false, Ordering::SeqCst);
        while self.revoking.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }

    /// Whether lease `index` was revoked.
    #[cfg(test)]
    pub fn is_revoked(&self, index: usize) -> bool {
        self.expiries
            .get(index)
            .is_some_and(|s| s.load(Ordering::SeqCst) == REVOKED)
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
        self.expiries.iter().position(|slot| {
            let v = slot.load(Ordering::SeqCst);
            v == REVOKED || v <= now
        })
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
    fn a_revoked_lease_is_expired_at_once_and_never_renewed() {
        let t = LeaseTable::new(2);
        t.renew(0, S(100));
        t.renew(1, S(100));
        t.allow_revocation();
        assert!(t.revoke(0));
        assert_eq!(t.first_expired(S(1)), Some(0), "long before its expiry");
        assert_eq!(t.first_expired(Duration::ZERO), Some(0));
        t.renew(0, S(200));
        assert_eq!(t.first_expired(S(1)), Some(0), "sticky");
        assert!(t.is_revoked(0));
        assert!(!t.is_revoked(1));
    }

    #[test]
    fn before_arming_a_revocation_does_nothing() {
        let t = LeaseTable::new(1);
        t.renew(0, S(100));
        assert!(!t.revoke(0));
        assert!(t.all_valid(S(1)));
        t.renew(0, S(150));
        assert_eq!(t.expiry(0), Some(S(150)));
    }

    #[test]
    fn a_suspended_revocation_only_withholds_and_a_pass_renews_again() {
        let t = LeaseTable::new(1);
        t.renew(0, S(10));
        t.allow_revocation();
        t.suspend_revocation();
        assert!(!t.revoke(0), "suspended");
        assert!(t.all_valid(S(9)));
        assert_eq!(t.first_expired(S(10)), Some(0), "it runs out as usual");
        t.renew(0, S(30));
        assert!(t.all_valid(S(20)), "a pass renews it");
        t.allow_revocation();
        assert!(t.revoke(0));
    }

    #[test]
    fn an_empty_table_is_healthy() {
        let t = LeaseTable::new(0);
        assert!(t.all_valid(S(5)));
        assert_eq!(t.first_expired(S(5)), None);
    }
}
