//! The fence sequence: run once, latched, prepared at start-up.
//!
//! On the thread that fences (the feeder), in this order:
//! 1. Record the fence for this boot ([`record`]: one pwrite to the record opened at
//!    start-up on a tmpfs), so that a restarted wdfeed never arms again in this boot.
//! 2. One line to the kernel log (`/dev/kmsg`, and pstore where the platform has it, both
//!    opened at start-up): what failed, its evidence, and the fence bound.
//! 3. Isolate: take every interface in `fence.isolate` down (prepared socket, ioctls).
//! 4. SIGKILL every process held by the kill list, through pidfds held while healthy, so no
//!    reused PID is hit: the HA peer sees a clean death at once.
//! 5. The handover file says `1` (`fence.handover-file`), in this same round.
//! 6. `mode: watchdog`: nothing more; the feeder has stopped petting and the hardware resets
//!    the node. `mode: reboot`: reboot(2) at once, without sync. `mode: crashdump`: the
//!    feeder, which owns the devices, then sets every device to the crashdump timeout, pets
//!    once and crashes the kernel into the loaded crash kernel ([`crashdump`],
//!    [`Fence::with_devices`]).
//!
//! None of these allocates, takes a lock of this process, syncs, execs, creates a file or
//! waits on another thread (the kernel takes its own locks: taking a link down takes the
//! RTNL lock, which a wedged network stack may hold; then the kill waits behind it, but the
//! latch is closed and the record written first, so the watchdog still resets the node
//! within the bound): the texts are formatted into buffers on the stack, the evidence comes from each
//! check's lock-free run note, the kill list's pidfds sit in atomic slots. Then the status
//! thread is woken (a futex, no lock), and it does what may allocate or block, off the
//! feeder: it kills the named processes that appeared since the last refresh, and writes
//! the log lines ([`Fencer::report`]).
//!
//! The parts: the crash step ([`crashdump`]), the [`Latch`] the feeder closes first ([`latch`]), the kernel log the line
//! goes to ([`kernel_log`]), the isolation step ([`isolate`]), the kill list ([`kill`]),
//! the handover file the status thread keeps and the fence seals ([`handover`]), text
//! without allocation ([`line`]), and the sequence itself ([`Fencer`]).

pub mod crashdump;
mod handover;
mod isolate;
mod kernel_log;
mod kill;
mod latch;
mod line;
pub mod operator;
pub mod record;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use crashdump::Crashdump;
pub use handover::HandoverFile;
pub use isolate::Isolator;
pub use kernel_log::KernelLog;
pub use kill::KillList;
pub use latch::Latch;
pub use line::Line;
pub use operator::Operator;
pub use record::FenceRecord;

use crate::config::FenceMode;
use crate::device::Armed;
use crate::health::runner::CheckHandle;
use crate::system::errno_slot::{errno_of, ErrnoSlot};
use crate::time::Stopper;

/// Why the node is fenced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceReason {
    /// Check `index` holds no valid lease.
    Check { index: usize },
    /// The feeder did not run for `gap`: the node was frozen.
    Stall { gap: Duration },
    /// An operator asked for it (`wdfeed fence`); the reason is in [`Operator`].
    Operator,
}

/// What the feeder calls once, when it closes the latch.
pub trait Fence: Send + Sync {
    fn fence(&self, reason: &FenceReason, now: Duration);
    /// The fence's step that needs the devices, right after [`Fence::fence`], on the thread
    /// that owns them (the feeder): `mode: crashdump` retimes, pets once and crashes.
    fn with_devices(&self, _devices: &mut [Box<dyn Armed>]) {}
}

/// Reboots the node at once; returns only if the kernel refused (its errno).
type Reboot = Box<dyn Fn() -> i32 + Send + Sync>;

