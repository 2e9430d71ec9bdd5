//! What a run of a check said ([`Verdict`]) and whether it counts ([`LastRun`]): the one
//! place that states what a pass is and which lease a run earns. The runner, the start-up
//! wait, the fence line and the status file all ask [`LastRun`].

use std::time::Duration;

use super::Schedule;

/// The outcome of one run of a check, with the evidence an operator reads in `wdfeed check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub healthy: bool,
    pub evidence: String,
    /// The check follows a condition (`when:`) that does not hold: it watched nothing, and
    /// `evidence` says why. An idle run is healthy: it renews the lease.
    pub idle: bool,
}

impl Verdict {
    pub fn healthy(evidence: impl Into<String>) -> Self {
        Verdict {
            healthy: true,
            evidence: evidence.into(),
            idle: false,
        }
    }

    /// Idle: the check's condition does not hold; `reason` says what was seen.
    pub fn idle(reason: impl Into<String>) -> Self {
        Verdict {
            healthy: true,
            evidence: reason.into(),
            idle: true,
        }
    }

    pub fn unhealthy(evidence: impl Into<String>) -> Self {
        Verdict {
            healthy: false,
            evidence: evidence.into(),
            idle: false,
        }
    }
}

/// A finished run of a check: what it said, how long it took, and whether it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastRun {
    pub verdict: Verdict,
    pub elapsed: Duration,
    pub finished_at: Duration,
    /// Failed runs in a row, this one included (0 after a pass).
    pub consecutive_failures: u32,
    passed: bool,
}

impl LastRun {
    /// Judges a run that started at `started` and finished at `finished`, after
    /// `failures_before` failed runs in a row. The pass rule: the check said healthy, and
    /// said it within its deadline.
    pub fn judge(
        verdict: Verdict,
        started: Duration,
        finished: Duration,
        deadline: Duration,
        failures_before: u32,
    ) -> LastRun {
        let elapsed = finished.saturating_sub(started);
        let passed = verdict.healthy && elapsed <= deadline;
        LastRun {
            verdict,
            elapsed,
            finished_at: finished,
            consecutive_failures: if passed {
                0
            } else {
                failures_before.saturating_add(1)
            },
            passed,
        }
    }

    /// Whether this run passed: healthy, and within the deadline.
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// The verdict as it counts: the check's own, except that a healthy answer that came
    /// after `deadline` is unhealthy, saying so.
    pub fn counted_verdict(&self, deadline: Duration) -> Verdict {
        if self.passed || !self.verdict.healthy {
            return self.verdict.clone();
        }
        Verdict::unhealthy(format!(
            "{} (took {} ms, over the {} ms deadline)",
            self.verdict.evidence,
            self.elapsed.as_millis(),
            deadline.as_millis()
        ))
    }

    /// The lease this run earns: `Some(until)` to renew, `None` to withhold. A failed run
    /// still renews while the failures in a row stay within the check's `tolerance`.
    ///
    /// The lease is counted from the run's start: the next run starts `every` later and must
    /// finish within `deadline`, so a healthy check always renews before its lease runs out.
    pub fn lease(&self, schedule: &Schedule, started: Duration) -> Option<Duration> {
        (self.passed || self.consecutive_failures <= schedule.tolerance)
            .then(|| started + schedule.every + schedule.deadline)
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

    /// A run that started at `started`, took `took`, after `failures_before` failures.
    fn run(healthy: bool, started: Duration, took: Duration, failures_before: u32) -> LastRun {
        let v = if healthy {
            Verdict::healthy("ok")
        } else {
            Verdict::unhealthy("bad")
        };
        LastRun::judge(
            v,
            started,
            started + took,
            sched(0).deadline,
            failures_before,
        )
    }

    #[test]
    fn a_pass_is_healthy_within_the_deadline() {
        assert!(run(true, S(100), S(10), 3).passed());
        assert!(!run(true, S(100), S(11), 0).passed(), "late");
        assert!(!run(false, S(100), S(1), 0).passed());
        assert_eq!(run(true, S(100), S(1), 3).consecutive_failures, 0);
        assert_eq!(run(false, S(100), S(1), 3).consecutive_failures, 4);
    }

    #[test]
    fn a_late_healthy_answer_counts_as_unhealthy_and_says_why() {
        let late = run(true, S(100), S(11), 0).counted_verdict(S(10));
        assert!(!late.healthy);
        assert_eq!(
            late.evidence,
            "ok (took 11000 ms, over the 10000 ms deadline)"
        );
        assert_eq!(
            run(true, S(100), S(1), 0).counted_verdict(S(10)),
            Verdict::healthy("ok")
        );
        assert_eq!(
            run(false, S(100), S(1), 0).counted_verdict(S(10)),
            Verdict::unhealthy("bad")
        );
    }

    #[test]
    fn a_passing_run_renews_from_its_start() {
        assert_eq!(
            run(true, S(100), S(1), 0).lease(&sched(0), S(100)),
            Some(S(115))
        );
    }

    #[test]
    fn a_failing_or_late_run_renews_nothing_without_tolerance() {
        assert_eq!(run(false, S(100), S(1), 0).lease(&sched(0), S(100)), None);
        assert_eq!(run(true, S(100), S(11), 0).lease(&sched(0), S(100)), None);
    }

    #[test]
    fn tolerance_covers_that_many_consecutive_failures_and_no_more() {
        let s = sched(1);
        assert_eq!(run(false, S(100), S(1), 0).lease(&s, S(100)), Some(S(115)));
        assert_eq!(run(false, S(105), S(1), 1).lease(&s, S(105)), None);
    }
}
