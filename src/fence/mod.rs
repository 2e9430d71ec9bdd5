//! The fence sequence: run once, latched, prepared at start-up.
//!
//! 1. Record the fence for this boot ([`record`]: one pwrite to the record opened at
//!    start-up on a tmpfs), so that a restarted wdfeed never arms again in this boot.
//! 1. One line to the kernel log (`/dev/kmsg`, opened at start-up) and to stderr: what
//!    failed, its evidence, and the fence bound.
//! 2. Isolate: take every interface in `fence.isolate` down (prepared socket, ioctls).
//! 3. SIGKILL every process named in `fence.kill`, through pidfds held while healthy, so no
//!    reused PID is hit: the HA peer sees a clean death at once.
//! 4. `mode: watchdog`: nothing more; the feeder has stopped petting and the hardware resets
//!    the node. `mode: reboot`: reboot(2) at once, without sync.
//!
//! Never sync, never exec, never create a file, never block on a disk on this path.
//!
//! The parts: the [`Latch`] the feeder closes first ([`latch`]), the kernel log the line
//! goes to ([`kernel_log`]), the isolation step ([`isolate`]), the kill list ([`kill`]), and the sequence itself ([`Fencer`]).

mod isolate;
mod kernel_log;
mod kill;
mod latch;
pub mod record;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use isolate::Isolator;
pub use kernel_log::KernelLog;
pub use kill::KillList;
pub use latch::Latch;
pub use record::FenceRecord;

use crate::config::FenceMode;
use crate::health::runner::CheckHandle;

/// Why the node is fenced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceReason {
    /// Check `index` holds no valid lease.
    Check { index: usize },
    /// The feeder did not run for `gap`: the node was frozen.
    Stall { gap: Duration },
}

/// What the feeder calls once, when it closes the latch.
pub trait Fence: Send + Sync {
    fn fence(&self, reason: &FenceReason, now: Duration);
}

/// Powers the node off hard; returns only if the kernel refused (the error text).
type Reboot = Box<dyn Fn() -> String + Send + Sync>;

/// reboot(2) with RB_AUTOBOOT: no sync, no shutdown sequence.
fn kernel_reboot() -> Reboot {
    Box::new(
        || match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT) {
            Ok(never) => match never {},
            Err(e) => format!("reboot(2) failed: {}", e.desc()),
        },
    )
}

/// What the fence does, as the config and the command line say.
pub struct Plan {
    pub mode: FenceMode,
    /// Log "would fence" and kill nothing.
    pub dry_run: bool,
    /// The fence bound, in seconds, for the message.
    pub bound: String,
}

/// The real fence sequence.
pub struct Fencer {
    plan: Plan,
    kill: Arc<KillList>,
    kernel_log: KernelLog,
    isolate: Isolator,
    reboot: Reboot,
    checks: Vec<Arc<CheckHandle>>,
    /// What fenced the node (check, evidence), for `wdfeed status`.
    fenced_by: Mutex<Option<(String, String)>>,
    /// The fence record of this boot (none in a dry run).
    record: Option<Arc<FenceRecord>>,
}

impl Fencer {
    /// The fence for `checks` (in lease order), with everything it needs already open.
    pub fn new(
        plan: Plan,
        kill: Arc<KillList>,
        kernel_log: KernelLog,
        checks: Vec<Arc<CheckHandle>>,
    ) -> Self {
        Fencer {
            plan,
            kill,
            kernel_log,
            isolate: Isolator::default(),
            reboot: kernel_reboot(),
            checks,
            fenced_by: Mutex::new(None),
            record: None,
        }
    }

    /// The same fence, taking `isolate`'s interfaces down after the kernel log line.
    pub fn with_isolation(mut self, isolate: Isolator) -> Self {
        self.isolate = isolate;
        self
    }

    /// The same fence, recording itself in `record` first.
    pub fn with_record(mut self, record: Option<Arc<FenceRecord>>) -> Self {
        self.record = record;
        self
    }

    /// The same fence with another reboot (tests).
    #[cfg(test)]
    fn with_reboot(mut self, reboot: Reboot) -> Self {
        self.reboot = reboot;
        self
    }

    /// What fenced the node (check, evidence), if it is fenced; `None` also while the fence
    /// is recording it, so the caller never waits on the fence.
    pub fn fenced_by(&self) -> Option<(String, String)> {
        self.fenced_by.try_lock().ok().and_then(|f| f.clone())
    }

    /// The failing check and its evidence, without ever waiting on a check thread.
    fn describe(&self, reason: &FenceReason, now: Duration) -> (String, String) {
        match reason {
            FenceReason::Stall { gap } => (
                "freeze-guard".into(),
                format!(
                    "the feeder did not run for {:.1} s: the node was frozen",
                    gap.as_secs_f64()
                ),
            ),
            FenceReason::Check { index } => match self.checks.get(*index) {
                None => (format!("check {index}"), "no lease".into()),
                Some(h) => (h.name.clone(), h.why_expired(now)),
            },
        }
    }
}

