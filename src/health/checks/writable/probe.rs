//! The write probe of `writable`: at each run a file on the watched filesystem is opened,
//! written, fdatasync'ed and closed, so wdfeed never keeps the filesystem busy between runs
//! (`umount` and `mount -o remount,ro` of a watched mount succeed while wdfeed runs).
//!
//! Where it lies, and why no other user can interfere:
//! - The mount point is opened as a directory and its st_dev must be the `major:minor` that
//!   mountinfo gives for the filesystem mounted there now: a run never writes to a
//!   filesystem that was unmounted (or replaced) since the mount table was read.
//! - From there each directory on the way is opened relative to the last (openat, never
//!   following a symlink), must lie on the same filesystem, and must be root's and writable by
//!   no other user (a sticky world-writable directory such as /tmp is refused): nobody else
//!   can then create, replace or remove anything at the probe's path. The last directory
//!   (`.wdfeed` by default) is created, mode 0700, when missing.
//! - The probe itself is opened O_NOFOLLOW, O_NONBLOCK (a FIFO can never hang the open) and
//!   written only if it is a regular file of root's on that filesystem.
//!
//! "Root" is the user wdfeed runs as (root on a node; a test's own user in a test).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, major, minor, mkdirat, FileStat, Mode, SFlag};

use crate::system::Root;

/// Writes the probe `probe` (a path on the node, below `mount`) of the filesystem mounted at
/// `mount` with number `devno`. Every descriptor is closed before it returns.
pub fn write(
    root: &Root,
    mount: &Path,
    devno: (u32, u32),
    probe: &Path,
    now: Duration,
) -> Result<(), String> {
    let p = probe.display();
    let fail = |what: String| format!("probe {p}: {what}");
    let rel = probe
        .strip_prefix(mount)
        .map_err(|_| fail(format!("not below {}", mount.display())))?;
    let parts: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => Ok(s),
            _ => Err(fail("has `.`, `..` or a root in its path".into())),
        })
        .collect::<Result<_, _>>()?;
    let Some((name, dirs)) = parts.split_last() else {
        return Err(fail("names no file below the mount point".into()));
    };

    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let top = open(&root.resolve(mount), dir_flags, Mode::empty())
        .map_err(|e| fail(format!("cannot open {}: {}", mount.display(), e.desc())))?;
    let top_stat = fstat(top.as_fd()).map_err(|e| fail(format!("fstat: {}", e.desc())))?;
    let (dev_major, dev_minor) = (major(top_stat.st_dev), minor(top_stat.st_dev));
    if (dev_major, dev_minor) != (u64::from(devno.0), u64::from(devno.1)) {
        return Err(fail(format!(
            "{} is {dev_major}:{dev_minor} here, not {}:{}, the filesystem mountinfo says is \
             mounted there now (unmounted or replaced meanwhile)",
            mount.display(),
            devno.0,
            devno.1
        )));
    }
    // What the directory being walked through lets other users do: nothing (root-only), or
    // create entries but never move or remove ours (sticky and ours, as /tmp): then only a
    // directory of ours that is already there is walked into, never created.
    let mut shared = match owned_by_us_alone(&top_stat, mount) {
        Ok(()) => None,
        Err(why) if sticky_and_ours(&top_stat) => Some(why),
        Err(why) => return Err(fail(why)),
    };
    let mut dir = top;
    let mut at = mount.to_path_buf();
    for (i, part) in dirs.iter().enumerate() {
        at.push(part);
        let opened = match openat(dir.as_fd(), *part, dir_flags, Mode::empty()) {
            Err(Errno::ENOENT) if i + 1 == dirs.len() && shared.is_none() => {
                match mkdirat(dir.as_fd(), *part, Mode::S_IRWXU) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(fail(format!(
                            "cannot create {}: {}",
                            at.display(),
                            e.desc()
                        )))
                    }
                }
                openat(dir.as_fd(), *part, dir_flags, Mode::empty())
            }
            other => other,
        };
        let next = match (opened, &shared) {
            (Ok(fd), _) => fd,
            // In a directory others may write, what is not a directory of ours is theirs to
            // plant: the directory itself is the reason, whatever they put there.
            (Err(_), Some(why)) => return Err(fail(why.clone())),
            (Err(e), None) => {
                let why = match e {
                    // O_DIRECTORY answers ENOTDIR for a symlink too: say which it is.
                    Errno::ENOTDIR | Errno::ELOOP => not_a_directory(dir.as_fd(), part),
                    other => open_error(other),
                };
                return Err(fail(format!("{}: {why}", at.display())));
            }
        };
        let st = fstat(next.as_fd()).map_err(|e| fail(format!("fstat: {}", e.desc())))?;
        if st.st_dev != top_stat.st_dev {
            return Err(fail(format!(
                "{} is on another filesystem than {} (a mount lies on the way): set \
                 probe-paths to a file on {}",
                at.display(),
                mount.display(),
                mount.display()
            )));
        }
        shared = match (owned_by_us_alone(&st, &at), shared) {
            (Ok(()), _) => None,
            // a directory another user made in the shared one: the shared one is the reason
            (Err(_), Some(why)) if st.st_uid != me() => return Err(fail(why)),
            (Err(why), _) if sticky_and_ours(&st) => Some(why),
            (Err(why), _) => return Err(fail(why)),
        };
        dir = next;
    }
    // The probe's own directory must be ours alone: nobody else may create anything in it.
    if let Some(why) = shared {
        return Err(fail(why));
    }

    // Looked at first, never followed: only a missing probe or a regular file of ours is
    // opened at all (the fstat after the open closes the race).
    if let Ok(st) =
        nix::sys::stat::fstatat(dir.as_fd(), *name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
    {
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let what = match kind {
            k if k == SFlag::S_IFREG => None,
            k if k == SFlag::S_IFLNK => Some("is a symlink: not followed"),
            k if k == SFlag::S_IFIFO => Some("is a FIFO: not opened"),
            k if k == SFlag::S_IFDIR => Some("is a directory: not written"),
            _ => Some("is not a regular file: not opened"),
        };
        if let Some(what) = what {
            return Err(fail(format!("cannot open: {what}")));
        }
        if st.st_uid != nix::unistd::geteuid().as_raw() {
            return Err(fail(format!(
                "belongs to uid {}, not to wdfeed's user: not opened",
                st.st_uid
            )));
        }
    }
    let flags = OFlag::O_WRONLY
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd: OwnedFd = openat(dir.as_fd(), *name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
        .map_err(|e| fail(format!("cannot open: {}", open_error(e))))?;
    let st = fstat(fd.as_fd()).map_err(|e| fail(format!("fstat: {}", e.desc())))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(fail("is not a regular file: not written".into()));
    }
    if st.st_uid != nix::unistd::geteuid().as_raw() {
        return Err(fail(format!(
            "belongs to uid {}, not to wdfeed's user: not written",
            st.st_uid
        )));
    }
    if st.st_dev != top_stat.st_dev {
        return Err(fail(format!(
            "is not on the filesystem mounted at {}: set probe-paths for it",
            mount.display()
        )));
    }
    drop(dir);
    let file = File::from(fd);
    let stamp = format!("wdfeed probe {:>20}\n", now.as_millis());
    file.write_all_at(stamp.as_bytes(), 0)
        .map_err(|e| fail(format!("write: {e}")))?;
    file.sync_data()
        .map_err(|e| fail(format!("fdatasync: {e}")))
}

