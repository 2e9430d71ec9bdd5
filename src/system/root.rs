//! The node's filesystem view: the one place that spells `/proc`, `/sys` and `/dev`.
//!
//! Every reader builds its paths from a [`Root`]. On a node it is `/`; tests point it at a
//! fixture tree that looks like a real system, and an operator running wdfeed in a container
//! points it at the host's root (for example `/host`).

use std::path::{Component, Path, PathBuf};

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
        self.base.join("proc").join(rel)
    }

    /// `<root>/sys/<rel>`.
    pub fn sys(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.base.join("sys").join(rel)
    }

    /// `<root>/dev/<rel>`.
    pub fn dev(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.base.join("dev").join(rel)
    }

    /// Maps a path as the node names it (`/dev/watchdog0`, `/var/lib/x`) into this view.
    /// Relative paths are taken from the node's `/` too; `..` cannot climb above the root.
    pub fn resolve(&self, node_path: impl AsRef<Path>) -> PathBuf {
        let mut out = self.base.clone();
        let mut depth = 0usize;
        for part in node_path.as_ref().components() {
            match part {
                Component::Normal(p) => {
                    out.push(p);
                    depth += 1;
                }
                Component::ParentDir if depth > 0 => {
                    out.pop();
                    depth -= 1;
                }
                _ => {}
            }
        }
        out
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
}
