//! The fence sequence: run once, latched, prepared at start-up.
//!
//! 1. One line to the kernel log (`/dev/kmsg`, opened at start-up) and to stderr: what
//!    failed, its evidence, and the fence bound.
//! 2. SIGKILL every process named in `fence.kill`, through pidfds held while healthy, so no
//!    reused PID is hit: the HA peer sees a clean death at once.
//! 3. `mode: watchdog`: nothing more; the feeder has stopped petting and the hardware resets
//!    the node. `mode: reboot`: reboot(2) at once, without sync.
//!
//! Never sync, never exec, never create a file, never block on a disk on this path.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::FenceMode;
use crate::ffi;
use crate::health::runner::CheckHandle;
use crate::system::{process_table, Root};

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

/// A process of the kill list, held by pidfd.
struct Held {
    pid: i32,
    name: String,
    fd: OwnedFd,
}

/// The processes named in `fence.kill`, held as pidfds and refreshed while the node is
/// healthy by a thread that is not the feeder.
pub struct KillList {
    names: Vec<String>,
    root: Root,
    held: Mutex<Vec<Held>>,
}

impl KillList {
    pub fn new(names: Vec<String>, root: Root) -> Self {
        KillList {
            names,
            root,
            held: Mutex::new(Vec::new()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Finds the named processes now and holds a pidfd on each.
    pub fn refresh(&self) {
        let fresh = self.scan();
        if let Ok(mut held) = self.held.lock() {
            *held = fresh;
        }
    }

    fn scan(&self) -> Vec<Held> {
        let me = std::process::id() as i32;
        let mut out = Vec::new();
        for name in &self.names {
            for p in process_table::find_by_name(&self.root, name) {
                // Never ourselves; never init (killing it panics the kernel instead of fencing).
                if p.pid == me || p.pid == 1 || !self.root.is_host() {
                    continue;
                }
                if let Ok(fd) = ffi::pidfd_open(p.pid) {
                    out.push(Held {
                        pid: p.pid,
                        name: name.clone(),
                        fd,
                    });
                }
            }
        }
        out
    }

    /// SIGKILLs every held process, then any that appeared since the last refresh.
    /// Returns one line per process, for the log. With `dry_run`, kills nothing.
    pub fn kill_all(&self, dry_run: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let mut killed = Vec::new();
        let mut send = |h: &Held, lines: &mut Vec<String>| {
            if killed.contains(&h.pid) {
                return;
            }
            killed.push(h.pid);
            if dry_run {
                lines.push(format!("would kill pid {} ({})", h.pid, h.name));
                return;
            }
            match ffi::pidfd_send_signal(h.fd.as_fd(), libc::SIGKILL) {
                Ok(()) => lines.push(format!("killed pid {} ({})", h.pid, h.name)),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => lines.push(format!("cannot kill pid {} ({}): {e}", h.pid, h.name)),
            }
        };
        // A refresh in progress holds the lock only to swap the list; a poisoned lock still
        // holds valid descriptors.
        let held = match self.held.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for h in held.iter() {
            send(h, &mut lines);
        }
        drop(held);
        for h in self.scan() {
            send(&h, &mut lines);
        }
        lines
    }
}

/// Powers the node off hard; returns only if the kernel refused (the error text).
pub type Reboot = Box<dyn Fn() -> String + Send + Sync>;

/// reboot(2) with RB_AUTOBOOT: no sync, no shutdown sequence.
pub fn kernel_reboot() -> Reboot {
    Box::new(
        || match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT) {
            Ok(never) => match never {},
            Err(e) => format!("reboot(2) failed: {}", e.desc()),
        },
    )
}

/// The real fence sequence.
pub struct Fencer {
    pub mode: FenceMode,
    pub dry_run: bool,
    pub kill: Arc<KillList>,
    /// `/dev/kmsg`, and pstore's `/dev/pmsg0` where present, opened at start-up (none in a
    /// dry run or a fixture root), so the next boot can tell why the node was reset.
    pub kernel_logs: Vec<Mutex<File>>,
    pub reboot: Reboot,
    pub checks: Vec<Arc<CheckHandle>>,
    /// The fence bound, in seconds, for the message.
    pub bound: String,
    /// What fenced the node (check, evidence), for `wdfeed status`.
    pub fenced_by: Mutex<Option<(String, String)>>,
}

impl Fencer {
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
            FenceReason::Check { index } => {
                let Some(h) = self.checks.get(*index) else {
                    return (format!("check {index}"), "no lease".into());
                };
                let evidence = match h.last.try_lock() {
                    Err(_) => "evidence unavailable (the check is recording it right now)".into(),
                    Ok(last) => match &*last {
                        None => "never finished a run (hung from the start?)".into(),
                        Some(run) if !run.verdict.healthy => run.verdict.evidence.clone(),
                        Some(run) if run.elapsed > h.schedule.deadline => format!(
                            "last run took {} ms, over its {} ms deadline ({})",
                            run.elapsed.as_millis(),
                            h.schedule.deadline.as_millis(),
                            run.verdict.evidence
                        ),
                        Some(run) => format!(
                            "no run has finished for {:.1} s (hung?); the last said: {}",
                            now.saturating_sub(run.finished_at).as_secs_f64(),
                            run.verdict.evidence
                        ),
                    },
                };
                (h.name.clone(), evidence)
            }
        }
    }
}