/// What an open that refused said, in words for the probe's path.
fn open_error(e: Errno) -> String {
    match e {
        Errno::ELOOP => "is a symlink: not followed".into(),
        Errno::ENXIO => "is a FIFO (or a device): not written".into(),
        Errno::EISDIR => "is a directory: not written".into(),
        Errno::ENOTDIR => "is not a directory".into(),
        Errno::ENOENT => "does not exist: create it (root's, mode 0700), or set probe-paths".into(),
        other => other.desc().into(),
    }
}

/// What sits at `name` in `dir` where a directory was expected (looked at, never followed).
fn not_a_directory(dir: std::os::fd::BorrowedFd<'_>, name: &std::ffi::OsStr) -> String {
    use nix::fcntl::AtFlags;
    match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK => {
            "is a symlink: not followed".into()
        }
        _ => "is not a directory".into(),
    }
}

/// wdfeed's own user (root on a node).
fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Sticky and wdfeed's: others may create entries in it but not move or remove wdfeed's.
fn sticky_and_ours(st: &FileStat) -> bool {
    st.st_uid == me() && st.st_mode & 0o1000 != 0
}

/// The directory is wdfeed's user's and no other user may write in it: only then can nobody
/// else put a file, a FIFO or a link where the probe goes, or move the probe away.
fn owned_by_us_alone(st: &FileStat, path: &Path) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    let mode = st.st_mode & 0o7777;
    let why = if st.st_uid != me {
        format!("belongs to uid {}", st.st_uid)
    } else if mode & 0o002 != 0 {
        format!("is writable by every user (mode {mode:o})")
    } else if mode & 0o020 != 0 && st.st_gid != 0 {
        format!("is writable by group {} (mode {mode:o})", st.st_gid)
    } else {
        return Ok(());
    };
    Err(format!(
        "{} {why}: another user could put a file, a FIFO or a link where the probe goes. \
         wdfeed keeps its probe only in directories that are root's and writable by no other \
         user: set probe-paths to a file in such a directory on this filesystem (wdfeed \
         creates the last directory, mode 0700)",
        path.display()
    ))
}
