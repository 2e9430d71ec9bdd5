//! The process table under `<root>/proc`: which processes exist, their name and state.
//! Used by the `process` check and by the fence to find the cluster processes to kill.

use std::fs;
use std::path::PathBuf;

use crate::system::Root;

/// What `/proc/<pid>/stat` says about one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// `comm`, as the kernel keeps it (at most 15 bytes).
    pub comm: String,
    /// The state letter: R, S, D, Z, T, t, X, I...
    pub state: char,
}

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
    let state = text[close + 1..].trim_start().chars().next()?;
    Some(ProcStat { pid, comm, state })
}

/// Every numeric entry of `<root>/proc`.
pub fn pids(root: &Root) -> Vec<i32> {
    let Ok(dir) = fs::read_dir(root.proc("")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Reads `<root>/proc/<pid>/stat`; `None` when the process is gone or the file is garbage.
pub fn stat(root: &Root, pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(root.proc(format!("{pid}/stat"))).ok()?)
}

/// The basename of `<root>/proc/<pid>/exe`, when it can be read.
pub fn exe_name(root: &Root, pid: i32) -> Option<String> {
    let target: PathBuf = fs::read_link(root.proc(format!("{pid}/exe"))).ok()?;
    let name = target.file_name()?.to_string_lossy().into_owned();
    Some(name.trim_end_matches(" (deleted)").to_string())
}

/// Processes whose comm or executable basename is `name` (comm is cut to 15 bytes by the
/// kernel, so a longer name matches on its first 15 bytes too).
pub fn find_by_name(root: &Root, name: &str) -> Vec<ProcStat> {
    let short: String = name.bytes().take(15).map(char::from).collect();
    let mut found: Vec<ProcStat> = pids(root)
        .into_iter()
        .filter_map(|pid| stat(root, pid))
        .filter(|s| {
            s.comm == name
                || (name.len() > 15 && s.comm == short)
                || exe_name(root, s.pid).as_deref() == Some(name)
        })
        .collect();
    found.sort_by_key(|s| s.pid);
    found
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
