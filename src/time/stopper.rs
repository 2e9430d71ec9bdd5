//! A sleep that ends early when the daemon stops: the feeder, the status thread and the
//! kill-list refresher each sleep on one. The status thread's can also be nudged: a check
//! that just failed, and the fence, wake it before its next tick.
//!
//! It takes no lock: a flag per event and a futex on a counter that every stop and nudge
//! bumps. So the feeder can sleep on one and ring another without ever waiting on a thread
//! that is not realtime (a mutex held by a preempted status thread would make it wait).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::ffi;

/// Wakes its sleepers early when the daemon stops.
#[derive(Default)]
pub struct Stopper {
    stopped: AtomicBool,
    nudged: AtomicBool,
    /// Bumped by every stop and nudge; sleepers wait on it.
    ring: AtomicU32,
}

impl Stopper {
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.ring_all();
    }

    /// Ends the current (or the next) sleep early, without stopping. Lock-free: the feeder
    /// and the check threads may call it.
    pub fn nudge(&self) {
        self.nudged.store(true, Ordering::SeqCst);
        self.ring_all();
    }

    fn ring_all(&self) {
        self.ring.fetch_add(1, Ordering::SeqCst);
        ffi::futex_wake_all(&self.ring);
    }

    /// Sleeps up to `d`, or until nudged; true if a stop was asked for.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            // Read the counter before the flags: a stop or nudge after this read changes
            // the counter, so the futex does not sleep through it.
            let seen = self.ring.load(Ordering::SeqCst);
            if self.stopped.load(Ordering::SeqCst) {
                return true;
            }
            if self.nudged.swap(false, Ordering::SeqCst) {
                return false;
            }
            let Some(left) = end
                .checked_duration_since(Instant::now())
                .filter(|l| !l.is_zero())
            else {
                return false;
            };
            ffi::futex_wait(&self.ring, seen, left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_stopper_wakes_a_sleeper_and_stays_stopped() {
        let stop = Arc::new(Stopper::default());
        let s2 = Arc::clone(&stop);
        let h = std::thread::spawn(move || s2.sleep(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        stop.stop();
        assert!(h.join().unwrap());
        assert!(
            stop.sleep(Duration::from_secs(60)),
            "a later sleep returns at once"
        );
    }

    #[test]
    fn a_nudge_ends_one_sleep_without_stopping() {
        let stop = Arc::new(Stopper::default());
        let s2 = Arc::clone(&stop);
        let h = std::thread::spawn(move || s2.sleep(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        stop.nudge();
        assert!(!h.join().unwrap(), "woken, not stopped");
        stop.nudge();
        assert!(
            !stop.sleep(Duration::from_secs(60)),
            "a nudge before the sleep counts"
        );
        let t = std::time::Instant::now();
        assert!(!stop.sleep(Duration::from_millis(30)));
        assert!(
            t.elapsed() >= Duration::from_millis(30),
            "a nudge counts once"
        );
    }
}
