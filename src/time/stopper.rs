//! A sleep that ends early when the daemon stops: the feeder, the status thread and the
//! kill-list refresher each sleep on one.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Wakes its sleepers early when the daemon stops.
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
}
