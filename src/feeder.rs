//! The feeder: every `interval`, pet every device if every lease is valid and the fence
//! latch is open. It reads only in-memory state, allocates nothing on the petting path,
//! writes no file and never waits on a check.
//!
//! It also guards against freezes: it measures the gap between its own wake-ups on
//! CLOCK_BOOTTIME, and a gap over `fence.stall-threshold` means the node stood still (a
//! kernel or VM freeze). It fences at once, before the HA stack acts on stale state.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::errno::Errno;

use crate::clock::{duration_to_nanos, Clock};
use crate::device::Armed;
use crate::fence::{Fence, FenceReason};
use crate::health::lease::LeaseTable;
use crate::system::notify::Notifier;

/// Once closed, never open again: after a fence wdfeed never pets.
#[derive(Debug, Default)]
pub struct Latch {
    closed: AtomicBool,
}

impl Latch {
    pub fn new() -> Self {
        Latch::default()
    }

    /// Closes the latch; true for the one call that closed it.
    pub fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// What one wake-up of the feeder decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Pet,
    Fence(FenceReason),
    /// Fenced already: do nothing, ever.
    Latched,
}

/// The whole decision, a pure function of the clock, the last wake-up and the leases.
pub fn decide(
    now: Duration,
    last_wake: Option<Duration>,
    stall_threshold: Duration,
    leases: &LeaseTable,
    latched: bool,
) -> Decision {
    if latched {
        return Decision::Latched;
    }
    if let Some(last) = last_wake {
        let gap = now.saturating_sub(last);
        if gap > stall_threshold {
            return Decision::Fence(FenceReason::Stall { gap });
        }
    }
    match leases.first_expired(now) {
        Some(index) => Decision::Fence(FenceReason::Check { index }),
        None => Decision::Pet,
    }
}

/// What a tick did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tick {
    Petted,
    Fenced(FenceReason),
    Latched,
    /// A device answered ENODEV or ENXIO: it is gone, and the daemon must say so and stop.
    DeviceLost {
        path: PathBuf,
        errno: Errno,
    },
}

/// How late the feeder woke, in a fixed histogram of atomics: recording allocates nothing,
/// and the status thread reads it without a lock. Buckets are log-linear over microseconds
/// (eight per power of two), so a quantile is known within 12.5 %.
#[derive(Debug)]
pub struct Lateness {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    max_ns: AtomicU64,
}

const SUB: u32 = 8;
const BUCKETS: usize = 33 * SUB as usize;

