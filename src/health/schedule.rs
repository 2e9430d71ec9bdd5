//! How one check is scheduled: how often it runs, how long a run may take, and how many
//! failed runs in a row still renew its lease.

use std::time::Duration;

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

    /// `t` rounded up to a whole number of `every` periods: the earliest a condition that
    /// must last `t`, timed from the run that first saw it, fails a later run.
    pub fn in_whole_periods(&self, t: Duration) -> Duration {
        let every = self.every.as_nanos().max(1);
        let periods = t.as_nanos().div_ceil(every);
        Duration::from_nanos(u64::try_from(periods * every).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn worst_detection_grows_with_tolerance() {
        let sched = |tolerance| Schedule {
            every: S(5),
            deadline: S(10),
            tolerance,
        };
        assert_eq!(sched(0).worst_detection(), S(15));
        assert_eq!(sched(1).worst_detection(), S(30));
    }

    #[test]
    fn a_time_to_see_is_counted_in_whole_periods() {
        let sched = Schedule {
            every: S(5),
            deadline: S(2),
            tolerance: 0,
        };
        assert_eq!(sched.in_whole_periods(S(0)), S(0));
        assert_eq!(sched.in_whole_periods(S(5)), S(5));
        // 7 s of D state, first seen at a run: the runs 5 and 10 s later see 5 and 10 s.
        assert_eq!(sched.in_whole_periods(S(7)), S(10));
        assert_eq!(sched.in_whole_periods(Duration::from_millis(10_001)), S(15));
    }
}
