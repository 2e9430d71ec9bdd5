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
}