impl Default for Lateness {
    fn default() -> Self {
        Lateness {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

/// The bucket of `us` microseconds: values below 8 have one bucket each; above, each power
/// of two is cut in eight.
fn bucket_of(us: u32) -> usize {
    if us < SUB {
        return us as usize;
    }
    let octave = 31 - us.leading_zeros(); // >= 3
    let sub = (us >> (octave - 3)) & (SUB - 1);
    ((octave - 2) * SUB + sub) as usize
}

/// The largest value (in microseconds) that falls in bucket `b`.
fn bucket_upper(b: usize) -> u64 {
    let b = b as u64;
    let sub = u64::from(SUB);
    if b < sub {
        return b;
    }
    let octave = b / sub + 2;
    let low = (1u64 << octave) + (b % sub) * (1u64 << (octave - 3));
    low + (1u64 << (octave - 3)) - 1
}

impl Lateness {
    pub fn record(&self, late: Duration) {
        let us = late.as_micros().min(u128::from(u32::MAX)) as u32;
        self.buckets[bucket_of(us).min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_ns
            .fetch_max(duration_to_nanos(late), Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns.load(Ordering::Relaxed))
    }

    /// An upper bound on quantile `q` (0..=1): the top of the bucket that holds it.
    pub fn quantile_upper(&self, q: f64) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        let target = ((count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n.load(Ordering::Relaxed);
            if seen >= target {
                return Duration::from_micros(bucket_upper(i)).min(self.max());
            }
        }
        self.max()
    }
}

/// What the feeder publishes for the status thread: lock-free, written on every tick.
#[derive(Debug, Default)]
pub struct FeederShared {
    /// CLOCK_BOOTTIME of the last pet, in nanoseconds; 0 before the first.
    last_pet_ns: AtomicU64,
    pub lateness: Lateness,
}

impl FeederShared {
    pub fn last_pet(&self) -> Option<Duration> {
        match self.last_pet_ns.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }
}

/// Wakes the feeder early when the daemon stops.
#[derive(Default)]
pub struct Stopper {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stopper {
    pub fn stop(&self) {
        if let Ok(mut s) = self.stopped.lock() {
            *s = true;
        }
        self.wake.notify_all();
    }

    /// Sleeps up to `d`; true if a stop was asked for.
    pub fn sleep(&self, d: Duration) -> bool {
        let Ok(guard) = self.stopped.lock() else {
            return true;
        };
        if *guard {
            return true;
        }
        match self.wake.wait_timeout_while(guard, d, |s| !*s) {
            Ok((g, _)) => *g,
            Err(_) => true,
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.lock().map(|s| *s).unwrap_or(true)
    }
}

/// Why the feeder loop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    DeviceLost { path: PathBuf, errno: Errno },
}

/// How the feeder paces itself.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub interval: Duration,
    pub stall_threshold: Duration,
    /// Dry run: no device, and the logs say "would pet".
    pub dry_run: bool,
}

pub struct Feeder {
    devices: Vec<Box<dyn Armed>>,
    dry_run: bool,
    leases: Arc<LeaseTable>,
    latch: Arc<Latch>,
    fence: Arc<dyn Fence>,
    interval: Duration,
    stall_threshold: Duration,
    last_wake: Option<Duration>,
    petting: bool,
    notifier: Arc<Notifier>,
    pub shared: Arc<FeederShared>,
}

impl Feeder {
    pub fn new(
        devices: Vec<Box<dyn Armed>>,
        leases: Arc<LeaseTable>,
        latch: Arc<Latch>,
        fence: Arc<dyn Fence>,
        notifier: Arc<Notifier>,
        timing: Timing,
    ) -> Self {
        Feeder {
            devices,
            dry_run: timing.dry_run,
            leases,
            latch,
            fence,
            interval: timing.interval,
            stall_threshold: timing.stall_threshold,
            last_wake: None,
            petting: false,
            notifier,
            shared: Arc::new(FeederShared::default()),
        }
    }

    /// One wake-up at `now`: decide, then pet or fence.
    pub fn tick(&mut self, now: Duration) -> Tick {
        // systemd's watchdog hears from the feeder on every tick, fenced or not: it watches
        // that the feeder runs. Were it to kill a fenced wdfeed, a restart could pet again.
        self.notifier.watchdog();
        let decision = decide(
            now,
            self.last_wake,
            self.stall_threshold,
            &self.leases,
            self.latch.is_closed(),
        );
        self.last_wake = Some(now);
        match decision {
            Decision::Latched => Tick::Latched,
            Decision::Fence(reason) => {
                // Close first: from here on nothing pets, whatever the fence sequence does.
                if self.latch.close() {
                    self.petting = false;
                    self.fence.fence(&reason, now);
                }
                Tick::Fenced(reason)
            }
            Decision::Pet => {
                for d in self.devices.iter_mut() {
                    if let Err(errno) = d.pet() {
                        if matches!(errno, Errno::ENODEV | Errno::ENXIO) {
                            return Tick::DeviceLost {
                                path: d.path().to_path_buf(),
                                errno,
                            };
                        }
                        tracing::warn!(device = %d.path().display(), error = %errno.desc(), "pet failed");
                    }
                }
                self.shared
                    .last_pet_ns
                    .store(duration_to_nanos(now), Ordering::Relaxed);
                if !self.petting {
                    self.petting = true;
                    if self.dry_run {
                        tracing::info!(
                            interval_ms = self.interval.as_millis() as u64,
                            "would pet: every check holds a valid lease"
                        );
                    } else {
                        tracing::info!(
                            interval_ms = self.interval.as_millis() as u64,
                            devices = self.devices.len(),
                            "petting"
                        );
                    }
                }
                Tick::Petted
            }
        }
    }

    /// Ticks every `interval` until stopped or a device is lost.
    pub fn run(&mut self, clock: &dyn Clock, stop: &Stopper) -> Exit {
        let mut next = clock.now();
        loop {
            let now = clock.now();
            self.shared.lateness.record(now.saturating_sub(next));
            if let Tick::DeviceLost { path, errno } = self.tick(now) {
                return Exit::DeviceLost { path, errno };
            }
            next += self.interval;
            let after = clock.now();
            if next <= after {
                // Overslept (a freeze, or a long tick): start the schedule again from now.
                next = after + self.interval;
            }
            if stop.sleep(next - after) {
                return Exit::Stopped;
            }
        }
    }

    pub fn is_fenced(&self) -> bool {
        self.latch.is_closed()
    }

    /// Hands the devices back for the exit sequence.
    pub fn into_devices(self) -> Vec<Box<dyn Armed>> {
        self.devices
    }
}

#[cfg(test)]
mod tests;
