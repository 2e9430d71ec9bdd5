//! Process hardening at start-up, so the feeder keeps its promise under memory pressure and
//! CPU storms: locked memory, OOM immunity, realtime scheduling. Each step is logged; a
//! refusal is a warning that says how to fix it, never a crash.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::mman::{mlockall, MlockAllFlags};

use crate::ffi;
use crate::system::Root;
use crate::time::deadline;

/// Stack size for every thread wdfeed starts: small, because mlockall locks every page of
/// it. Measured in a release build without mlockall (so only touched pages are resident):
/// 8 to 12 kB per thread, glibc's thread block included, healthy and through a fence; 64 kB
/// leaves five times that. Debug builds (the tests) use far bigger frames.
pub const THREAD_STACK: usize = if cfg!(debug_assertions) {
    256 * 1024
} else {
    64 * 1024
};

/// The feeder's SCHED_FIFO priority: the top one, like sbd's and corosync's (SCHED_RR 99), so a
/// busy cluster stack cannot starve it past the stall threshold; check threads run below it.
pub const FEEDER_PRIORITY: i32 = 99;
pub const CHECK_PRIORITY: i32 = 10;

/// mlockall(MCL_CURRENT | MCL_FUTURE): no page of wdfeed is ever swapped out or dropped, so
/// a pet never waits on a disk.
pub fn lock_memory() {
    match mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        Ok(()) => tracing::info!("memory locked (mlockall)"),
        Err(e) => {
            tracing::warn!(error = %e.desc(), "cannot lock memory: a pet may wait on swap; run as root or raise LimitMEMLOCK= (ulimit -l)")
        }
    }
}

/// Raises the soft limit of open descriptors to the hard one (the unit sets
/// `LimitNOFILE=`), so that wdfeed's own files, sockets and held pidfds never meet EMFILE.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "open file limit raised"),
            Err(e) => {
                tracing::warn!(error = %e.desc(), "cannot raise the open file limit; set LimitNOFILE= in the unit")
            }
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e.desc(), "cannot read the open file limit"),
    }
}

/// oom_score_adj -1000: the OOM killer never picks wdfeed. Best effort: a write that does
/// not end within `limit` is a warning, and start-up goes on.
pub fn protect_from_oom(root: &Root, limit: Duration) {
    if !root.is_host() {
        return;
    }
    match write_oom_score_adj(root.proc("self/oom_score_adj"), limit) {
        Ok(()) => tracing::info!("OOM killer will spare wdfeed (oom_score_adj -1000)"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot set oom_score_adj: the OOM killer may pick wdfeed; run as root (CAP_SYS_RESOURCE)")
        }
    }
}

/// Writes -1000 to `path` (the process's oom_score_adj), giving up after `limit`.
fn write_oom_score_adj(path: PathBuf, limit: Duration) -> Result<(), String> {
    let shown = path.display().to_string();
    deadline::within("oom-score", limit, move || fs::write(path, "-1000"))
        .map_err(|e| format!("writing {shown} {e}"))?
        .map_err(|e| e.to_string())
}

/// One malloc arena: without it glibc reserves an arena per thread and mlockall locks each
/// one (measured: 6 MB locked with one arena, 70 MB with two). Call before any thread starts.
pub fn limit_malloc_arenas() {
    // Nothing to report on failure: logging has not started yet, and the cost is memory only.
    let _ = ffi::limit_malloc_arenas();
}

/// Puts the calling thread under SCHED_FIFO; `what` names it in the log. Children it
/// starts do not inherit the realtime policy.
pub fn realtime(what: &str, priority: i32) {
    match set_realtime(priority) {
        Ok(()) => tracing::debug!(thread = what, priority, "realtime scheduling (SCHED_FIFO)"),
        Err(e) => log_realtime_refused(what, e),
    }
}

/// The same without a log line, for the feeder (which never logs): the errno if refused.
pub fn set_realtime(priority: i32) -> Result<(), nix::errno::Errno> {
    ffi::set_thread_fifo(priority, true)
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EPERM)))
}

/// The warning for a refused realtime policy.
pub fn log_realtime_refused(what: &str, e: nix::errno::Errno) {
    tracing::warn!(thread = what, error = %e.desc(), "realtime scheduling refused; running at normal priority: run as root, and under cgroup v1 RT group scheduling give the service an RT budget (CPURTRuntime)")
}

#[cfg(test)]
mod fd_limit_tests {
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        use nix::sys::resource::{getrlimit, Resource};
        super::raise_fd_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard);
    }
}

#[cfg(test)]
mod oom_tests {
    use std::time::Duration;

    #[test]
    fn a_write_that_blocks_on_a_fifo_gives_up_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("oom_score_adj");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = super::write_oom_score_adj(fifo.clone(), Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("did not end within 0.2 s"), "{e}");
        // Let the thread left in open(2) go.
        let _ = std::fs::File::open(&fifo);
        let plain = dir.path().join("plain");
        super::write_oom_score_adj(plain.clone(), Duration::from_secs(5)).unwrap();
        assert_eq!(std::fs::read_to_string(plain).unwrap(), "-1000");
    }
}
