//! The process table under `<root>/proc`: which processes exist, their name and state.
//! Used by the `process` check and by the fence to find the cluster processes to kill.

use std::fs;
use std::path::{Path, PathBuf};

use crate::system::sysfile::{self, ReadError};
use crate::system::Root;

/// What `/proc/<pid>/stat` says about one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// `comm`, as the kernel keeps it (at most 15 bytes).
    pub comm: String,
    /// The state letter: R, S, D, Z, T, t, X, I...
    pub state: char,
    /// A kernel thread (PF_KTHREAD in `flags`): it has no executable, so matching it by
    /// one would be a wasted readlink.
    pub kernel_thread: bool,
}

/// `flags` bit of a kernel thread (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Parses `/proc/<pid>/stat`. The comm field may hold spaces and parentheses, so the state
/// is read after the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    let mut after = text[close + 1..].split_whitespace();
    let state = after.next()?.chars().next()?;
    // `flags` is field 9, the sixth after the state; a line cut short says nothing of it.
    let flags: Option<u64> = after.nth(5).and_then(|f| f.parse().ok());
    Some(ProcStat {
        pid,
        comm,
        state,
        kernel_thread: flags.is_some_and(|f| f & PF_KTHREAD != 0),
    })
}

/// Every numeric entry of `<root>/proc`.
pub fn pids(root: &Root) -> Vec<i32> {
    let Ok(dir) = fs::read_dir(root.follow(root.proc(""))) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Reads `<root>/proc/<pid>/stat`; `None` when the process is gone or the file is garbage.
pub fn stat(root: &Root, pid: i32) -> Option<ProcStat> {
    let path = root.proc(format!("{pid}/stat"));
    parse_stat(&sysfile::read_capped(root, &path, sysfile::SMALL).ok()?)
}

/// The basename of `<root>/proc/<pid>/exe`, when it can be read.
pub fn exe_name(root: &Root, pid: i32) -> Option<String> {
    let target: PathBuf = fs::read_link(root.proc(format!("{pid}/exe"))).ok()?;
    let name = target.file_name()?.to_string_lossy().into_owned();
    Some(name.trim_end_matches(" (deleted)").to_string())
}

/// The full path of `<root>/proc/<pid>/exe` (without a ` (deleted)` suffix), when it can
/// be read.
pub fn exe_path(root: &Root, pid: i32) -> Option<PathBuf> {
    let target = fs::read_link(root.proc(format!("{pid}/exe"))).ok()?;
    let text = target.to_string_lossy();
    Some(PathBuf::from(
        text.strip_suffix(" (deleted)").unwrap_or(&text),
    ))
}

/// The real uid of a process, from the `Uid:` line of `<root>/proc/<pid>/status`. Not the
/// owner of `/proc/<pid>`: a process that makes itself non-dumpable shows root there. The
/// real uid is what an unprivileged user cannot change.
pub fn real_uid(root: &Root, pid: i32) -> Option<u32> {
    let path = root.proc(format!("{pid}/status"));
    parse_real_uid(&sysfile::read_capped(root, &path, sysfile::SMALL).ok()?)
}

/// The first number of the `Uid:` line (real, effective, saved, filesystem).
pub fn parse_real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Processes whose comm or executable basename is `name` (comm is cut to 15 bytes by the
/// kernel, so a longer name matches on its first 15 bytes too).
pub fn find_by_name(root: &Root, name: &str) -> Vec<ProcStat> {
    let mut found: Vec<ProcStat> = pids(root)
        .into_iter()
        .filter_map(|pid| stat(root, pid))
        .filter(|s| name_matches(root, s, name))
        .collect();
    found.sort_by_key(|s| s.pid);
    found
}

/// True when `name` is the process's comm (or the first 15 bytes of it, as the kernel cuts
/// comm) or the basename of its executable. Scans run every few seconds over every
/// process, so the readlink of `exe` is skipped for kernel threads, which have none.
pub fn name_matches(root: &Root, stat: &ProcStat, name: &str) -> bool {
    comm_matches(stat, name)
        || (!stat.kernel_thread && exe_name(root, stat.pid).as_deref() == Some(name))
}

/// True when `name` is the process's comm, or its first 15 bytes (the kernel cuts comm).
pub fn comm_matches(stat: &ProcStat, name: &str) -> bool {
    let short = name.get(..15).unwrap_or(name);
    stat.comm == name || (name.len() > 15 && stat.comm == short)
}

/// `/proc/<pid>/stat` with the fields the `process` check needs beyond [`ProcStat`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcDetail {
    pub stat: ProcStat,
    pub ppid: i32,
    /// Clock ticks after boot when the process started: with the pid, it names one process
    /// even when the pid is reused.
    pub start_time: u64,
}

/// Parses `/proc/<pid>/stat` down to `starttime` (field 22); `None` for anything shorter.
pub fn parse_detail(text: &str) -> Option<ProcDetail> {
    let stat = parse_stat(text)?;
    let close = text.rfind(')')?;
    let after: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // `after` starts at field 3 (state), so field N is after[N - 3].
    let ppid = after.get(1)?.parse().ok()?;
    let start_time = after.get(19)?.parse().ok()?;
    Some(ProcDetail {
        stat,
        ppid,
        start_time,
    })
}

/// Reads `<root>/proc/<pid>/stat` in full; `None` when the process is gone or the file is garbage.
pub fn detail(root: &Root, pid: i32) -> Option<ProcDetail> {
    let path = root.proc(format!("{pid}/stat"));
    parse_detail(&sysfile::read_capped(root, &path, sysfile::SMALL).ok()?)
}

/// Reads a pidfile (a node path such as `/run/heartbeat.pid`): one positive decimal pid.
pub fn read_pidfile(root: &Root, node_path: &Path) -> Result<i32, ReadError> {
    let text = sysfile::read_capped(root, &root.resolve(node_path), sysfile::SMALL)?;
    parse_pid(&text).map_err(|what| ReadError::new(node_path, None, what))
}

pub(crate) fn parse_pid(text: &str) -> Result<i32, String> {
    let t = text.trim();
    match t.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ if t.is_empty() => Err("empty pidfile".into()),
        _ => Err(format!("`{}` is not a pid", sysfile::shorten(t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let s = parse_stat("812 (heart (beat) x) Z 1 812 812 0 -1 4194560 0 0").unwrap();
        assert_eq!(s.pid, 812);
        assert_eq!(s.comm, "heart (beat) x");
        assert_eq!(s.state, 'Z');
    }

    #[test]
    fn kernel_threads_are_told_by_their_flags() {
        // Captured on Linux 6.18: kthreadd (flags 0x208040) and a shell (0x400100).
        let kthread = parse_stat("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0").unwrap();
        assert!(kthread.kernel_thread);
        let shell = parse_stat("812 (bash) S 1 812 812 0 -1 4194560 0 0").unwrap();
        assert!(!shell.kernel_thread);
        // cut short before the flags: not a kernel thread, so exe is still looked at
        assert!(!parse_stat("812 (bash) S 1 812").unwrap().kernel_thread);
    }

    #[test]
    fn stat_garbage_is_none_not_a_panic() {
        for bad in [
            "",
            "x",
            "12 (abc",
            ")(",
            "12 (abc)",
            "abc (x) S",
            "\u{0}\u{0}",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    // Captured from /proc/self/stat on Linux 6.18 (a `cat`).
    const REAL: &str = "7344 (cat) R 7339 7339 5115 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 391210 3133440 388 18446744073709551615 94755972759552 94755972779433 140724504511520 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94755972795440 94755972797056 94756236197888 140724504513053 140724504513073 140724504513073 140724504514539 0\n";

    #[test]
    fn detail_of_a_real_line() {
        let d = parse_detail(REAL).unwrap();
        assert_eq!(
            (d.stat.pid, d.stat.comm.as_str(), d.stat.state),
            (7344, "cat", 'R')
        );
        assert_eq!(d.ppid, 7339);
        assert_eq!(d.start_time, 391_210);
    }

    #[test]
    fn detail_of_truncated_garbage_and_huge_lines_is_none() {
        for cut in [0, 5, 12, 30, 60, 66] {
            assert_eq!(parse_detail(&REAL[..cut]), None, "cut at {cut}");
        }
        assert!(parse_detail(&REAL[..80]).is_some());
        assert_eq!(
            parse_detail("1 (x) S y 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"),
            None
        );
        assert_eq!(
            parse_detail("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5"),
            None
        );
        let huge = format!("1 ({}) S {}", ")".repeat(100_000), "1 ".repeat(100_000));
        assert_eq!(parse_detail(&huge).map(|d| d.ppid), Some(1));
    }

    #[test]
    fn real_uid_is_the_first_of_the_uid_line() {
        let status = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t65534\t0\t0\t0\nGid:\t65534\t65534\t65534\t65534\n";
        assert_eq!(parse_real_uid(status), Some(65534));
        for bad in ["", "Uid:\n", "Uid:\tx\t0", "Gid:\t0\t0"] {
            assert_eq!(parse_real_uid(bad), None, "{bad:?}");
        }
        let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        let pid = i32::try_from(std::process::id()).unwrap();
        assert_eq!(real_uid(&Root::host(), pid), Some(me));
        assert!(exe_path(&Root::host(), pid).is_some_and(|p| p.is_absolute()));
    }

    #[test]
    fn pidfiles() {
        assert_eq!(parse_pid("812\n"), Ok(812));
        for bad in ["", "\n", "0", "-3", "abc", "812 813", "99999999999"] {
            assert!(parse_pid(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let e = read_pidfile(&root, Path::new("/run/hb.pid")).unwrap_err();
        assert!(e.to_string().starts_with("/run/hb.pid: "), "{e}");
        fs::create_dir_all(root.resolve("run")).unwrap();
        fs::write(root.resolve("run/hb.pid"), "x".repeat(100_000)).unwrap();
        assert!(read_pidfile(&root, Path::new("/run/hb.pid")).is_err());
    }

    #[test]
    fn finds_processes_by_comm_in_a_fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        for (pid, comm, st) in [
            (10, "heartbeat", 'S'),
            (11, "other", 'R'),
            (12, "heartbeat", 'Z'),
        ] {
            let p = dir.path().join(format!("proc/{pid}"));
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("stat"), format!("{pid} ({comm}) {st} 1 1 1 0")).unwrap();
        }
        fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        let found = find_by_name(&Root::at(dir.path()), "heartbeat");
        let pids: Vec<i32> = found.iter().map(|s| s.pid).collect();
        assert_eq!(pids, vec![10, 12]);
        assert_eq!(found[1].state, 'Z');
    }
}
