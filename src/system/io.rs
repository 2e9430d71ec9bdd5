//! The daemon's one way to read a small file that someone may have tampered with, and its one
//! way to replace a file it keeps. Both are strict on purpose: every file wdfeed reads or
//! writes this way (the config, the status file, the state and rejoin records, the metrics
//! textfile) lives where a mistake or another user could put a FIFO, a device or a symlink.
//!
//! - [`read_capped`]: a regular file only (a FIFO or a device would hang or never end),
//!   opened without blocking, at most a given size, through a symlink only where the caller
//!   says one may stand.
//! - [`write_atomically`]: a new temporary file beside the target, created
//!   `O_CREAT|O_EXCL|O_NOFOLLOW` with the caller's mode (never one planted there, never
//!   through a symlink), written, synced when the caller needs it to survive a reset, and
//!   renamed over the target (then the directory synced too).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Whether the file read may be reached through a symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    Follow,
    Refuse,
}

/// Why [`read_capped`] read nothing.
#[derive(Debug)]
pub enum ReadError {
    NotFound,
    /// A symlink where [`Links::Refuse`] was asked.
    Symlink,
    /// A FIFO, device or directory.
    NotRegular,
    /// Over the cap (the cap, in bytes).
    TooBig(u64),
    Io(io::Error),
}

/// Reads `path` as text: a regular file only, opened O_NONBLOCK|O_NOCTTY (and O_NOFOLLOW with
/// [`Links::Refuse`]), at most `max` bytes.
pub fn read_capped(path: &Path, max: u64, links: Links) -> Result<String, ReadError> {
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ReadError::NotFound,
            _ if e.raw_os_error() == Some(libc::ELOOP) => ReadError::Symlink,
            _ => ReadError::Io(e),
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > max {
        return Err(ReadError::TooBig(max));
    }
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(ReadError::Io)?;
    if text.len() as u64 > max {
        return Err(ReadError::TooBig(max));
    }
    Ok(text)
}

/// Whether a replaced file must survive a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory (the state record: a reset must find it).
    Synced,
    /// No fsync (tmpfs, or a file whose loss in a crash is harmless).
    Unsynced,
}

/// Replaces `path` with `bytes`: a temporary `.<name>.<pid>.tmp` beside it, created
/// `O_CREAT|O_EXCL|O_NOFOLLOW` with `mode`, renamed over it. A stale or planted temporary
/// of that name is unlinked first (unlink never follows a symlink). Readers see the old
/// content or the new, never a part.
pub fn write_atomically(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} names no file", path.display())))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp)?;
            open()?
        }
        other => other?,
    };
    let written = file.write_all(bytes).and_then(|()| match durability {
        Durability::Synced => file.sync_all(),
        Durability::Unsynced => Ok(()),
    });
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if durability == Durability::Synced {
        // The rename itself must reach the disk before a reset can make it matter.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reads_only_a_regular_file_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            read_capped(&fifo, 100, Links::Follow),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_capped(Path::new("/dev/zero"), 100, Links::Follow),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_capped(dir.path(), 100, Links::Follow),
            Err(ReadError::NotRegular)
        ));
        let big = dir.path().join("big");
        fs::write(&big, [b'x'; 101]).unwrap();
        assert!(matches!(
            read_capped(&big, 100, Links::Follow),
            Err(ReadError::TooBig(100))
        ));
        let ok = dir.path().join("ok");
        fs::write(&ok, "fine\n").unwrap();
        assert_eq!(read_capped(&ok, 100, Links::Refuse).unwrap(), "fine\n");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        assert!(matches!(
            read_capped(&link, 100, Links::Refuse),
            Err(ReadError::Symlink)
        ));
        assert_eq!(read_capped(&link, 100, Links::Follow).unwrap(), "fine\n");
        assert!(matches!(
            read_capped(&dir.path().join("none"), 100, Links::Follow),
            Err(ReadError::NotFound)
        ));
    }

    #[test]
    fn writes_with_its_mode_never_through_a_planted_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state");
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, "keep").unwrap();
        // Someone planted the temporary's name as a symlink to another file.
        let tmp = dir
            .path()
            .join(format!(".state.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&elsewhere, &tmp).unwrap();
        write_atomically(&target, b"new\n", 0o600, Durability::Synced).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "keep");
        assert!(!tmp.exists());
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_atomically(&target, b"newer\n", 0o600, Durability::Unsynced).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "newer\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary left: {names:?}");
    }
}
