//! Lease and latch logic with an injected clock and a fake device: nothing sleeps for real
//! except where a real check thread is part of the test.

use std::sync::mpsc;
use std::sync::Mutex;

use super::*;
use crate::device::fake::{FakeIo, Script};
use crate::device::{Request, Watchdog};
use crate::fence::Latch;
use crate::health::runner::Runner;
use crate::health::Schedule;
use crate::health::{Check, Verdict};
use crate::time::FakeClock;

const S: fn(u64) -> Duration = Duration::from_secs;

#[derive(Default)]
struct RecordingFence {
    calls: Mutex<Vec<FenceReason>>,
}

impl Fence for RecordingFence {
    fn fence(&self, reason: &FenceReason, _now: Duration) {
        self.calls.lock().unwrap().push(reason.clone());
    }
}

struct Rig {
    feeder: Feeder,
    io: FakeIo,
    leases: Arc<LeaseTable>,
    fence: Arc<RecordingFence>,
}

fn rig(checks: usize) -> Rig {
    rig_every(checks, S(5))
}

fn rig_every(checks: usize, interval: Duration) -> Rig {
    let io = FakeIo::new(Script::default());
    let want = Request {
        timeout: S(30),
        pretimeout: None,
        min_timeout: S(15),
    };
    let dog = Watchdog::program(std::path::Path::new("/dev/watchdog0"), io.clone(), &want).unwrap();
    let leases = Arc::new(LeaseTable::new(checks));
    let fence = Arc::new(RecordingFence::default());
    let feeder = Feeder::new(
        vec![Box::new(dog)],
        Arc::clone(&leases),
        Arc::new(Latch::new()),
        Arc::clone(&fence) as Arc<dyn Fence>,
        Arc::new(crate::system::notify::Notifier::default()),
        Timing {
            interval,
            stall_threshold: S(30),
        },
    );
    Rig {
        feeder,
        io,
        leases,
        fence,
    }
}

#[test]
fn healthy_leases_are_petted_every_tick() {
    let mut r = rig(2);
    let before = r.io.pets();
    r.leases.renew(0, S(100));
    r.leases.renew(1, S(100));
    for t in [10, 15, 20] {
        assert_eq!(r.feeder.tick(S(t)), Tick::Petted);
    }
    assert_eq!(r.io.pets(), before + 3);
    assert_eq!(r.feeder.shared.last_pet(), Some(S(20)));
    assert!(r.fence.calls.lock().unwrap().is_empty());
}

#[test]
fn an_expired_lease_fences_once_and_stops_petting() {
    let mut r = rig(2);
    r.leases.renew(0, S(100));
    r.leases.renew(1, S(22));
    assert_eq!(r.feeder.tick(S(20)), Tick::Petted);
    let pets = r.io.pets();
    assert_eq!(
        r.feeder.tick(S(25)),
        Tick::Fenced(FenceReason::Check { index: 1 })
    );
    assert_eq!(r.feeder.tick(S(30)), Tick::Latched);
    assert_eq!(r.io.pets(), pets, "no pet at or after the fence");
    assert_eq!(
        *r.fence.calls.lock().unwrap(),
        vec![FenceReason::Check { index: 1 }]
    );
    assert!(r.feeder.is_fenced());
}

#[test]
fn recovery_after_a_fence_never_pets_again() {
    let mut r = rig(1);
    r.leases.renew(0, S(12));
    assert_eq!(r.feeder.tick(S(10)), Tick::Petted);
    assert!(matches!(r.feeder.tick(S(15)), Tick::Fenced(_)));
    let pets = r.io.pets();
    r.leases.renew(0, S(1000));
    for t in [20, 25, 30, 35] {
        assert_eq!(r.feeder.tick(S(t)), Tick::Latched);
    }
    assert_eq!(r.io.pets(), pets);
    assert_eq!(r.fence.calls.lock().unwrap().len(), 1);
}

#[test]
fn a_gap_over_the_stall_threshold_is_a_freeze_and_fences() {
    let mut r = rig(1);
    r.leases.renew(0, S(10_000));
    assert_eq!(r.feeder.tick(S(10)), Tick::Petted);
    assert_eq!(
        r.feeder.tick(S(40)),
        Tick::Petted,
        "a gap of exactly the threshold is allowed"
    );
    assert_eq!(
        r.feeder.tick(S(71)),
        Tick::Fenced(FenceReason::Stall { gap: S(31) })
    );
}

#[test]
fn a_device_that_vanishes_is_reported() {
    let mut r = rig(1);
    r.leases.renew(0, S(100));
    r.io.script.lock().unwrap().keepalive = Err(Errno::ENODEV);
    assert_eq!(
        r.feeder.tick(S(10)),
        Tick::DeviceLost {
            index: 0,
            errno: Errno::ENODEV
        }
    );
}

