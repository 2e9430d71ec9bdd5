//! The control socket in the runtime directory: made only where no other user can replace
//! it, owned by one wdfeed at a time, and removed at exit only if it is still the one made.
//!
//! The directory must be a real directory (not a symlink) owned by wdfeed's user (root),
//! writable by nobody else: then only root can replace the socket, and a command that finds
//! something else there (a file, a symlink, a socket of another owner) refuses to talk to
//! it. The socket itself is mode 0600: only root can even connect; the daemon checks the
//! peer's credentials all the same (SO_PEERCRED).
//!
//! One wdfeed per runtime directory serves requests: a lock file (`control.lock`, flock
//! held for the process's life) keeps a second one (a dry run beside the real daemon, a
//! start while the old process still runs) from taking the socket over.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::wire::SOCKET_NAME;

const LOCK_NAME: &str = "control.lock";

/// The bound socket, and the lock that makes it this process's.
pub struct Bound {
    pub listener: UnixListener,
    pub path: PathBuf,
    /// The socket file's device and inode: removed at exit only if still this one.
    ident: (u64, u64),
    _lock: Flock<File>,
}

/// Why the directory cannot hold a socket that only root can replace, if it cannot.
pub fn unsafe_dir(dir: &Path, meta: &fs::Metadata, owner: u32) -> Option<String> {
    if !meta.file_type().is_dir() {
        return Some(format!(
            "{} is not a directory (a symbolic link or a file)",
            dir.display()
        ));
    }
    if meta.uid() != owner {
        return Some(format!(
            "{} is owned by uid {}, not by uid {owner}",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "{} is writable by its group or by others (mode {:o}): another user could replace the control socket",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    None
}

/// Makes the socket in `dir` (created 0755 if missing). An error says why no operator
/// request can be served; the daemon runs on without.
pub fn bind(dir: &Path) -> Result<Bound, String> {
    if let Err(e) = fs::DirBuilder::new().mode(0o755).create(dir) {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(format!("cannot create {}: {e}", dir.display()));
        }
    }
    let euid = crate::ffi::effective_uid();
    let meta = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some(why) = unsafe_dir(dir, &meta, euid) {
        return Err(why);
    }
    let lock_path = dir.join(LOCK_NAME);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    let lock = Flock::lock(lock, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        if e == nix::errno::Errno::EWOULDBLOCK {
            format!(
                "another wdfeed serves operator requests from {} (it holds {}); give each wdfeed a runtime directory of its own (--runtime-dir)",
                dir.display(),
                lock_path.display()
            )
        } else {
            format!("cannot lock {}: {}", lock_path.display(), e.desc())
        }
    })?;
    let path = dir.join(SOCKET_NAME);
    // Whatever is there is root's (the directory is) and stale: the lock says no wdfeed
    // serves it.
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove the old {}: {e}", path.display())),
    }
    let listener =
        UnixListener::bind(&path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let m = fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Bound {
        listener,
        path,
        ident: (m.dev(), m.ino()),
        _lock: lock,
    })
}

impl Bound {
    /// Removes the socket file if it is still the one this process made.
    pub fn remove(&self) {
        if let Ok(m) = fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.ident {
                let _ = fs::remove_file(&self.path);
            }
        }
    }

    /// Whether the socket file is still the one this process made (not removed, not
    /// replaced).
    pub fn in_place(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.ident)
    }
}