impl Fence for Fencer {
    fn fence(&self, reason: &FenceReason, now: Duration) {
        let (check, evidence) = self.describe(reason, now);
        let mode = match self.mode {
            FenceMode::Watchdog => "watchdog",
            FenceMode::Reboot => "reboot",
        };
        // Kernel logs first (they never block), then the kills, and only then stderr,
        // which a wedged journald could stall.
        if !self.dry_run {
            let line = format!(
                "<2>wdfeed: FENCE check={check} evidence={evidence} bound={}s mode={mode}\n",
                self.bound
            );
            for log in &self.kernel_logs {
                if let Ok(mut f) = log.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
        }
        let kills = self.kill.kill_all(self.dry_run);
        // Recorded for `wdfeed status` only after the kills: the status thread reads this
        // lock, and the fence must never wait on a thread that is not realtime.
        if let Ok(mut f) = self.fenced_by.lock() {
            *f = Some((check.clone(), evidence.clone()));
        }
        if self.dry_run {
            tracing::error!(%check, %evidence, bound_s = %self.bound, %mode, "would fence (dry run: nothing is killed, no device is open)");
        } else {
            tracing::error!(%check, %evidence, bound_s = %self.bound, %mode, "fencing");
        }
        for line in kills {
            tracing::error!("{line}");
        }
        if self.mode == FenceMode::Reboot {
            if self.dry_run {
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
    use std::process::{Child, Command};

    /// A victim of our own, under a name nothing else on the machine has.
    fn victim(tag: &str) -> (Child, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("wdv{}{tag}", std::process::id() % 100_000);
        let exe = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let child = Command::new(&exe).arg("60").spawn().unwrap();
        // Wait until /proc shows the new name (exec has happened).
        for _ in 0..200 {
            if process_table::stat(&Root::host(), child.id() as i32).is_some_and(|s| s.comm == name)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (child, name, dir)
    }

    #[test]
    fn kills_exactly_the_named_processes() {
        let (mut a, name_a, _da) = victim("a");
        let (mut b, _name_b, _db) = victim("b");
        let list = KillList::new(vec![name_a.clone()], Root::host());
        list.refresh();
        let lines = list.kill_all(false);
        assert_eq!(lines, vec![format!("killed pid {} ({name_a})", a.id())]);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(a.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(
            b.try_wait().unwrap().is_none(),
            "the other victim must live"
        );
        b.kill().unwrap();
        b.wait().unwrap();
    }

    #[test]
    fn a_process_started_after_the_refresh_is_killed_too() {
        let (mut a, name, _d) = victim("late");
        let list = KillList::new(vec![name], Root::host());
        // No refresh: the fence's own scan must find it.
        let lines = list.kill_all(false);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(a.wait().is_ok());
    }

    #[test]
    fn dry_run_kills_nothing() {
        let (mut a, name, _d) = victim("dry");
        let list = KillList::new(vec![name.clone()], Root::host());
        list.refresh();
        assert_eq!(
            list.kill_all(true),
            vec![format!("would kill pid {} ({name})", a.id())]
        );
        assert!(a.try_wait().unwrap().is_none());
        a.kill().unwrap();
        a.wait().unwrap();
    }

    #[test]
    fn a_fixture_root_never_kills_host_processes() {
        let (mut a, name, _d) = victim("fx");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!("proc/{}", a.id()));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("stat"), format!("{} ({name}) S 1 1 1", a.id())).unwrap();
        let list = KillList::new(vec![name], Root::at(dir.path()));
        list.refresh();
        assert!(list.kill_all(false).is_empty());
        assert!(a.try_wait().unwrap().is_none());
        a.kill().unwrap();
        a.wait().unwrap();
    }

    #[test]
    fn reboot_mode_calls_the_injected_reboot_once() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let fencer = Fencer {
            mode: FenceMode::Reboot,
            dry_run: false,
            kill: Arc::new(KillList::new(vec![], Root::host())),
            kernel_logs: vec![],
            reboot: Box::new(move || {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                "refused in test".into()
            }),
            checks: vec![],
            bound: "45.0".into(),
            fenced_by: Mutex::new(None),
        };
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
        let handle = Arc::new(CheckHandle {
            name: "writable /".into(),
            schedule: crate::health::runner::Schedule {
                every: Duration::from_secs(5),
                deadline: Duration::from_secs(10),
                tolerance: 0,
            },
            last: Mutex::new(Some(crate::health::runner::LastRun {
                verdict: crate::health::Verdict::unhealthy("/ read-only in /proc/1/mountinfo"),
                elapsed: Duration::from_millis(1),
                finished_at: Duration::from_secs(90),
                consecutive_failures: 1,
            })),
        });
        let fencer = Fencer {
            mode: FenceMode::Watchdog,
            dry_run: false,
            kill: Arc::new(KillList::new(vec![], Root::host())),
            kernel_logs: vec![Mutex::new(file.reopen().unwrap())],
            reboot: Box::new(|| panic!("watchdog mode must not reboot")),
            checks: vec![handle],
            bound: "45.0".into(),
            fenced_by: Mutex::new(None),
        };
        fencer.fence(&FenceReason::Check { index: 0 }, Duration::from_secs(100));
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert_eq!(
            *fencer.fenced_by.lock().unwrap(),
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
}
