//! Runs each check on a thread of its own, every `every`, and renews its lease when a run
//! passes within `deadline`. A run that fails, overruns or hangs renews nothing (beyond the
//! check's `tolerance` of consecutive failures), so a check stuck in D state on a dead disk
//! never blocks anything: its lease runs out and the feeder sees it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::health::lease::LeaseTable;
use crate::health::run_note::{Outcome, RunNote, EVIDENCE_CAP};
use crate::health::{Check, LastRun, Schedule, Verdict};
use crate::time::{millis, Clock, Stopper};

/// A check as the runner takes it: its name, its schedule, and the check itself.
pub type NamedCheck = (String, Schedule, Box<dyn Check>);

/// Shared view of one running check: its name, schedule and last run. Its thread records
/// each run; the status thread, the fence and the start-up wait read it.
pub struct CheckHandle {
    pub name: String,
    pub schedule: Schedule,
    /// The condition the check follows (`when:`), as written.
    pub when: Option<String>,
    last: Mutex<Option<LastRun>>,
    /// The last run again, for the fence: readable without a lock or an allocation.
    note: RunNote,
}

/// The check's thread is recording a run at this very moment.
#[derive(Debug)]
pub struct Busy;

impl CheckHandle {
    pub fn new(name: String, schedule: Schedule) -> Self {
        CheckHandle {
            name,
            schedule,
            when: None,
            last: Mutex::new(None),
            note: RunNote::default(),
        }
    }

    pub(crate) fn record(&self, run: LastRun) {
        self.note.publish(&run);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(run);
        }
    }

    /// Tests: a check named `name` (every 1 s, deadline 2 s, no tolerance) whose last run,
    /// at `at`, failed with `evidence`.
    #[cfg(test)]
    pub fn failed_for_test(name: &str, evidence: &str, at: std::time::Duration) -> Arc<Self> {
        let schedule = Schedule {
            every: std::time::Duration::from_secs(1),
            deadline: std::time::Duration::from_secs(2),
            tolerance: 0,
        };
        let handle = Arc::new(CheckHandle::new(name.into(), schedule));
        handle.record(LastRun::judge(
            crate::health::Verdict::unhealthy(evidence),
            at,
            at,
            schedule.deadline,
            0,
        ));
        handle
    }

    /// Holds the last run's lock, as the check's or the status thread's would (tests: the
    /// fence must not wait for it).
    #[cfg(test)]
    pub fn lock_for_test(&self) -> std::sync::MutexGuard<'_, Option<LastRun>> {
        self.last.lock().unwrap()
    }

    /// The last run (`None` before the first finished), waiting for a run being recorded.
    pub fn last(&self) -> Option<LastRun> {
        self.last.lock().map(|g| g.clone()).unwrap_or(None)
    }

    /// The last run without ever waiting on the check's thread: for the feeder's fence and
    /// the status thread.
    pub fn peek(&self) -> Result<Option<LastRun>, Busy> {
        self.last.try_lock().map(|g| g.clone()).map_err(|_| Busy)
    }

    /// Why this check holds no valid lease at `now`, written into `out`: what the fence
    /// records. Reads the run note: no lock, no allocation.
    pub fn write_why_expired(&self, now: Duration, out: &mut impl std::fmt::Write) {
        fn text<'a>(
            seen: &crate::health::run_note::Seen,
            evidence: &'a [u8; EVIDENCE_CAP],
        ) -> &'a str {
            std::str::from_utf8(&evidence[..seen.len]).unwrap_or("")
        }
        let mut evidence = [0u8; EVIDENCE_CAP];
        let _ = match self.note.read(&mut evidence) {
            Err(()) => out.write_str("evidence unavailable (the check is recording it right now)"),
            Ok(None) => out.write_str("never finished a run (hung from the start?)"),
            Ok(Some(seen)) => match seen.outcome {
                Outcome::Failed => out.write_str(text(&seen, &evidence)),
                Outcome::Late => write!(
                    out,
                    "last run took {} ms, over its {} ms deadline ({})",
                    seen.elapsed.as_millis(),
                    self.schedule.deadline.as_millis(),
                    text(&seen, &evidence)
                ),
                Outcome::Passed => write!(
                    out,
                    "no run has finished for {:.1} s (hung?); the last said: {}",
                    now.saturating_sub(seen.finished_at).as_secs_f64(),
                    text(&seen, &evidence)
                ),
            },
        };
    }

    /// Why this check holds no valid lease at `now`, as a string (logs, the stop path).
    pub fn why_expired(&self, now: Duration) -> String {
        let mut out = String::new();
        self.write_why_expired(now, &mut out);
        out
    }
}

/// The check threads. Dropping it asks them to stop after their current run; a hung thread
/// is left behind (it cannot be joined) and dies with the process.
pub struct Runner {
    pub handles: Vec<Arc<CheckHandle>>,
    stop: Arc<AtomicBool>,
}