impl Fence for Fencer {
    fn fence(&self, reason: &FenceReason, now: Duration) {
        let (check, evidence) = self.describe(reason, now);
        let Plan {
            mode,
            dry_run,
            ref bound,
        } = self.plan;
        let mode_word = match mode {
            FenceMode::Watchdog => "watchdog",
            FenceMode::Reboot => "reboot",
        };
        // The record first (a pwrite to tmpfs), so a restarted wdfeed never arms again;
        // then the kernel logs (they never block), the kills, and only then stderr, which a
        // wedged journald could stall.
        let recorded = match (&self.record, dry_run) {
            (Some(r), false) => Some(r.write_fenced(now, &check, &evidence)),
            _ => None,
        };
        if !dry_run {
            self.kernel_log.write(&format!(
                "<2>wdfeed: FENCE check={check} evidence={evidence} bound={bound}s mode={mode_word}\n"
            ));
        }
        // Isolate: the node stops answering for its addresses before anything else.
        self.isolate.isolate(dry_run);
        let kills = self.kill.kill_all(dry_run);
        // Recorded for `wdfeed status` only after the kills: the status thread reads this
        // lock, and the fence must never wait on a thread that is not realtime.
        if let Ok(mut f) = self.fenced_by.lock() {
            *f = Some((check.clone(), evidence.clone()));
        }
        if dry_run {
            tracing::error!(%check, %evidence, bound_s = %bound, mode = %mode_word, "would fence (dry run: nothing is killed, no device is open)");
        } else {
            tracing::error!(%check, %evidence, bound_s = %bound, mode = %mode_word, "fencing");
        }
        for line in self.isolate.report(dry_run) {
            tracing::error!("{line}");
        }
        for line in kills {
            tracing::error!("{line}");
        }
        if let Some(Err(e)) = recorded {
            tracing::error!(error = %e, "the fence record was not written: a wdfeed restarted in this boot could arm again");
        }
        if mode == FenceMode::Reboot {
            if dry_run {
                tracing::error!("would reboot now (reboot(2), no sync)");
            } else {
                let err = (self.reboot)();
                tracing::error!(error = %err, "reboot failed; the watchdog resets the node instead");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{LastRun, Schedule, Verdict};
    use crate::system::Root;

    fn plan(mode: FenceMode) -> Plan {
        Plan {
            mode,
            dry_run: false,
            bound: "45.0".into(),
        }
    }

    fn no_kills() -> Arc<KillList> {
        Arc::new(KillList::new(vec![], Root::host()))
    }

    #[test]
    fn reboot_mode_calls_the_injected_reboot_once() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let fencer = Fencer::new(
            plan(FenceMode::Reboot),
            no_kills(),
            KernelLog::default(),
            vec![],
        )
        .with_reboot(Box::new(move || {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            "refused in test".into()
        }));
        fencer.fence(
            &FenceReason::Stall {
                gap: Duration::from_secs(40),
            },
            Duration::from_secs(100),
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn the_fence_line_goes_to_kmsg_with_check_and_evidence() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let schedule = Schedule {
            every: Duration::from_secs(5),
            deadline: Duration::from_secs(10),
            tolerance: 0,
        };
        let handle = Arc::new(CheckHandle::new("writable /".into(), schedule));
        handle.record(LastRun::judge(
            Verdict::unhealthy("/ read-only in /proc/1/mountinfo"),
            Duration::from_secs(90),
            Duration::from_secs(90) + Duration::from_millis(1),
            schedule.deadline,
            0,
        ));
        let fencer = Fencer::new(
            plan(FenceMode::Watchdog),
            no_kills(),
            KernelLog::to_file(file.reopen().unwrap()),
            vec![handle],
        )
        .with_reboot(Box::new(|| panic!("watchdog mode must not reboot")));
        assert_eq!(fencer.fenced_by(), None);
        fencer.fence(&FenceReason::Check { index: 0 }, Duration::from_secs(100));
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert_eq!(
            fencer.fenced_by(),
            Some((
                "writable /".to_string(),
                "/ read-only in /proc/1/mountinfo".to_string()
            ))
        );
        assert_eq!(
            text,
            "<2>wdfeed: FENCE check=writable / evidence=/ read-only in /proc/1/mountinfo bound=45.0s mode=watchdog\n"
        );
    }

    #[test]
    fn the_fence_records_itself_for_this_boot_first() {
        let dir = tempfile::Builder::new()
            .prefix("wdfeed-fence-")
            .tempdir_in("/dev/shm")
            .unwrap();
        let boot = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
        let (rec, _) = FenceRecord::open(dir.path(), boot).unwrap();
        let fencer = Fencer::new(
            plan(FenceMode::Watchdog),
            no_kills(),
            KernelLog::default(),
            vec![],
        )
        .with_record(Some(Arc::new(rec)));
        fencer.fence(
            &FenceReason::Stall {
                gap: Duration::from_secs(40),
            },
            Duration::from_secs(100),
        );
        let (_r, found) = FenceRecord::open(dir.path(), boot).unwrap();
        match found {
            record::Found::FencedThisBoot {
                at_boot_s, reason, ..
            } => {
                assert_eq!(at_boot_s, 100.0);
                assert!(
                    reason.starts_with("freeze-guard: the feeder did not run for 40.0 s"),
                    "{reason}"
                );
            }
            other => panic!("expected fenced, got {other:?}"),
        }
    }
}
