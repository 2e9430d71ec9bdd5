//! The feeder: every `interval`, pet every device if every lease is valid and the fence
//! latch is open. It reads only in-memory state, allocates nothing, takes no lock, writes
//! no file, logs nothing and never waits on another thread or process: what it did is
//! published in atomics ([`FeederShared`]) that the status thread reads and logs.
//!
//! Operators reach it through two atomic words ([`Operator`]): a fence asked now (`wdfeed
//! fence`) fences at the next tick, and during a maintenance pause (`wdfeed pause`) a lease
//! that is not valid does not fence; the freeze guard always does.
//!
//! It also guards against freezes: it measures the gap between its own wake-ups on
//! CLOCK_BOOTTIME, and a gap over `fence.stall-threshold` means the node stood still (a
//! kernel or VM freeze). It fences at once, before the HA stack acts on stale state.
//!
//! Each tick reads the clock, decides on that reading, pets or fences, and only then tells
//! systemd (WATCHDOG=1, a send that never blocks): nothing that can wait comes between the
//! clock reading and the pet it justifies.

mod decide;
mod lateness;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;

pub use decide::{decide, Asked, Decision};
pub use lateness::Lateness;

use crate::device::Armed;
use crate::fence::{Fence, FenceReason, Latch, Operator};
use crate::health::lease::LeaseTable;
use crate::system::errno_slot::ErrnoSlot;
use crate::system::notify::Notifier;
use crate::time::{duration_to_nanos, Clock, Stopper};

/// What a tick did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tick {
    Petted,
    Fenced(FenceReason),
    Latched,
    /// Device `index` answered ENODEV or ENXIO: it is gone, and the daemon must say so and
    /// stop. (An index, not the path: a tick allocates nothing.)
    DeviceLost {
        index: usize,
        errno: Errno,
    },
}

/// What the feeder publishes for the status thread: lock-free, written on every tick.
#[derive(Debug, Default)]
pub struct FeederShared {
    /// CLOCK_BOOTTIME of the last tick at which every device took its pet, in nanoseconds;
    /// 0 before the first. A pet that failed is no pet.
    last_pet_ns: AtomicU64,
    pub lateness: Lateness,
    /// Pets each device took, in the feeder's device order.
    pets: Box<[AtomicU64]>,
    /// Pets each device refused (an errno other than ENODEV/ENXIO).
    pet_failures: Box<[AtomicU64]>,
    /// The errno of each device's last refused pet (0: none).
    last_errno: Box<[AtomicI32]>,
    /// SCHED_FIFO for the feeder: granted, or why not.
    realtime: ErrnoSlot,
    /// The feeder has petted at least once (for the "petting" log line).
    petting: AtomicBool,
}

impl FeederShared {
    fn new(devices: usize) -> Self {
        FeederShared {
            pets: (0..devices).map(|_| AtomicU64::new(0)).collect(),
            pet_failures: (0..devices).map(|_| AtomicU64::new(0)).collect(),
            last_errno: (0..devices).map(|_| AtomicI32::new(0)).collect(),
            ..FeederShared::default()
        }
    }

    /// Pets device `index` took (0 for a device the feeder does not have).
    pub fn pets(&self, index: usize) -> u64 {
        self.pets
            .get(index)
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }

    /// Pets device `index` refused, and the errno of the last one.
    pub fn pet_failures(&self, index: usize) -> (u64, Option<Errno>) {
        let n = self
            .pet_failures
            .get(index)
            .map_or(0, |n| n.load(Ordering::Relaxed));
        let e = self
            .last_errno
            .get(index)
            .map(|e| e.load(Ordering::Relaxed))
            .filter(|&e| e != 0)
            .map(Errno::from_raw);
        (n, e)
    }

    pub fn last_pet(&self) -> Option<Duration> {
        match self.last_pet_ns.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    /// Whether every device has taken a pet at least once.
    pub fn is_petting(&self) -> bool {
        self.petting.load(Ordering::Relaxed)
    }

    /// What became of the feeder's realtime scheduling: `None` before the thread tried.
    pub fn realtime(&self) -> Option<Result<(), Errno>> {
        self.realtime.get()
    }

    pub fn set_realtime(&self, r: Result<(), Errno>) {
        self.realtime.set(r);
    }
}

/// Why the feeder loop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    DeviceLost { index: usize, errno: Errno },
}