impl Runner {
    /// Starts one thread per check; check `i` renews lease `i` of `leases`. A run that
    /// revokes its lease nudges `wake` (the status thread's sleep).
    pub fn start(
        checks: Vec<NamedCheck>,
        leases: Arc<LeaseTable>,
        clock: Arc<dyn Clock>,
        stack_size: usize,
        realtime_priority: Option<i32>,
        wake: Option<Arc<Stopper>>,
    ) -> std::io::Result<Runner> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(checks.len());
        for (index, (name, schedule, check)) in checks.into_iter().enumerate() {
            let handle = Arc::new(CheckHandle {
                when: check.condition(),
                ..CheckHandle::new(name, schedule)
            });
            let ctx = Loop {
                index,
                handle: Arc::clone(&handle),
                leases: Arc::clone(&leases),
                clock: Arc::clone(&clock),
                stop: Arc::clone(&stop),
                wake: wake.clone(),
            };
            crate::system::threads::spawn_with_stack(
                &format!("check-{index}"),
                stack_size,
                move || {
                    if let Some(p) = realtime_priority {
                        crate::system::hardening::realtime(&ctx.handle.name, p);
                    }
                    ctx.run(check)
                },
            )?;
            handles.push(handle);
        }
        Ok(Runner { handles, stop })
    }

    /// The last run of every check, in config order.
    pub fn snapshot(&self) -> Vec<(String, Option<LastRun>)> {
        self.handles
            .iter()
            .map(|h| (h.name.clone(), h.last()))
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
    wake: Option<Arc<Stopper>>,
}

impl Loop {
    fn run(self, mut check: Box<dyn Check>) {
        let schedule = self.handle.schedule;
        let mut failures: u32 = 0;
        let mut was_healthy: Option<bool> = None;
        let mut was_idle: Option<bool> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let started = self.clock.now();
            let verdict = check.run(started);
            let finished = self.clock.now();
            let run = LastRun::judge(verdict, started, finished, schedule.deadline, failures);
            failures = run.consecutive_failures;
            let lease = run.lease(&schedule, started);
            let passed = run.passed();
            // Recorded before the lease changes: a fence that follows a revocation finds
            // this run's evidence, not the one before.
            self.handle.record(run.clone());
            match lease {
                Some(until) => self.leases.renew(self.index, until),
                // Tolerance used up: the node is unhealthy now. The feeder fences at its
                // next tick; the status thread is woken to hand the service over.
                None if !passed && self.leases.revoke(self.index) => {
                    if let Some(wake) = &self.wake {
                        wake.nudge();
                    }
                }
                None => {}
            }
            // Logged last: a log that blocks (a wedged journald) must not hold the lease.
            log_transition(&self.handle.name, was_healthy, &run, &schedule);
            log_idle(&self.handle, was_idle, &run);
            was_healthy = Some(passed);
            was_idle = Some(run.verdict.idle);
            let next = started + schedule.every;
            let now = self.clock.now();
            if next > now {
                thread::sleep(next - now);
            }
        }
    }
}

fn log_transition(name: &str, was: Option<bool>, run: &LastRun, schedule: &Schedule) {
    let passed = run.passed();
    if was == Some(passed) {
        return;
    }
    let (verdict, elapsed) = (&run.verdict, run.elapsed);
    let evidence = verdict.evidence.as_str();
    if passed {
        if was.is_some() {
            tracing::info!(check = %name, %evidence, "check recovered");
        } else {
            tracing::debug!(check = %name, %evidence, "check passed");
        }
    } else if verdict.healthy {
        tracing::warn!(check = %name, elapsed_ms = millis(elapsed),
            deadline_ms = millis(schedule.deadline), "check missed its deadline");
    } else {
        tracing::warn!(check = %name, %evidence, "check failed");
    }
}

/// A check that follows a condition says when it turns idle or active (first run included).
fn log_idle(handle: &CheckHandle, was_idle: Option<bool>, run: &LastRun) {
    let Some(when) = &handle.when else { return };
    let idle = run.verdict.idle;
    if was_idle == Some(idle) {
        return;
    }
    let name = &handle.name;
    if idle {
        let reason = run.verdict.evidence.as_str();
        tracing::info!(check = %name, %when, %reason, "check idle: its condition does not hold");
    } else {
        tracing::info!(check = %name, %when, "check active: its condition holds");
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
    let started = std::time::Instant::now();
    match crate::time::deadline::within("check-once", deadline, move || {
        let verdict = check.run(now);
        (verdict, check)
    }) {
        Ok((v, check)) => {
            // The pass rule is LastRun's, as for the daemon's runs.
            let run = LastRun::judge(v, Duration::ZERO, started.elapsed(), deadline, 0);
            Once {
                verdict: run.counted_verdict(deadline),
                elapsed: run.elapsed,
                check: Some(check),
            }
        }
        Err(crate::time::deadline::Overrun::TimedOut(_)) => Once {
            verdict: Verdict::unhealthy(format!(
                "no answer within the {} ms deadline (hung?)",
                deadline.as_millis()
            )),
            elapsed: started.elapsed(),
            check: None,
        },
        Err(e) => Once {
            verdict: Verdict::unhealthy(format!("cannot run the check: {e}")),
            elapsed: Duration::ZERO,
            check: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

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
