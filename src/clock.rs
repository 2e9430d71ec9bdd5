//! Time as the daemon reads it: CLOCK_BOOTTIME, which keeps counting while the node is
//! suspended or frozen, so a node that stood still sees every lease expire when it wakes.
//! Tests inject a [`FakeClock`] and drive lease and latch logic without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// A source of "now" as a duration since an arbitrary fixed point (boot, for the real one).
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// CLOCK_BOOTTIME.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootClock;

impl Clock for BootClock {
    fn now(&self) -> Duration {
        // CLOCK_BOOTTIME exists on every kernel this runs on (2.6.39+); a failure cannot be
        // acted upon, so it reads as time zero, which makes every lease look expired (fail safe).
        clock_gettime(ClockId::CLOCK_BOOTTIME)
            .map(Duration::from)
            .unwrap_or(Duration::ZERO)
    }
}

/// A clock that moves only when a test says so.
#[derive(Debug, Default)]
pub struct FakeClock {
    nanos: AtomicU64,
}

impl FakeClock {
    pub fn new(start: Duration) -> Self {
        FakeClock {
            nanos: AtomicU64::new(duration_to_nanos(start)),
        }
    }

    pub fn set(&self, now: Duration) {
        self.nanos.store(duration_to_nanos(now), Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.nanos
            .fetch_add(duration_to_nanos(by), Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Nanoseconds, saturating (a u64 of nanoseconds lasts 584 years of uptime).
pub fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_clock_moves_forward() {
        let c = BootClock;
        let a = c.now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(c.now() > a);
        assert!(a > Duration::ZERO);
    }

    #[test]
    fn fake_clock_moves_only_when_told() {
        let c = FakeClock::new(Duration::from_secs(100));
        assert_eq!(c.now(), Duration::from_secs(100));
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now(), Duration::from_millis(101_500));
        c.set(Duration::from_secs(7));
        assert_eq!(c.now(), Duration::from_secs(7));
    }
}
