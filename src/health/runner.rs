//! Runs each check on a thread of its own, every `every`, and renews its lease when a run
//! passes within `deadline`. A run that fails, overruns or hangs renews nothing (beyond the
//! check's `tolerance` of consecutive failures), so a check stuck in D state on a dead disk
//! never blocks anything: its lease runs out and the feeder sees it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::clock::Clock;
use crate::health::lease::LeaseTable;
use crate::health::{Check, Verdict};

/// How one check is scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub every: Duration,
    pub deadline: Duration,
    /// Consecutive failed runs that still renew the lease.
    pub tolerance: u32,
}

impl Schedule {
    /// The longest a fault can go unseen by this check before its lease is gone:
    /// each of the `tolerance + 1` runs that see it may take `every + deadline`.
    pub fn worst_detection(&self) -> Duration {
        (self.every + self.deadline) * (self.tolerance + 1)
    }
}

/// A check as the runner takes it: its name, its schedule, and the check itself.
pub type NamedCheck = (String, Schedule, Box<dyn Check>);

/// What the last run of a check said, for logs, `status` and the fence message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastRun {
    pub verdict: Verdict,
    pub elapsed: Duration,
    pub finished_at: Duration,
    pub consecutive_failures: u32,
}

/// The lease a finished run earns: `Some(until)` to renew, `None` to withhold.
///
/// The lease is counted from the run's start: the next run starts `every` later and must
/// finish within `deadline`, so a healthy check always renews before its lease runs out.
pub fn lease_for(
    schedule: &Schedule,
    started: Duration,
    elapsed: Duration,
    healthy: bool,
    consecutive_failures: u32,
) -> Option<Duration> {
    let passed = healthy && elapsed <= schedule.deadline;
    if passed || consecutive_failures <= schedule.tolerance {
        Some(started + schedule.every + schedule.deadline)
    } else {
        None
    }
}

/// Shared view of one running check.
pub struct CheckHandle {
    pub name: String,
    pub schedule: Schedule,
    pub last: Mutex<Option<LastRun>>,
}

/// The check threads. Dropping it asks them to stop after their current run; a hung thread
/// is left behind (it cannot be joined) and dies with the process.
pub struct Runner {
    pub handles: Vec<Arc<CheckHandle>>,
    stop: Arc<AtomicBool>,
}

impl Runner {
    /// Starts one thread per check; check `i` renews lease `i` of `leases`.
    pub fn start(
        checks: Vec<NamedCheck>,
        leases: Arc<LeaseTable>,
        clock: Arc<dyn Clock>,
        stack_size: usize,
        realtime_priority: Option<i32>,
    ) -> std::io::Result<Runner> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(checks.len());
        for (index, (name, schedule, check)) in checks.into_iter().enumerate() {
            let handle = Arc::new(CheckHandle {
                name: name.clone(),
                schedule,
                last: Mutex::new(None),
            });
            let ctx = Loop {
                index,
                handle: Arc::clone(&handle),
                leases: Arc::clone(&leases),
                clock: Arc::clone(&clock),
                stop: Arc::clone(&stop),
            };
            thread::Builder::new()
                .name(format!("check-{index}"))
                .stack_size(stack_size)
                .spawn(move || {
                    if let Some(p) = realtime_priority {
                        crate::system::hardening::realtime(&ctx.handle.name, p);
                    }
                    ctx.run(check)
                })?;
            handles.push(handle);
        }
        Ok(Runner { handles, stop })
    }

    /// The last run of every check, in config order.
    pub fn snapshot(&self) -> Vec<(String, Option<LastRun>)> {
        self.handles
            .iter()
            .map(|h| {
                let last = h.last.lock().map(|g| g.clone()).unwrap_or(None);
                (h.name.clone(), last)
            })
            .collect()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Loop {
    index: usize,
    handle: Arc<CheckHandle>,
    leases: Arc<LeaseTable>,
    clock: Arc<dyn Clock>,
    stop: Arc<AtomicBool>,
}

impl Loop {
    fn run(self, mut check: Box<dyn Check>) {
        let schedule = self.handle.schedule;
        let mut failures: u32 = 0;
        let mut was_healthy: Option<bool> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let started = self.clock.now();
            let verdict = check.run(started);
            let finished = self.clock.now();
            let elapsed = finished.saturating_sub(started);
            let passed = verdict.healthy && elapsed <= schedule.deadline;
            failures = if passed {
                0
            } else {
                failures.saturating_add(1)
            };
            if let Some(until) = lease_for(&schedule, started, elapsed, verdict.healthy, failures) {
                self.leases.renew(self.index, until);
            }
            log_transition(
                &self.handle.name,
                was_healthy,
                passed,
                &verdict,
                elapsed,
                &schedule,
            );
            was_healthy = Some(passed);
            if let Ok(mut last) = self.handle.last.lock() {
                *last = Some(LastRun {
                    verdict,
                    elapsed,
                    finished_at: finished,
                    consecutive_failures: failures,
                });
            }
            let next = started + schedule.every;
            let now = self.clock.now();
            if next > now {
                thread::sleep(next - now);
            }
        }
    }
}

