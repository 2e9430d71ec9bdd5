//! Process scans repeated every second or so, at the cost of a first scan only: what a scan
//! learns of a process (its open `/proc/<pid>/stat`, the basename of its executable) is kept
//! for the next scan, for exactly that process.
//!
//! An open `/proc/<pid>/stat` belongs to one process, not to a pid: once that process is
//! reaped, reading it fails (ESRCH), even when the pid is reused by another; a reused pid is
//! therefore opened and looked at afresh. A pread at offset 0 makes the kernel produce the
//! file anew (Linux 6.1 and 6.18: a zombie or stopped state shows at the next read). The
//! executable is read again when the comm changes (an exec sets comm to the new program's
//! name) or the start time does. Owner rules are not cached: callers read the uid from
//! `/proc/<pid>/status` each time. The fence does not use this: its last scan reads
//! everything afresh.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::system::process_table::{self, ProcDetail};
use crate::system::{sysfile, Root};

/// At most this many `/proc/<pid>/stat` files are kept open per cache; processes beyond are
/// read the plain way (open, read, close) on every scan.
pub const MAX_KEPT_OPEN: usize = 1024;

/// What one scan keeps of a process for the next.
#[derive(Debug)]
struct Known {
    start_time: u64,
    /// `None` when over [`MAX_KEPT_OPEN`].
    stat: Option<File>,
    /// The comm when `exe` was read, and the basename of the executable (`None`: a kernel
    /// thread, or unreadable); `None` until a scan needs it.
    exe: Option<(String, Option<String>)>,
}

/// What scans remember of the processes they saw. One per scanning thread.
#[derive(Debug, Default)]
pub struct ScanCache {
    known: HashMap<i32, Known>,
    /// The `<root>/proc` the entries come from: another view starts afresh.
    proc_dir: std::path::PathBuf,
}

impl ScanCache {
    pub fn new() -> Self {
        ScanCache::default()
    }

    /// How many processes it remembers (those of the last scan).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// How many `stat` files it keeps open.
    pub fn open_files(&self) -> usize {
        self.known.values().filter(|k| k.stat.is_some()).count()
    }

    /// `/proc/<pid>/stat` of the process `pid` names now, through the kept descriptor when
    /// it still belongs to a live process.
    fn detail(&mut self, root: &Root, pid: i32) -> Option<ProcDetail> {
        if let Some(k) = self.known.get(&pid) {
            if let Some(d) = k.stat.as_ref().and_then(pread_detail) {
                if d.start_time == k.start_time {
                    return Some(d);
                }
            }
            self.known.remove(&pid);
        }
        let path = root.proc(format!("{pid}/stat"));
        let file = File::open(root.follow(path)).ok()?;
        let d = pread_detail(&file)?;
        let keep = self.open_files() < MAX_KEPT_OPEN;
        self.known.insert(
            pid,
            Known {
                start_time: d.start_time,
                stat: keep.then_some(file),
                exe: None,
            },
        );
        Some(d)
    }

    /// The basename of the executable of `d`, read once per process and comm.
    fn exe_of(&mut self, root: &Root, d: &ProcDetail) -> Option<String> {
        let k = self.known.get_mut(&d.stat.pid)?;
        if let Some((comm, exe)) = &k.exe {
            if *comm == d.stat.comm {
                return exe.clone();
            }
        }
        let exe = if d.stat.kernel_thread {
            None
        } else {
            process_table::exe_name(root, d.stat.pid)
        };
        k.exe = Some((d.stat.comm.clone(), exe.clone()));
        exe
    }
}

/// One pread of a whole `stat` file at offset 0. The kernel writes the file in one go: a
/// read shorter than the buffer is all of it; a full one is a file this reader does not
/// understand.
fn pread_detail(file: &File) -> Option<ProcDetail> {
    let mut buf = [0u8; 4096];
    let n = file.read_at(&mut buf, 0).ok()?;
    if n == buf.len() {
        return None;
    }
    let text = sysfile::text_of(buf[..n].to_vec(), sysfile::SMALL).ok()?;
    process_table::parse_detail(&text)
}

/// The processes whose comm or executable basename is `name` (see
/// [`process_table::name_matches`]), with the parent and start time of each, sorted by pid.
/// `cache` forgets the processes this scan did not see.
#[cfg(test)]
pub fn find_details_by_name(root: &Root, name: &str, cache: &mut ScanCache) -> Vec<ProcDetail> {
    find_details_by_names(root, &[name], cache)
        .pop()
        .unwrap_or_default()
}