#[test]
fn decide_is_latched_before_anything_else() {
    let leases = LeaseTable::new(1);
    assert_eq!(
        decide(S(10), Some(S(0)), S(1), &leases, true, Asked::default()),
        Decision::Latched
    );
    assert_eq!(
        decide(S(10), None, S(30), &leases, false, Asked::default()),
        Decision::Fence(FenceReason::Check { index: 0 })
    );
}

#[test]
fn the_latch_never_reopens() {
    let l = Latch::new();
    assert!(!l.is_closed());
    assert!(l.close());
    assert!(!l.close(), "only the first close counts");
    assert!(l.is_closed());
}

/// A check the test drives: each run waits for the verdict the test sends; when the test
/// sends nothing, the run hangs like a read on a dead disk.
struct Driven {
    verdicts: mpsc::Receiver<bool>,
}

impl Check for Driven {
    fn run(&mut self, _now: Duration) -> Verdict {
        match self.verdicts.recv() {
            Ok(true) => Verdict::healthy("ok"),
            Ok(false) => Verdict::unhealthy("bad"),
            Err(_) => loop {
                std::thread::park();
            },
        }
    }
}

fn wait_for_expiry(leases: &LeaseTable, want: Duration) {
    for _ in 0..2000 {
        if leases.expiry(0) == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("lease never reached {want:?}: {:?}", leases.expiry(0));
}

#[test]
fn a_hung_check_delays_no_pet_until_its_lease_runs_out_then_petting_stops_within_one_interval() {
    let mut r = rig(1);
    let clock = Arc::new(FakeClock::new(S(100)));
    let (tx, rx) = mpsc::channel();
    let schedule = Schedule {
        every: S(5),
        deadline: S(10),
        tolerance: 0,
    };
    let _runner = Runner::start(
        vec![(
            "driven".into(),
            schedule,
            Box::new(Driven { verdicts: rx }) as Box<dyn Check>,
        )],
        Arc::clone(&r.leases),
        Arc::clone(&clock) as Arc<dyn Clock>,
        256 * 1024,
        None,
        None,
    )
    .unwrap();
    // One passing run started at t=100: lease until 100 + 5 + 10.
    tx.send(true).unwrap();
    wait_for_expiry(&r.leases, S(115));
    // The check now hangs: its next run (started at once, the fake clock stands still)
    // waits forever. The feeder keeps petting on time until the lease runs out.
    let pets = r.io.pets();
    let mut fenced_at = None;
    for t in (100..=130).step_by(5) {
        clock.set(S(t));
        match r.feeder.tick(S(t)) {
            Tick::Petted => assert!(t < 115, "petted at {t} after the lease ran out"),
            Tick::Fenced(reason) => {
                assert_eq!(reason, FenceReason::Check { index: 0 });
                fenced_at.get_or_insert(t);
            }
            Tick::Latched => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(r.io.pets(), pets + 3, "pets at 100, 105 and 110");
    assert_eq!(
        fenced_at,
        Some(115),
        "fenced at the first tick at or after expiry"
    );
    drop(tx);
}

/// A check that says when a run started, then answers what the test sends.
struct Gated {
    started: mpsc::Sender<Duration>,
    verdicts: mpsc::Receiver<bool>,
}

impl Check for Gated {
    fn run(&mut self, now: Duration) -> Verdict {
        let _ = self.started.send(now);
        match self.verdicts.recv() {
            Ok(true) => Verdict::healthy("ok"),
            Ok(false) => Verdict::unhealthy("bad"),
            Err(_) => loop {
                std::thread::park();
            },
        }
    }
}

#[test]
fn a_run_that_fails_with_its_tolerance_used_up_fences_at_the_next_tick_not_at_expiry() {
    let mut r = rig(1);
    let clock = Arc::new(FakeClock::new(S(100)));
    let (tx, rx) = mpsc::channel();
    let (started_tx, started) = mpsc::channel();
    let schedule = Schedule {
        every: S(5),
        deadline: S(10),
        tolerance: 1,
    };
    let wake = Arc::new(Stopper::default());
    let _runner = Runner::start(
        vec![(
            "gated".into(),
            schedule,
            Box::new(Gated {
                started: started_tx,
                verdicts: rx,
            }) as Box<dyn Check>,
        )],
        Arc::clone(&r.leases),
        Arc::clone(&clock) as Arc<dyn Clock>,
        256 * 1024,
        None,
        Some(Arc::clone(&wake)),
    )
    .unwrap();
    // Each run starts when the clock reads t and answers at t + 5, so the next one starts
    // at once (nothing sleeps for real): t = 100, 105, 110, 115.
    let answer = |verdict: bool, at: u64| {
        let t = started.recv_timeout(S(5)).unwrap();
        clock.set(S(at));
        tx.send(verdict).unwrap();
        t
    };
    assert_eq!(answer(true, 105), S(100));
    assert_eq!(started.recv_timeout(S(5)).unwrap(), S(105));
    assert_eq!(r.leases.expiry(0), Some(S(115)));
    r.leases.allow_revocation();
    assert_eq!(r.feeder.tick(S(105)), Tick::Petted);
    // The first failure is within the tolerance: it renews (105 + 5 + 10).
    clock.set(S(110));
    tx.send(false).unwrap();
    assert_eq!(started.recv_timeout(S(5)).unwrap(), S(110));
    assert_eq!(r.leases.expiry(0), Some(S(120)));
    assert!(!r.leases.is_revoked(0), "one failure is tolerated");
    assert_eq!(r.feeder.tick(S(110)), Tick::Petted);
    // The second uses the tolerance up: the lease (valid until 120) is revoked at once.
    clock.set(S(111));
    tx.send(false).unwrap();
    for _ in 0..2000 {
        if r.leases.is_revoked(0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(r.leases.is_revoked(0));
    clock.set(S(115));
    assert!(started.recv_timeout(S(10)).unwrap() >= S(111));
    assert!(
        !wake.sleep(S(60)),
        "the status thread was nudged, not stopped"
    );
    assert_eq!(
        r.feeder.tick(S(111)),
        Tick::Fenced(FenceReason::Check { index: 0 }),
        "fenced at the next tick, 9 s before the lease would have run out"
    );
    // A pass after the revocation renews nothing: the lease stays revoked.
    clock.set(S(116));
    tx.send(true).unwrap();
    assert_eq!(started.recv_timeout(S(5)).unwrap(), S(116));
    assert!(r.leases.is_revoked(0));
    assert!(!r.leases.all_valid(S(116)));
    drop(tx);
}

mod clock;
mod crashdump;

#[test]
fn a_tick_allocates_nothing_and_a_manager_that_stops_reading_never_holds_it_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    // The service manager's socket, never read: its queue fills after a few datagrams.
    let _unread = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let notifier = Arc::new(crate::system::notify::Notifier::connected_to(&path));
    let mut r = rig(1);
    r.feeder.notifier = Arc::clone(&notifier);
    r.leases.renew(0, S(1_000_000));
    let pets = r.io.pets();
    // The fake device records every call: room for them now, so its log does not count.
    r.io.calls.lock().unwrap().reserve(10_000);
    let (done_tx, done) = mpsc::channel();
    let mut feeder = r.feeder;
    std::thread::spawn(move || {
        let (ticks, allocations) = crate::ffi::alloc_count::allocations(|| {
            (1..=500u64)
                .map(|t| feeder.tick(S(t)))
                .filter(|t| *t == Tick::Petted)
                .count()
        });
        let _ = done_tx.send((ticks, allocations, feeder));
    });
    let (petted, allocations, feeder) = done
        .recv_timeout(S(20))
        .expect("a tick waited on the service manager's full queue");
    assert_eq!(petted, 500, "every tick petted on its own clock reading");
    assert_eq!(allocations, 0, "a tick allocated");
    assert_eq!(r.io.pets(), pets + 500);
    assert!(
        notifier.dropped() > 0,
        "the full queue dropped notifications"
    );
    assert_eq!(feeder.shared.last_pet(), Some(S(500)));
}

#[test]
fn a_failed_pet_is_no_pet() {
    let mut r = rig(1);
    r.leases.renew(0, S(100));
    assert_eq!(r.feeder.tick(S(10)), Tick::Petted);
    assert_eq!(r.feeder.shared.last_pet(), Some(S(10)));
    let took = r.feeder.shared.pets(0);
    r.io.script.lock().unwrap().keepalive = Err(Errno::EIO);
    r.feeder.tick(S(15));
    r.feeder.tick(S(20));
    assert_eq!(
        r.feeder.shared.last_pet(),
        Some(S(10)),
        "the pet time stays the last good one"
    );
    assert_eq!(
        r.feeder.shared.pets(0),
        took,
        "a refused pet is not counted"
    );
    assert_eq!(r.feeder.shared.pet_failures(0), (2, Some(Errno::EIO)));
    r.io.script.lock().unwrap().keepalive = Ok(());
    r.feeder.tick(S(25));
    assert_eq!(r.feeder.shared.last_pet(), Some(S(25)));
    assert_eq!(r.feeder.shared.pets(0), took + 1);
}

mod operator;
