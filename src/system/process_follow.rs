//! Processes followed from one run to the next. A walk of the process table finds them once;
//! later runs read each through descriptors that belong to it alone (a pidfd, its own
//! `/proc/<pid>/stat` and `/proc/<pid>/status` kept open), so what a run costs, in time and
//! in memory, does not depend on how many other processes exist.
//!
//! Why a kept descriptor is the process's and not the pid's: a pidfd names one process for as
//! long as it is held, and the kernel makes it readable once that process has exited; a kept
//! `/proc/<pid>/stat` reads the state of now at every pread from offset 0 (a zombie shows
//! `Z`), and fails with ESRCH once the process is reaped, even when the pid is reused (Linux
//! 6.1 and 6.18). Nothing another user does can make either say anything about this process.
//!
//! The walk itself keeps nothing per process it passes: its memory is that of what it
//! returns (at most `cap` processes and a few lines of evidence), whatever the table holds.
//!
//! Under a root that is not this machine's `/` (a fixture tree, or the host's root mounted in
//! a container) no pidfd is taken (pids there may be of another namespace): files on procfs
//! are still kept open, and a fixture's regular files are read again by path, another start
//! time meaning another process.

use std::fs::{self, File};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use crate::ffi;
use crate::system::process_table::{self, ProcDetail};
use crate::system::{sysfile, Root};

/// A file of one process: kept open on procfs, else read by path (a fixture tree).
#[derive(Debug)]
enum ProcFile {
    Kept(File),
    Path(PathBuf),
}

impl ProcFile {
    fn open(root: &Root, view_path: PathBuf) -> Option<ProcFile> {
        let file = File::open(root.follow(&view_path)).ok()?;
        Some(if sysfile::is_procfs(&file) {
            ProcFile::Kept(file)
        } else {
            ProcFile::Path(view_path)
        })
    }

    fn read(&self, root: &Root) -> Option<String> {
        match self {
            ProcFile::Kept(f) => sysfile::pread_all(f, sysfile::SMALL).ok(),
            ProcFile::Path(p) => sysfile::read_capped(root, p, sysfile::SMALL).ok(),
        }
    }
}

/// One process, followed.
#[derive(Debug)]
pub struct Followed {
    pub pid: i32,
    /// With the pid, names the process (a fixture's reused pid shows another).
    pub start_time: u64,
    /// The parent when it was found: another parent means the tree it belonged to changed.
    pub ppid: i32,
    /// `None` under a root other than this machine's `/`.
    pidfd: Option<OwnedFd>,
    stat: ProcFile,
    status: ProcFile,
}

/// What a followed process is now.
#[derive(Debug, PartialEq, Eq)]
pub enum Now {
    /// Its `stat` now: running, sleeping, stopped, in D state, or a zombie not yet reaped.
    Here(ProcDetail),
    /// Exited and reaped (the pidfd says it exited and its `stat` is gone), or unreadable.
    Gone,
}

impl Followed {
    /// Starts following the process a walk saw as `seen`; `None` when it is no longer that
    /// process (gone, or its pid taken by another). The pidfd is opened first and the
    /// process's files after it, and the start time read through them must be the one the
    /// walk saw: so all three are of the process the walk saw, never of a successor.
    pub fn open(root: &Root, seen: &ProcDetail) -> Option<Followed> {
        let pid = seen.stat.pid;
        let pidfd = if root.is_host() {
            Some(ffi::pidfd_open(pid).ok()?)
        } else {
            None
        };
        let stat = ProcFile::open(root, root.proc(format!("{pid}/stat")))?;
        let status = ProcFile::open(root, root.proc(format!("{pid}/status")))?;
        let now = process_table::parse_detail(&stat.read(root)?)?;
        if now.stat.pid != pid || now.start_time != seen.start_time {
            return None;
        }
        Some(Followed {
            pid,
            start_time: seen.start_time,
            ppid: seen.ppid,
            pidfd,
            stat,
            status,
        })
    }

    /// The process now, read through its own descriptors.
    pub fn now(&self, root: &Root) -> Now {
        let exited = self.exited();
        match self
            .stat
            .read(root)
            .and_then(|t| process_table::parse_detail(&t))
        {
            Some(d) if d.start_time != self.start_time || d.stat.pid != self.pid => Now::Gone,
            // The pidfd says it exited: only a zombie's state is still to be seen.
            Some(d) if exited && !matches!(d.stat.state, 'Z' | 'X' | 'x') => Now::Gone,
            Some(d) => Now::Here(d),
            None => Now::Gone,
        }
    }

    /// True once the pidfd says the process has exited (never, without a pidfd: the
    /// `stat` read says it then).
    fn exited(&self) -> bool {
        self.pidfd
            .as_ref()
            .is_some_and(|fd| ffi::pidfd_exited(fd.as_fd()).unwrap_or(true))
    }