fn log_transition(
    name: &str,
    was: Option<bool>,
    passed: bool,
    verdict: &Verdict,
    elapsed: Duration,
    schedule: &Schedule,
) {
    if was == Some(passed) {
        return;
    }
    let evidence = verdict.evidence.as_str();
    if passed {
        if was.is_some() {
            tracing::info!(check = %name, %evidence, "check recovered");
        } else {
            tracing::debug!(check = %name, %evidence, "check passed");
        }
    } else if verdict.healthy {
        tracing::warn!(check = %name, elapsed_ms = elapsed.as_millis() as u64,
            deadline_ms = schedule.deadline.as_millis() as u64, "check missed its deadline");
    } else {
        tracing::warn!(check = %name, %evidence, "check failed");
    }
}

/// The outcome of [`run_once`]: the verdict, how long the run took, and the check back if
/// it finished (a hung one stays with its thread).
pub struct Once {
    pub verdict: Verdict,
    pub elapsed: Duration,
    pub check: Option<Box<dyn Check>>,
}

/// Runs a check once on a thread of its own and waits at most `deadline` for it: the
/// `wdfeed check` command. A run that does not answer in time is left behind.
pub fn run_once(mut check: Box<dyn Check>, now: Duration, deadline: Duration) -> Once {
    let (tx, rx) = mpsc::channel();
    let started = std::time::Instant::now();
    let spawned = thread::Builder::new()
        .name("check-once".into())
        .spawn(move || {
            let verdict = check.run(now);
            let _ = tx.send((verdict, check));
        });
    if let Err(e) = spawned {
        return Once {
            verdict: Verdict::unhealthy(format!("cannot start a thread: {e}")),
            elapsed: Duration::ZERO,
            check: None,
        };
    }
    match rx.recv_timeout(deadline) {
        Ok((v, check)) => {
            let elapsed = started.elapsed();
            let verdict = if elapsed > deadline {
                Verdict::unhealthy(format!(
                    "{} (took {} ms, over the {} ms deadline)",
                    v.evidence,
                    elapsed.as_millis(),
                    deadline.as_millis()
                ))
            } else {
                v
            };
            Once {
                verdict,
                elapsed,
                check: Some(check),
            }
        }
        Err(_) => Once {
            verdict: Verdict::unhealthy(format!(
                "no answer within the {} ms deadline (hung?)",
                deadline.as_millis()
            )),
            elapsed: started.elapsed(),
            check: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn sched(tolerance: u32) -> Schedule {
        Schedule {
            every: S(5),
            deadline: S(10),
            tolerance,
        }
    }

    #[test]
    fn a_passing_run_renews_from_its_start() {
        assert_eq!(lease_for(&sched(0), S(100), S(1), true, 0), Some(S(115)));
    }

    #[test]
    fn a_failing_or_late_run_renews_nothing_without_tolerance() {
        assert_eq!(lease_for(&sched(0), S(100), S(1), false, 1), None);
        assert_eq!(lease_for(&sched(0), S(100), S(11), true, 1), None);
    }

    #[test]
    fn tolerance_covers_that_many_consecutive_failures_and_no_more() {
        let s = sched(1);
        assert_eq!(lease_for(&s, S(100), S(1), false, 1), Some(S(115)));
        assert_eq!(lease_for(&s, S(105), S(1), false, 2), None);
    }

    #[test]
    fn worst_detection_grows_with_tolerance() {
        assert_eq!(sched(0).worst_detection(), S(15));
        assert_eq!(sched(1).worst_detection(), S(30));
    }

    struct Hangs;
    impl Check for Hangs {
        fn run(&mut self, _now: Duration) -> Verdict {
            loop {
                thread::park();
            }
        }
    }

    #[test]
    fn run_once_gives_up_on_a_hung_check_at_its_deadline() {
        let once = run_once(Box::new(Hangs), S(1), Duration::from_millis(50));
        assert!(!once.verdict.healthy);
        assert!(
            once.verdict.evidence.contains("deadline"),
            "{}",
            once.verdict.evidence
        );
        assert!(once.check.is_none(), "a hung check stays with its thread");
    }
}
