//! A sleep that ends early when the daemon stops: the feeder, the status thread and the
//! kill-list refresher each sleep on one. The status thread's can also be nudged: a check
//! that just failed wakes it before its next tick. Only non-realtime threads and the check
//! threads take its lock, never the feeder.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Wakes its sleepers early when the daemon stops.
#[derive(Default)]
pub struct Stopper {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    stopped: bool,
    nudged: bool,
}

impl Stopper {
    pub fn stop(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.stopped = true;
        }
        self.wake.notify_all();
    }

    /// Ends the current (or the next) sleep early, without stopping.
    pub fn nudge(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.nudged = true;
        }
        self.wake.notify_all();
    }

    /// Sleeps up to `d`, or until nudged; true if a stop was asked for.
    pub fn sleep(&self, d: Duration) -> bool {
        let Ok(guard) = self.state.lock() else {
            return true;
        };
        match self
            .wake
            .wait_timeout_while(guard, d, |s| !s.stopped && !s.nudged)
        {
            Ok((mut g, _)) => {
                g.nudged = false;
                g.stopped
            }
            Err(_) => true,
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
