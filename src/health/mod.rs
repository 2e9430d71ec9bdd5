//! Health: what a check is ([`Check`]), what a run said and whether it counts ([`Verdict`],
//! [`LastRun`]: the one pass rule), how a check is scheduled ([`Schedule`]), the built-in
//! checks ([`checks`]), the lease table the feeder reads ([`lease`]) and the threads that
//! run checks and renew leases ([`runner`]).
//!
//! A check never decides to pet or fence. It reports a verdict with evidence; a passing run
//! renews its lease, and the feeder pets only while every lease is valid.

pub mod checks;
pub mod condition;
pub mod conditional;
pub(crate) mod lease;
pub(crate) mod run_note;
pub(crate) mod runner;
mod schedule;
mod verdict;

use std::time::Duration;

pub use run_note::cut as cut_text;
pub use schedule::Schedule;
pub use verdict::{LastRun, Verdict};

/// One health check. `run` may block (on a dead disk it may never return): that is why each
/// check runs on a thread of its own and only its lease depends on it.
pub trait Check: Send {
    /// Runs once. `now` is the time on the daemon's clock (CLOCK_BOOTTIME) when the run
    /// started, so checks that compare samples over time stay pure functions of their input.
    fn run(&mut self, now: Duration) -> Verdict;

    /// For checks that judge by comparing two samples (block-io): how far apart the samples
    /// must be for a verdict. `wdfeed check` runs such a check twice, that far apart.
    fn settle_time(&self) -> Option<Duration> {
        None
    }

    /// The condition the check follows (`when:`), as written: `mounted /srv/nfs`.
    fn condition(&self) -> Option<String> {
        None
    }
}
