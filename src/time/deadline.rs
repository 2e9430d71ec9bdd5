//! Start-up work under a deadline: a read of /proc, /sys, /etc or the runtime directory can
//! hang on a hosed node (a dead disk, a wedged driver, a FIFO in its place). Such work runs on
//! a thread of its own and the caller waits at most a deadline, so wdfeed ends with a clear
//! error (or goes on with a warning) instead of hanging where it cannot obey SIGTERM. A thread
//! left hanging in the kernel ends with the process.

use std::fmt;
use std::time::Duration;

use crate::system::threads;

/// How long one start-up step may take before wdfeed gives up on it.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// Why [`within`] has no result. Its text ("did not end within 10 s", or why the thread
/// could not start) is for the caller to put after what the work was.
#[derive(Debug)]
pub enum Overrun {
    /// The work did not end within the limit (it goes on, or hangs, on its own thread).
    TimedOut(Duration),
    NoThread(std::io::Error),
}

impl fmt::Display for Overrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overrun::TimedOut(limit) => write!(f, "did not end within {}", seconds(*limit)),
            Overrun::NoThread(e) => write!(f, "cannot start a thread for it: {e}"),
        }
    }
}

/// Runs `work` on a thread named `name` and waits for it at most `limit`: the one way wdfeed
/// runs work that may hang (start-up reads, the state record, `wdfeed check`'s runs).
pub fn within<T: Send + 'static>(
    name: &str,
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Overrun> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    threads::spawn(name, move || drop(tx.send(work()))).map_err(Overrun::NoThread)?;
    rx.recv_timeout(limit).map_err(|_| Overrun::TimedOut(limit))
}

fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_result_or_says_it_ran_out() {
        assert_eq!(within("quick", Duration::from_secs(5), || 7).unwrap(), 7);
        let (_tx, rx) = std::sync::mpsc::channel::<()>();
        let e = within("stuck", Duration::from_millis(200), move || rx.recv()).unwrap_err();
        assert_eq!(e.to_string(), "did not end within 0.2 s");
    }
}