/// [`find_details_by_name`] for several names in one walk of the process table: one list
/// per name, in the order of `names`, each sorted by pid.
pub fn find_details_by_names<S: AsRef<str>>(
    root: &Root,
    names: &[S],
    cache: &mut ScanCache,
) -> Vec<Vec<ProcDetail>> {
    let proc_dir = root.proc("");
    if cache.proc_dir != proc_dir {
        cache.known.clear();
        cache.proc_dir = proc_dir;
    }
    let pids = process_table::pids(root);
    let mut found: Vec<Vec<ProcDetail>> = names.iter().map(|_| Vec::new()).collect();
    for &pid in &pids {
        let Some(d) = cache.detail(root, pid) else {
            continue;
        };
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            let short = name.get(..15).unwrap_or(name);
            let by_comm = d.stat.comm == name || (name.len() > 15 && d.stat.comm == short);
            if by_comm || cache.exe_of(root, &d).as_deref() == Some(name) {
                found[i].push(d.clone());
            }
        }
    }
    let seen: std::collections::HashSet<i32> = pids.into_iter().collect();
    cache.known.retain(|pid, _| seen.contains(pid));
    for f in &mut found {
        f.sort_by_key(|d| d.stat.pid);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::victim::SleepCopy;
    use std::fs;
    use std::time::Duration;

    fn states(root: &Root, name: &str, cache: &mut ScanCache) -> Vec<(i32, char)> {
        find_details_by_name(root, name, cache)
            .iter()
            .map(|d| (d.stat.pid, d.stat.state))
            .collect()
    }

    /// On this kernel a kept `/proc/<pid>/stat` read again at offset 0 says what the process
    /// is now: stopped, then gone once reaped.
    #[test]
    fn a_kept_stat_shows_the_state_of_now_and_a_reaped_process_is_forgotten() {
        let copy = SleepCopy::new("wdscan");
        let mut child = copy.spawn(None);
        let pid = i32::try_from(child.id()).unwrap();
        let root = Root::host();
        let mut cache = ScanCache::new();
        // Until the child has exec'd (and slept), it has another comm or state.
        let mut first = Vec::new();
        for _ in 0..200 {
            first = states(&root, &copy.name, &mut cache);
            if first == vec![(pid, 'S')] {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(first, vec![(pid, 'S')]);
        assert!(cache.len() > 1 && cache.open_files() > 1, "{cache:?}");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
        let mut seen = Vec::new();
        for _ in 0..100 {
            seen = states(&root, &copy.name, &mut cache);
            if seen == vec![(pid, 'T')] {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(seen, vec![(pid, 'T')]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(states(&root, &copy.name, &mut cache), vec![]);
        assert!(!cache.known.contains_key(&pid));
    }

    fn write_proc(dir: &std::path::Path, pid: i32, comm: &str, start: u64, exe: &str) {
        let p = dir.join(format!("proc/{pid}"));
        fs::create_dir_all(&p).unwrap();
        // fields 3..=22: state, ppid, 17 more, then starttime
        let mid = "0 ".repeat(17);
        fs::write(
            p.join("stat"),
            format!("{pid} ({comm}) S 1 {mid}{start} 0\n"),
        )
        .unwrap();
        let _ = fs::remove_file(p.join("exe"));
        std::os::unix::fs::symlink(exe, p.join("exe")).unwrap();
    }

    #[test]
    fn a_reused_pid_or_a_new_comm_is_looked_at_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let mut cache = ScanCache::new();
        // matched by its executable only
        write_proc(dir.path(), 10, "hb-main", 100, "/opt/hb/heartbeat");
        write_proc(dir.path(), 11, "other", 100, "/usr/bin/other");
        assert_eq!(states(&root, "heartbeat", &mut cache), vec![(10, 'S')]);
        // pid 10 reused by another program (another start time): no longer a match
        write_proc(dir.path(), 10, "hb-main", 200, "/usr/bin/impostor");
        assert_eq!(states(&root, "heartbeat", &mut cache), vec![]);
        // pid 11 execs the heartbeat (same start time, new comm): now a match
        write_proc(dir.path(), 11, "heartbeat-x", 100, "/opt/hb/heartbeat");
        assert_eq!(states(&root, "heartbeat", &mut cache), vec![(11, 'S')]);
        assert_eq!(cache.len(), 2);
        fs::remove_dir_all(dir.path().join("proc/10")).unwrap();
        assert_eq!(states(&root, "heartbeat", &mut cache), vec![(11, 'S')]);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn one_walk_finds_each_name_in_its_own_list() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let mut cache = ScanCache::new();
        write_proc(dir.path(), 20, "fakerm", 100, "/usr/bin/fakerm");
        write_proc(dir.path(), 21, "hb-main", 100, "/opt/hb/fakehb");
        write_proc(dir.path(), 22, "fakehb", 100, "/opt/hb/fakehb");
        write_proc(dir.path(), 23, "other", 100, "/usr/bin/other");
        let pids = |lists: Vec<Vec<ProcDetail>>| -> Vec<Vec<i32>> {
            lists
                .iter()
                .map(|l| l.iter().map(|d| d.stat.pid).collect())
                .collect()
        };
        let names = ["fakehb", "fakerm", "absent"];
        assert_eq!(
            pids(find_details_by_names(&root, &names, &mut cache)),
            vec![vec![21, 22], vec![20], vec![]]
        );
        assert_eq!(cache.len(), 4);
        fs::remove_dir_all(dir.path().join("proc/20")).unwrap();
        assert_eq!(
            pids(find_details_by_names(&root, &names, &mut cache)),
            vec![vec![21, 22], vec![], vec![]]
        );
        assert_eq!(cache.len(), 3);
    }
}
