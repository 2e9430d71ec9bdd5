//! The node's filesystem view: the one place that spells `/proc`, `/sys` and `/dev`.
//!
//! Every reader builds its paths from a [`Root`]. On a node it is `/`; tests point it at a
//! fixture tree that looks like a real system, and an operator running wdfeed in a container
//! points it at the host's root (for example `/host`).

use std::path::{Component, Path, PathBuf};

/// The most symlinks one path may go through inside a root (the kernel's MAXSYMLINKS).
pub const MAX_LINKS: usize = 40;

/// Where the node's `/` is, as seen from this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    base: PathBuf,
}

impl Root {
    /// The real system: paths are used as they are.
    pub fn host() -> Self {
        Root {
            base: PathBuf::from("/"),
        }
    }

    /// A view of the node rooted at `base` (a fixture tree, or `/host` in a container).
    pub fn at(base: impl Into<PathBuf>) -> Self {
        Root { base: base.into() }
    }

    /// The directory this view is rooted at.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// True when this is the real `/`.
    pub fn is_host(&self) -> bool {
        self.base == Path::new("/")
    }

    /// `<root>/proc/<rel>`.
    pub fn proc(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.under("proc", rel.as_ref())
    }

    /// `<root>/sys/<rel>`.
    pub fn sys(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.under("sys", rel.as_ref())
    }

    /// `<root>/dev/<rel>`.
    pub fn dev(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.under("dev", rel.as_ref())
    }

    fn under(&self, top: &str, rel: &Path) -> PathBuf {
        if self.is_host() {
            self.base.join(top).join(rel)
        } else {
            self.resolve(Path::new("/").join(top).join(rel))
        }
    }

    /// Maps a path as the node names it (`/dev/watchdog0`, `/var/lib/x`) into this view.
    /// Relative paths are taken from the node's `/` too; `..` cannot climb above the root.
    ///
    /// Under a root other than `/`, every directory on the way is resolved inside the root:
    /// a symlink `var/run -> /run` of the view leads to `<root>/run`, never to this machine's
    /// `/run` (at most [`MAX_LINKS`] links, as the kernel's MAXSYMLINKS). The last component
    /// is kept as it is, so that readlink(2) of `/proc/PID/exe` still reads the link; a reader
    /// that opens the file goes through [`Root::follow`].
    pub fn resolve(&self, node_path: impl AsRef<Path>) -> PathBuf {
        self.walk(node_path.as_ref(), false)
    }

    /// [`Root::resolve`] of a path of this view (or of a node path), the last component
    /// followed inside the root too: the path to open.
    pub fn follow(&self, view_path: impl AsRef<Path>) -> PathBuf {
        let p = view_path.as_ref();
        if self.is_host() {
            return p.to_path_buf();
        }
        let node = p.strip_prefix(&self.base).unwrap_or(p);
        self.walk(node, true)
    }

    fn walk(&self, node_path: &Path, follow_last: bool) -> PathBuf {
        let mut pending: std::collections::VecDeque<std::ffi::OsString> = node_path
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut done: Vec<std::ffi::OsString> = Vec::new();
        let mut links = 0usize;
        let here = |done: &[std::ffi::OsString]| {
            let mut p = self.base.clone();
            p.extend(done);
            p
        };
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                done.pop();
                continue;
            }
            let last = pending.is_empty();
            let candidate = here(&done).join(&part);
            let target = if self.is_host() || (last && !follow_last) || links >= MAX_LINKS {
                None
            } else {
                std::fs::symlink_metadata(&candidate)
                    .ok()
                    .filter(|m| m.file_type().is_symlink())
                    .and_then(|_| std::fs::read_link(&candidate).ok())
            };
            let Some(target) = target else {
                done.push(part);
                continue;
            };
            links += 1;
            if target.is_absolute() {
                done.clear();
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(p) => pending.push_front(p.to_os_string()),
                    Component::ParentDir => pending.push_front("..".into()),
                    _ => {}
                }
            }
        }
        here(&done)
    }

    /// The inverse of [`Root::resolve`]: how the node names a path of this view, for messages.
    pub fn node_name(&self, view_path: &Path) -> PathBuf {
        match view_path.strip_prefix(&self.base) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => view_path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_root_uses_paths_as_they_are() {
        let r = Root::host();
        assert_eq!(r.proc("1/mountinfo"), Path::new("/proc/1/mountinfo"));
        assert_eq!(r.sys("block"), Path::new("/sys/block"));
        assert_eq!(r.resolve("/dev/watchdog0"), Path::new("/dev/watchdog0"));
        assert!(r.is_host());
    }

    #[test]
    fn fixture_root_prefixes_every_path_and_cannot_be_escaped() {
        let r = Root::at("/tmp/fx");
        assert_eq!(r.proc("diskstats"), Path::new("/tmp/fx/proc/diskstats"));
        assert_eq!(r.dev("watchdog"), Path::new("/tmp/fx/dev/watchdog"));
        assert_eq!(
            r.resolve("/dev/watchdog0"),
            Path::new("/tmp/fx/dev/watchdog0")
        );
        assert_eq!(
            r.resolve("/../../etc/passwd"),
            Path::new("/tmp/fx/etc/passwd")
        );
        assert_eq!(r.resolve("/a/b/../c"), Path::new("/tmp/fx/a/c"));
        assert_eq!(
            r.node_name(Path::new("/tmp/fx/dev/watchdog0")),
            Path::new("/dev/watchdog0")
        );
        assert!(!r.is_host());
    }

    #[test]
    fn symlinks_inside_the_root_resolve_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir_all(base.join("run/wdfeed")).unwrap();
        std::fs::create_dir_all(base.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", base.join("var/run")).unwrap();
        std::os::unix::fs::symlink("../run/wdfeed", base.join("var/lib")).unwrap();
        let r = Root::at(base);
        assert_eq!(
            r.resolve("/var/run/corosync.pid"),
            base.join("run/corosync.pid")
        );
        assert_eq!(r.resolve("/var/lib/x/../y"), base.join("run/wdfeed/y"));
        // The last component is kept for readlink, and followed for opening.
        assert_eq!(r.resolve("/var/run"), base.join("var/run"));
        assert_eq!(r.follow(base.join("var/run")), base.join("run"));
        // A loop ends after MAX_LINKS links instead of spinning.
        std::os::unix::fs::symlink("/loop", base.join("loop")).unwrap();
        assert!(r.follow("/loop").starts_with(base));
    }

    #[test]
    fn a_read_through_a_root_symlink_reads_the_root_not_this_machine() {
        let host = tempfile::tempdir().unwrap();
        let outside = host.path().join("secret");
        std::fs::write(&outside, "this machine").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
        std::fs::write(&inside, "the root").unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("link")).unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::os::unix::fs::symlink(outside.parent().unwrap(), dir.path().join("proc/d")).unwrap();
        let r = Root::at(dir.path());
        let text = crate::system::sysfile::read_capped(&r, &r.resolve("/link"), 100).unwrap();
        assert_eq!(text, "the root");
        let text = crate::system::sysfile::read_capped(&r, &r.proc("d/secret"), 100).unwrap();
        assert_eq!(text, "the root");
    }
}