/// How the feeder paces itself.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub interval: Duration,
    pub stall_threshold: Duration,
}

pub struct Feeder {
    devices: Vec<Box<dyn Armed>>,
    leases: Arc<LeaseTable>,
    latch: Arc<Latch>,
    fence: Arc<dyn Fence>,
    interval: Duration,
    stall_threshold: Duration,
    last_wake: Option<Duration>,
    notifier: Arc<Notifier>,
    /// What operators ask (`wdfeed fence`, `wdfeed pause`): read lock-free every tick.
    operator: Option<Arc<Operator>>,
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
        let shared = Arc::new(FeederShared::new(devices.len()));
        Feeder {
            devices,
            leases,
            latch,
            fence,
            interval: timing.interval,
            stall_threshold: timing.stall_threshold,
            last_wake: None,
            notifier,
            operator: None,
            shared,
        }
    }

    /// The same feeder, obeying what operators ask through `operator`.
    pub fn with_operator(mut self, operator: Arc<Operator>) -> Self {
        self.operator = Some(operator);
        self
    }

    /// What operators asked, read at `now`: two atomic loads.
    fn asked(&self, now: Duration) -> Asked {
        match &self.operator {
            None => Asked::default(),
            Some(op) => Asked {
                fence: op.fence_asked(),
                paused: op.paused_at(now),
            },
        }
    }

    /// One wake-up at `now` (the clock read just before): decide, pet or fence, then tell
    /// systemd. Allocates nothing, takes no lock, never waits.
    pub fn tick(&mut self, now: Duration) -> Tick {
        let decision = decide(
            now,
            self.last_wake,
            self.stall_threshold,
            &self.leases,
            self.latch.is_closed(),
            self.asked(now),
        );
        self.last_wake = Some(now);
        let tick = match decision {
            Decision::Latched => Tick::Latched,
            Decision::Fence(reason) => {
                // Close first: from here on nothing pets, whatever the fence sequence does.
                if self.latch.close() {
                    self.fence.fence(&reason, now);
                    self.fence.with_devices(&mut self.devices);
                }
                Tick::Fenced(reason)
            }
            Decision::Pet => self.pet_all(now),
        };
        // systemd's watchdog hears from the feeder on every tick, fenced or not: it watches
        // that the feeder runs. Were it to kill a fenced wdfeed, a restart could pet again.
        // Last, so that nothing it could do delays a pet; it never blocks anyway.
        self.notifier.watchdog();
        tick
    }

    /// Pets every device; `now` is recorded as the last pet only if every one took it.
    fn pet_all(&mut self, now: Duration) -> Tick {
        let mut all = true;
        for (i, d) in self.devices.iter_mut().enumerate() {
            match d.pet() {
                Ok(()) => {
                    if let Some(n) = self.shared.pets.get(i) {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(errno) => {
                    if matches!(errno, Errno::ENODEV | Errno::ENXIO) {
                        return Tick::DeviceLost { index: i, errno };
                    }
                    all = false;
                    if let Some(n) = self.shared.pet_failures.get(i) {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(e) = self.shared.last_errno.get(i) {
                        e.store(errno as i32, Ordering::Relaxed);
                    }
                }
            }
        }
        if all {
            self.shared
                .last_pet_ns
                .store(duration_to_nanos(now), Ordering::Relaxed);
            self.shared.petting.store(true, Ordering::Relaxed);
        }
        Tick::Petted
    }

    /// Ticks every `interval` until stopped or a device is lost.
    pub fn run(&mut self, clock: &dyn Clock, stop: &Stopper) -> Exit {
        let mut next = clock.now();
        loop {
            let now = clock.now();
            self.shared.lateness.record(now.saturating_sub(next));
            if let Tick::DeviceLost { index, errno } = self.tick(now) {
                return Exit::DeviceLost { index, errno };
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

    /// The devices, for a fence after the feeder stopped.
    pub fn devices_mut(&mut self) -> &mut [Box<dyn Armed>] {
        &mut self.devices
    }

    /// Hands the devices back for the exit sequence.
    pub fn into_devices(self) -> Vec<Box<dyn Armed>> {
        self.devices
    }
}

#[cfg(test)]
mod tests;
