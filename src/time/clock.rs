//! Time as the daemon reads it: CLOCK_BOOTTIME, which keeps counting while the node is
//! suspended or frozen, so a node that stood still sees every lease expire when it wakes.
//! Tests inject a [`FakeClock`] and drive lease and latch logic without sleeping.

#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
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
        or_stop(clock_gettime(ClockId::CLOCK_BOOTTIME))
    }
}

/// A reading of CLOCK_BOOTTIME, or the end of the thread that asked (the process, in a
/// release build: it aborts on panic).
///
/// CLOCK_BOOTTIME exists on every kernel this runs on (2.6.39+), so a failure means the
/// process can no longer tell time. No value would be safe to return: time zero (or any
/// constant) makes every lease ever granted look valid and hides any freeze gap, so the
/// feeder would pet a dead node forever. Stopping is the one safe answer: no thread pets
/// again, and the hardware resets the node within its timeout.
pub fn or_stop(reading: Result<TimeSpec, Errno>) -> Duration {
    match reading {
        Ok(t) => Duration::from(t),
        Err(e) => panic!(
            "cannot read CLOCK_BOOTTIME ({}): wdfeed stops so that nothing pets a node it cannot time",
            e.desc()
        ),
    }
}

/// A clock that moves only when a test says so.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct FakeClock {
    nanos: AtomicU64,
}

#[cfg(test)]
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

#[cfg(test)]
impl Clock for FakeClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Nanoseconds, saturating (a u64 of nanoseconds lasts 584 years of uptime).
pub fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Milliseconds, saturating (for logs).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Microseconds, saturating (for logs and the status file).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
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
    #[should_panic(expected = "cannot read CLOCK_BOOTTIME")]
    fn a_clock_that_cannot_be_read_stops_the_thread() {
        or_stop(Err(Errno::EINVAL));
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
