//! The feeder on a boot clock that stops answering.

use std::sync::atomic::Ordering;

use super::*;

/// A clock that reads as the boot clock does until the kernel refuses it: from read
/// `fail_from` on, every reading fails.
struct FailingClock {
    time: FakeClock,
    reads: std::sync::atomic::AtomicUsize,
    fail_from: usize,
}

impl Clock for FailingClock {
    fn now(&self) -> Duration {
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        let reading = if n >= self.fail_from {
            Err(Errno::EINVAL)
        } else {
            Ok(nix::sys::time::TimeSpec::from(self.time.now()))
        };
        crate::time::or_stop(reading)
    }
}

#[test]
fn a_clock_that_cannot_be_read_stops_the_pets() {
    let r = rig_every(1, Duration::from_millis(10));
    r.leases.renew(0, S(1000));
    let before = r.io.pets();
    // Read 1 starts the schedule; each tick reads twice (its time, then the time after it):
    // reads 2-5 are two ticks, read 6 is the third tick's time, and it fails.
    let clock = Arc::new(FailingClock {
        time: FakeClock::new(S(100)),
        reads: Default::default(),
        fail_from: 6,
    });
    let stop = Arc::new(Stopper::default());
    let mut feeder = r.feeder;
    let h = {
        let (clock, stop) = (Arc::clone(&clock), Arc::clone(&stop));
        std::thread::spawn(move || feeder.run(clock.as_ref(), &stop))
    };
    for _ in 0..200 {
        if h.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let ended_by_itself = h.is_finished();
    stop.stop();
    assert!(
        h.join().is_err(),
        "the feeder must not go on without a clock"
    );
    assert!(
        ended_by_itself,
        "the feeder kept running on a clock it cannot read"
    );
    assert_eq!(r.io.pets(), before + 2, "no pet on a failed reading");
}