/// reboot(2) with RB_AUTOBOOT: restart at once, no sync, no shutdown sequence.
fn kernel_reboot() -> Reboot {
    Box::new(
        || match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT) {
            Ok(never) => match never {},
            Err(e) => e as i32,
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

/// What fenced the node, as the fence wrote it: fixed buffers, so that keeping it
/// allocates nothing.
pub struct FenceNote {
    pub check: Line<128>,
    pub evidence: Line<768>,
}

/// The real fence sequence.
pub struct Fencer {
    plan: Plan,
    kill: Arc<KillList>,
    kernel_log: KernelLog,
    isolate: Isolator,
    reboot: Reboot,
    checks: Vec<Arc<CheckHandle>>,
    /// The fence record of this boot (none in a dry run).
    record: Option<Arc<FenceRecord>>,
    /// `fence.handover-file` (none in a dry run).
    handover: Option<Arc<HandoverFile>>,
    /// The status thread's sleep, rung once the fence has acted.
    wake: Option<Arc<Stopper>>,
    /// `mode: crashdump`: the crash step (none in the other modes).
    crashdump: Option<Crashdump>,
    /// What operators asked: the reason of `wdfeed fence`, the end of a pause.
    operator: Option<Arc<Operator>>,
    /// What fenced the node, set once by the fence.
    note: OnceLock<FenceNote>,
    recorded: ErrnoSlot,
    rebooted: ErrnoSlot,
    /// The report was logged (once).
    reported: AtomicBool,
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
            record: None,
            handover: None,
            wake: None,
            crashdump: None,
            operator: None,
            note: OnceLock::new(),
            recorded: ErrnoSlot::new(),
            rebooted: ErrnoSlot::new(),
            reported: AtomicBool::new(false),
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

    /// The same fence, making the handover file say `1` after the kills.
    pub fn with_handover(mut self, handover: Option<Arc<HandoverFile>>) -> Self {
        self.handover = handover;
        self
    }

    /// The same fence, ringing `wake` (the status thread's sleep) once it has acted.
    pub fn with_wake(mut self, wake: Arc<Stopper>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// The same fence, crashing into the crash kernel after the rest (`mode: crashdump`).
    pub fn with_crashdump(mut self, crashdump: Option<Crashdump>) -> Self {
        self.crashdump = crashdump;
        self
    }

    /// The status thread, every round: news of the crash kernel, and what the crash step
    /// did once it ran (`mode: crashdump`).
    pub fn watch(&self) {
        if let Some(c) = &self.crashdump {
            let _ = c.watch();
            c.log_outcome_once();
        }
    }

    /// The same fence, naming an operator's reason (`wdfeed fence`) and a pause that just
    /// ended.
    pub fn with_operator(mut self, operator: Arc<Operator>) -> Self {
        self.operator = Some(operator);
        self
    }

    /// The same fence with another reboot (tests).
    #[cfg(test)]
    fn with_reboot(mut self, reboot: Reboot) -> Self {
        self.reboot = reboot;
        self
    }

    /// What fenced the node (check, evidence), once the fence has recorded it. Lock-free.
    pub fn fenced_by(&self) -> Option<(String, String)> {
        self.note.get().map(|n| {
            (
                n.check.as_str().to_string(),
                n.evidence.as_str().to_string(),
            )
        })
    }

    /// The failing check and its evidence, into fixed buffers: never waits on a check
    /// thread, never allocates.
    fn describe(&self, reason: &FenceReason, now: Duration) -> FenceNote {
        let mut note = FenceNote {
            check: Line::default(),
            evidence: Line::default(),
        };
        match reason {
            FenceReason::Stall { gap } => {
                let _ = note.check.write_str("freeze-guard");
                let _ = write!(
                    note.evidence,
                    "the feeder did not run for {:.1} s: the node was frozen",
                    gap.as_secs_f64()
                );
            }
            FenceReason::Check { index } => match self.checks.get(*index) {
                None => {
                    let _ = write!(note.check, "check {index}");
                    let _ = note.evidence.write_str("no lease");
                }
                Some(h) => {
                    let _ = note.check.write_str(&h.name);
                    h.write_why_expired(now, &mut note.evidence);
                    if let Some(op) = &self.operator {
                        let within = h.schedule.worst_detection();
                        operator::write_pause_note(op, now, within, &mut note.evidence);
                    }
                }
            },
            FenceReason::Operator => {
                let _ = note.check.write_str("operator");
                if let Some(op) = &self.operator {
                    let _ = op.write_fence_reason(&mut note.evidence);
                }
            }
        }
        note
    }

    fn mode_word(&self) -> &'static str {
        match self.plan.mode {
            FenceMode::Watchdog => "watchdog",
            FenceMode::Reboot => "reboot",
            FenceMode::Crashdump => "crashdump",
        }
    }

    /// Logs what the fence did, once: the failing check, each step's outcome, and the
    /// processes killed, including those the last scan finds (started since the last
    /// refresh), which it kills now. Off the feeder: the status thread calls it when the
    /// fence wakes it, and the exit sequence once more.
    pub fn report(&self) {
        let Some(note) = self.note.get() else { return };
        if self.reported.swap(true, Ordering::SeqCst) {
            return;
        }
        let dry_run = self.plan.dry_run;
        let (check, evidence) = (note.check.as_str(), note.evidence.as_str());
        let (bound, mode) = (&self.plan.bound, self.mode_word());
        if dry_run {
            tracing::error!(%check, %evidence, bound_s = %bound, %mode, "would fence (dry run: nothing is killed, no device is open)");
        } else {
            tracing::error!(%check, %evidence, bound_s = %bound, %mode, "fencing");
        }
        for line in self.isolate.report(dry_run) {
            tracing::error!("{line}");
        }
        for line in self.kill.report(dry_run) {
            tracing::error!("{line}");
        }
        if let Some(Err(e)) = self.recorded.get() {
            tracing::error!(error = %e, "the fence record was not written: a wdfeed restarted in this boot could arm again");
        }
        if let Some(Some(Err(e))) = self.handover.as_ref().map(|h| h.fence_outcome()) {
            tracing::error!(error = %e, "the fence could not make the handover file say 1; the status thread tries again");
        }
        if let Some(c) = &self.crashdump {
            c.log_outcome_once();
        }
        if self.plan.mode == FenceMode::Reboot {
            match (dry_run, self.rebooted.get()) {
                (true, _) => tracing::error!("would reboot now (reboot(2), no sync)"),
                (false, Some(Err(e))) => {
                    tracing::error!(error = %e, "reboot failed; the watchdog resets the node instead")
                }
                (false, _) => {}
            }
        }
    }
}

impl Fence for Fencer {
    fn fence(&self, reason: &FenceReason, now: Duration) {
        let note = self.describe(reason, now);
        let dry_run = self.plan.dry_run;
        if !dry_run {
            // The record first (a pwrite to tmpfs), so a restarted wdfeed never arms again.
            if let Some(r) = &self.record {
                self.recorded.set(
                    r.write_fenced(now, note.check.as_str(), note.evidence.as_str())
                        .map_err(|e| errno_of(&e)),
                );
            }
            let mut line = Line::<1280>::default();
            let _ = write!(
                line,
                "<2>wdfeed: FENCE check={} evidence={} bound={}s mode={}",
                note.check,
                note.evidence,
                self.plan.bound,
                self.mode_word()
            );
            line.end_with_newline();
            self.kernel_log.write(line.as_bytes());
        }
        // Isolate: the node stops answering for its addresses before anything else.
        self.isolate.isolate(dry_run);
        self.kill.kill_held(dry_run);
        if let Some(h) = &self.handover {
            h.fence_write();
        }
        let _ = self.note.set(note);
        if self.plan.mode == FenceMode::Reboot && !dry_run {
            self.rebooted
                .set(Err(nix::errno::Errno::from_raw((self.reboot)())));
        }
        if let Some(w) = &self.wake {
            w.nudge();
        }
    }

    fn with_devices(&self, devices: &mut [Box<dyn Armed>]) {
        if let Some(c) = &self.crashdump {
            c.run(devices, &self.kernel_log);
            // The status thread logs what the step did (it was woken before the step ran).
            if let Some(w) = &self.wake {
                w.nudge();
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
            libc::EPERM
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

    /// A fence with every part real and prepared, writing into `dir` (a tmpfs).
    fn full_fence(
        dir: &std::path::Path,
        kmsg: &std::fs::File,
        checks: Vec<Arc<CheckHandle>>,
    ) -> (Fencer, Arc<HandoverFile>, Arc<KillList>) {
        full_fence_killing(dir, kmsg, checks, "wdfeed-none-such")
    }

    /// The same, its kill list naming `victim` (of this process's user).
    fn full_fence_killing(
        dir: &std::path::Path,
        kmsg: &std::fs::File,
        checks: Vec<Arc<CheckHandle>>,
        victim: &str,
    ) -> (Fencer, Arc<HandoverFile>, Arc<KillList>) {
        let boot = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
        let (rec, _) = FenceRecord::open(dir, boot).unwrap();
        let handover = Arc::new(HandoverFile::prepare(&dir.join("handover")).unwrap());
        let kill = Arc::new(KillList::new(
            vec![kill::Target {
                name: victim.into(),
                uid: crate::ffi::effective_uid(),
            }],
            Root::host(),
        ));
        kill.refresh();
        let fencer = Fencer::new(
            plan(FenceMode::Watchdog),
            Arc::clone(&kill),
            KernelLog::to_file(kmsg.try_clone().unwrap()),
            checks,
        )
        .with_record(Some(Arc::new(rec)))
        .with_handover(Some(Arc::clone(&handover)))
        .with_wake(Arc::new(Stopper::default()))
        .with_reboot(Box::new(|| panic!("watchdog mode must not reboot")));
        (fencer, handover, kill)
    }

    #[test]
    fn the_fence_allocates_nothing_and_waits_on_no_other_thread() {
        // A process of the kill list, held by its pidfd: the signal through it is counted.
        let victim = crate::system::victim::SleepCopy::new("wdvfence");
        let mut child = victim.spawn(None);
        let dir = tempfile::Builder::new()
            .prefix("wdfeed-fence-")
            .tempdir_in("/dev/shm")
            .unwrap();
        let kmsg = tempfile::NamedTempFile::new().unwrap();
        let handle = CheckHandle::failed_for_test(
            "writable /",
            "/ read-only in /proc/1/mountinfo",
            Duration::from_secs(90),
        );
        let (fencer, handover, _kill) = full_fence_killing(
            dir.path(),
            kmsg.as_file(),
            vec![Arc::clone(&handle)],
            &victim.name,
        );
        let fencer = Arc::new(fencer);
        // Every lock another thread could hold while the fence runs, held by parked threads:
        // the check's last run (its thread, the status thread), the handover file's state
        // (the status thread).
        let (h, ho) = (Arc::clone(&handle), Arc::clone(&handover));
        let parked = crate::parked::Parked::hold(vec![
            Box::new(move |park| {
                let _g = h.lock_for_test();
                park()
            }),
            Box::new(move |park| {
                let _g = ho.lock_for_test();
                park()
            }),
        ]);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let f = Arc::clone(&fencer);
        std::thread::spawn(move || {
            let ((), n) = crate::ffi::alloc_count::allocations(|| {
                f.fence(&FenceReason::Check { index: 0 }, Duration::from_secs(100))
            });
            done_tx.send(n).unwrap();
        });
        let allocations = done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the fence waited on a lock another thread holds");
        assert_eq!(allocations, 0, "the fence allocated");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            child.wait().unwrap().signal(),
            Some(libc::SIGKILL),
            "the held victim was killed through its pidfd"
        );
        drop(parked);
        // And it did its work: the record, the kernel log line, the handover file.
        let text = std::fs::read_to_string(kmsg.path()).unwrap();
        assert_eq!(text, "<2>wdfeed: FENCE check=writable / evidence=/ read-only in /proc/1/mountinfo bound=45.0s mode=watchdog\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("handover")).unwrap(),
            "1\n"
        );
        let (_r, found) =
            FenceRecord::open(dir.path(), "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0").unwrap();
        assert!(
            matches!(found, record::Found::FencedThisBoot { .. }),
            "{found:?}"
        );
        assert_eq!(
            fencer.fenced_by(),
            Some((
                "writable /".to_string(),
                "/ read-only in /proc/1/mountinfo".to_string()
            ))
        );
    }

    #[test]
    fn an_operator_s_fence_allocates_nothing_waits_on_no_lock_and_records_the_reason() {
        let dir = tempfile::Builder::new()
            .prefix("wdfeed-fence-")
            .tempdir_in("/dev/shm")
            .unwrap();
        let kmsg = tempfile::NamedTempFile::new().unwrap();
        let schedule = Schedule {
            every: Duration::from_secs(1),
            deadline: Duration::from_secs(2),
            tolerance: 0,
        };
        let handle = Arc::new(CheckHandle::new("writable /".into(), schedule));
        let leases = Arc::new(crate::health::lease::LeaseTable::new(1));
        let op = Arc::new(Operator::default());
        let pause = Arc::new(crate::daemon::PauseBook::new(
            Arc::clone(&op),
            Arc::clone(&leases),
            vec![Arc::clone(&handle)],
            Duration::from_secs(3600),
            dir.path(),
            None,
        ));
        let (fencer, handover, _kill) =
            full_fence(dir.path(), kmsg.as_file(), vec![Arc::clone(&handle)]);
        let fencer = Arc::new(fencer.with_operator(Arc::clone(&op)));
        assert!(op.ask_fence(0, 4242, "demote of r0 failed"));
        // Every lock the control and status threads take, held by parked threads: the
        // pause's bookkeeping, the check's last run, the handover file's state.
        let (h, ho, pb) = (
            Arc::clone(&handle),
            Arc::clone(&handover),
            Arc::clone(&pause),
        );
        let parked = crate::parked::Parked::hold(vec![
            Box::new(move |park| {
                let _g = pb.lock_for_test();
                park()
            }),
            Box::new(move |park| {
                let _g = h.lock_for_test();
                park()
            }),
            Box::new(move |park| {
                let _g = ho.lock_for_test();
                park()
            }),
        ]);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let f = Arc::clone(&fencer);
        std::thread::spawn(move || {
            let ((), n) = crate::ffi::alloc_count::allocations(|| {
                f.fence(&FenceReason::Operator, Duration::from_secs(100))
            });
            done_tx.send(n).unwrap();
        });
        let allocations = done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the fence waited on a lock another thread holds");
        assert_eq!(allocations, 0, "the fence allocated");
        drop(parked);
        let text = std::fs::read_to_string(kmsg.path()).unwrap();
        assert_eq!(text, "<2>wdfeed: FENCE check=operator evidence=demote of r0 failed (wdfeed fence, uid 0, pid 4242) bound=45.0s mode=watchdog\n");
        let (_r, found) =
            FenceRecord::open(dir.path(), "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0").unwrap();
        match found {
            record::Found::FencedThisBoot { reason, .. } => assert_eq!(
                reason,
                "operator: demote of r0 failed (wdfeed fence, uid 0, pid 4242)"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_check_fence_right_after_a_pause_says_the_pause_ended() {
        let handle = CheckHandle::failed_for_test(
            "process heartbeat",
            "heartbeat pid 7 stopped (T)",
            Duration::from_secs(90),
        );
        let op = Arc::new(Operator::default());
        op.set_pause_until(Duration::from_secs(99));
        let fencer = Fencer::new(
            plan(FenceMode::Watchdog),
            no_kills(),
            KernelLog::default(),
            vec![handle],
        )
        .with_operator(op);
        fencer.fence(
            &FenceReason::Check { index: 0 },
            Duration::from_millis(99_500),
        );
        assert_eq!(
            fencer.fenced_by().unwrap().1,
            "heartbeat pid 7 stopped (T); a maintenance pause ended 0.5 s before"
        );
    }

    #[test]
    fn a_fence_right_after_the_revocation_names_the_failing_run() {
        // The check thread records the run before it revokes: the fence that follows at
        // once reads the failure, not the pass before it.
        let schedule = Schedule {
            every: Duration::from_secs(1),
            deadline: Duration::from_secs(2),
            tolerance: 0,
        };
        let handle = Arc::new(CheckHandle::new("process heartbeat".into(), schedule));
        let pass = LastRun::judge(
            Verdict::healthy("heartbeat pid 7 running"),
            Duration::from_secs(1),
            Duration::from_secs(1),
            schedule.deadline,
            0,
        );
        handle.record(pass);
        let fail = LastRun::judge(
            Verdict::unhealthy("heartbeat pid 7 stopped (T)"),
            Duration::from_secs(2),
            Duration::from_secs(2),
            schedule.deadline,
            0,
        );
        handle.record(fail);
        let mut out = Line::<256>::default();
        handle.write_why_expired(Duration::from_secs(3), &mut out);
        assert_eq!(out.as_str(), "heartbeat pid 7 stopped (T)");
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