    /// The real uid, from its kept `/proc/<pid>/status`.
    pub fn real_uid(&self, root: &Root) -> Option<u32> {
        process_table::parse_real_uid(&self.status.read(root)?)
    }

    /// The full path of its executable. A readlink goes by pid: with a pidfd, it counts only
    /// when the process has not exited after it (so the pid was not yet anyone else's).
    pub fn exe_path(&self, root: &Root) -> Option<PathBuf> {
        let path = process_table::exe_path(root, self.pid)?;
        (!self.exited()).then_some(path)
    }

    /// The basename of its executable, as [`Followed::exe_path`].
    pub fn exe_name(&self, root: &Root) -> Option<String> {
        let name = process_table::exe_name(root, self.pid)?;
        (!self.exited()).then_some(name)
    }

    /// The pidfd, under this machine's `/`: a signal sent through it reaches this process
    /// or none.
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// Whether it still has `name` (comm, or executable basename) and the real uid `uid`,
    /// read through its own descriptors. A zombie or dead process has neither.
    pub fn still(&self, root: &Root, d: &ProcDetail, name: &str, uid: u32) -> bool {
        if matches!(d.stat.state, 'Z' | 'X' | 'x') {
            return false;
        }
        let named = process_table::comm_matches(&d.stat, name)
            || self.exe_name(root).as_deref() == Some(name);
        named && self.real_uid(root) == Some(uid)
    }
}

/// At most this many refused processes are named in the evidence.
pub const REFUSED_SHOWN: usize = 3;

/// What one walk found for a name.
#[derive(Debug, Default)]
pub struct Walk {
    /// The accepted processes whose parent is not an accepted one of the same name (the tops
    /// of their trees), by pid, at most the walk's cap.
    pub tops: Vec<ProcDetail>,
    /// Tops beyond the cap.
    pub beyond_cap: usize,
    /// Same-named processes the caller refused: how many, and why for the [`REFUSED_SHOWN`]
    /// lowest pids (`pid N <why>`).
    pub refused: usize,
    pub refused_shown: Vec<String>,
    /// The pids of `refused_shown`.
    refused_pids: Vec<i32>,
}

impl Walk {
    /// Counts a refused process; keeps its line when its pid is among the lowest (a fixture
    /// tree lists pids in any order, procfs in order).
    fn refuse(&mut self, pid: i32, why: String) {
        self.refused += 1;
        let at = self.refused_pids.partition_point(|&p| p < pid);
        if at < REFUSED_SHOWN {
            self.refused_pids.insert(at, pid);
            self.refused_shown.insert(at, format!("pid {pid} {why}"));
            self.refused_pids.truncate(REFUSED_SHOWN);
            self.refused_shown.truncate(REFUSED_SHOWN);
        }
    }
}

/// Calls `found(i, process)` for every process whose comm or executable basename is
/// `names[i]` (see [`process_table::name_matches`]), walking `<root>/proc` once, entry by
/// entry: nothing is kept of a process that matches no name, and the executable is read
/// once per process, only when its comm is none of the names.
pub fn each_named(root: &Root, names: &[&str], found: &mut dyn FnMut(usize, ProcDetail)) {
    let Ok(dir) = fs::read_dir(root.follow(root.proc(""))) else {
        return;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(d) = process_table::detail(root, pid) else {
            continue;
        };
        let mut exe: Option<Option<String>> = None;
        for (i, name) in names.iter().enumerate() {
            if process_table::comm_matches(&d.stat, name) {
                found(i, d.clone());
                continue;
            }
            if d.stat.kernel_thread {
                continue;
            }
            let exe = exe.get_or_insert_with(|| process_table::exe_name(root, pid));
            if exe.as_deref() == Some(*name) {
                found(i, d.clone());
            }
        }
    }
}

/// Walks `<root>/proc` once for the processes named `name` that `accept` takes (it says why
/// not otherwise), and returns the tops of their trees. Nothing is kept of a process that is
/// not returned, beyond a count and a few lines of evidence.
pub fn walk(
    root: &Root,
    name: &str,
    accept: &mut dyn FnMut(i32) -> Result<(), String>,
    cap: usize,
) -> Walk {
    let mut out = Walk::default();
    each_named(root, &[name], &mut |_, d| {
        let pid = d.stat.pid;
        if let Err(why) = accept(pid) {
            out.refuse(pid, why);
            return;
        }
        // A worker of the same program (its parent is an accepted one of the name) is judged
        // through its parent: one that exited and waits to be reaped must not fail a check.
        let parent_too = d.ppid > 0
            && process_table::stat(root, d.ppid)
                .is_some_and(|p| process_table::name_matches(root, &p, name))
            && accept(d.ppid).is_ok();
        if parent_too {
            return;
        }
        if out.tops.len() < cap {
            out.tops.push(d);
        } else {
            out.beyond_cap += 1;
        }
    });
    out.tops.sort_by_key(|d| d.stat.pid);
    out
}

#[cfg(test)]
mod tests;
