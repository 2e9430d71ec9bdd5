//! Which watchdog a path names, so that two configs naming it differently are seen to clash:
//! symlinks are followed inside the root (udev aliases), and the legacy /dev/watchdog is the
//! device with id 0 (the kernel registers the misc node for `wdd->id == 0` only,
//! drivers/watchdog/watchdog_dev.c in Linux 6.1). Also who holds a watchdog open now.

use std::fs;
use std::path::{Path, PathBuf};

use crate::system::{process_table, Root};

/// Follows symlinks of a node path inside `root` (at most 8 hops).
pub fn follow(root: &Root, node_path: &Path) -> PathBuf {
    let mut p = node_path.to_path_buf();
    for _ in 0..8 {
        let Ok(target) = fs::read_link(root.resolve(&p)) else {
            break;
        };
        p = if target.is_absolute() {
            target
        } else {
            p.parent().unwrap_or(Path::new("/")).join(target)
        };
    }
    // `..` and `.` as the node would resolve them.
    root.node_name(&root.resolve(&p))
}

/// `watchdogN` for a watchdog device path, or the followed path itself for anything else.
pub fn key(root: &Root, node_path: &Path) -> String {
    let p = follow(root, node_path);
    match p.file_name().and_then(|n| n.to_str()) {
        Some("watchdog") if p.parent() == Some(Path::new("/dev")) => "watchdog0".into(),
        Some(n) if p.parent() == Some(Path::new("/dev")) && n.starts_with("watchdog") => {
            n.to_string()
        }
        _ => p.display().to_string(),
    }
}

/// A process holding a watchdog device open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    pub comm: String,
    /// The device as [`key`] names it.
    pub device: String,
}

/// Every open file descriptor under `<root>/proc/*/fd` that points at a /dev/watchdog*
/// node. Processes whose fds cannot be listed (another user's, without privilege) are
/// skipped: this is evidence when found, never proof of absence.
pub fn holders(root: &Root) -> Vec<Holder> {
    let mut out = Vec::new();
    for pid in process_table::pids(root) {
        let Ok(fds) = fs::read_dir(root.follow(root.proc(format!("{pid}/fd")))) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if !t.starts_with("/dev/watchdog") {
                continue;
            }
            let comm = process_table::stat(root, pid)
                .map(|s| s.comm)
                .unwrap_or_else(|| "?".into());
            let device = key(root, &target);
            if !out
                .iter()
                .any(|h: &Holder| h.pid == pid && h.device == device)
            {
                out.push(Holder { pid, comm, device });
            }
        }
    }
    out.sort_by_key(|h| h.pid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn the_legacy_node_and_aliases_name_the_same_device() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        fs::create_dir_all(root.dev("")).unwrap();
        symlink("watchdog1", root.dev("watchdog-softdog")).unwrap();
        symlink("/dev/watchdog-softdog", root.dev("sbd-dog")).unwrap();
        assert_eq!(key(&root, Path::new("/dev/watchdog")), "watchdog0");
        assert_eq!(key(&root, Path::new("/dev/watchdog0")), "watchdog0");
        assert_eq!(key(&root, Path::new("/dev/watchdog-softdog")), "watchdog1");
        assert_eq!(key(&root, Path::new("/dev/sbd-dog")), "watchdog1");
        assert_eq!(key(&root, Path::new("/dev/null")), "/dev/null");
        assert_eq!(key(&root, Path::new("/dev/../dev/watchdog2")), "watchdog2");
    }

    #[test]
    fn a_symlink_loop_ends() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        fs::create_dir_all(root.dev("")).unwrap();
        symlink("b", root.dev("a")).unwrap();
        symlink("a", root.dev("b")).unwrap();
        let _ = key(&root, Path::new("/dev/a"));
    }

    #[test]
    fn holders_are_found_through_proc_fd() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        fs::create_dir_all(root.proc("812/fd")).unwrap();
        fs::write(
            root.proc("812/stat"),
            "812 (sbd) S 1 812 812 0 -1 4194560 0 0",
        )
        .unwrap();
        symlink("/dev/watchdog", root.proc("812/fd/4")).unwrap();
        symlink("/dev/null", root.proc("812/fd/0")).unwrap();
        fs::create_dir_all(root.proc("900/fd")).unwrap();
        symlink("socket:[1234]", root.proc("900/fd/3")).unwrap();
        assert_eq!(
            holders(&root),
            vec![Holder {
                pid: 812,
                comm: "sbd".into(),
                device: "watchdog0".into()
            }]
        );
    }
}
