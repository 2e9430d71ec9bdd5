//! The feeder: every `interval`, pet every device if every lease is valid and the fence
//! latch is open. It reads only in-memory state, allocates nothing on the petting path,
//! writes no file and never waits on a check.
//!
//! It also guards against freezes: it measures the gap between its own wake-ups on
//! CLOCK_BOOTTIME, and a gap over `fence.stall-threshold` means the node stood still (a
//! kernel or VM freeze). It fences at once, before the HA stack acts on stale state.

mod decide;
mod lateness;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;

pub use decide::{decide, Decision};
pub use lateness::Lateness;

use crate::device::Armed;
use crate::fence::{Fence, FenceReason, Latch};
use crate::health::lease::LeaseTable;
use crate::system::notify::Notifier;
use crate::time::{duration_to_nanos, millis, Clock, Stopper};

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

/// What the feeder publishes for the status thread: lock-free, written on every tick.
#[derive(Debug, Default)]
pub struct FeederShared {
    /// CLOCK_BOOTTIME of the last pet, in nanoseconds; 0 before the first.
    last_pet_ns: AtomicU64,
    pub lateness: Lateness,
    /// Pets each device took, in the feeder's device order.
    pets: Box<[AtomicU64]>,
}

impl FeederShared {
    /// Pets device `index` took (0 for a device the feeder does not have).
    pub fn pets(&self, index: usize) -> u64 {
        self.pets
            .get(index)
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }

    pub fn last_pet(&self) -> Option<Duration> {
        match self.last_pet_ns.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
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
        let devices_len = devices.len();
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
            shared: Arc::new(FeederShared {
                pets: (0..devices_len).map(|_| AtomicU64::new(0)).collect(),
                ..FeederShared::default()
            }),
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
                for (i, d) in self.devices.iter_mut().enumerate() {
                    match d.pet() {
                        Ok(()) => {
                            if let Some(n) = self.shared.pets.get(i) {
                                n.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(errno) => {
                            if matches!(errno, Errno::ENODEV | Errno::ENXIO) {
                                return Tick::DeviceLost {
                                    path: d.path().to_path_buf(),
                                    errno,
                                };
                            }
                            tracing::warn!(device = %d.path().display(), error = %errno.desc(), "pet failed");
                        }
                    }
                }
                self.shared
                    .last_pet_ns
                    .store(duration_to_nanos(now), Ordering::Relaxed);
                if !self.petting {
                    self.petting = true;
                    if self.dry_run {
                        tracing::info!(
                            interval_ms = millis(self.interval),
                            "would pet: every check holds a valid lease"
                        );
                    } else {
                        tracing::info!(
                            interval_ms = millis(self.interval),
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
