//! The handover file (`fence.handover-file`): `0` while every check holds a valid lease,
//! `1` as soon as one does not (a run failed with its tolerance used up, which revokes its
//! lease, or the lease ran out), and `1` from the fence on, for good. keepalived's
//! `track_file ... weight 0` reads it: non-zero puts the instance in FAULT, which gives the
//! address away before the fence.
//!
//! keepalived 2.2 watches the file's directory with inotify for IN_CLOSE_WRITE, IN_MOVE and
//! IN_DELETE, and re-reads the file (strtol) on IN_CLOSE_WRITE or IN_MOVED_TO; a deleted
//! file reads as 0. So each change is written in place and the file closed: open, pwrite
//! of two bytes (`0\n` or `1\n`) at offset 0, truncate to 2, close. The content never
//! passes through an empty state, and the file is never removed. Only the status thread
//! (and the exit sequence) write it; never the feeder.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The handover file and what it says now.
pub struct HandoverFile {
    path: PathBuf,
    /// (what the file says: true = `1`; sealed: stays `1` for good).
    state: Mutex<(Option<bool>, bool)>,
}

impl HandoverFile {
    /// Creates (or opens) the file at start-up and makes it say `1`: no all-pass round yet.
    pub fn prepare(path: &Path) -> io::Result<HandoverFile> {
        let f = HandoverFile {
            path: path.to_path_buf(),
            state: Mutex::new((None, false)),
        };
        f.write(true, true)?;
        if let Ok(mut s) = f.state.lock() {
            s.0 = Some(true);
        }
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, fault: bool, create: bool) -> io::Result<()> {
        let file: File = OpenOptions::new()
            .write(true)
            .create(create)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)?;
        file.write_all_at(if fault { b"1\n" } else { b"0\n" }, 0)?;
        file.set_len(2)?;
        // Dropping the file closes it: keepalived re-reads on IN_CLOSE_WRITE.
        Ok(())
    }

    /// What the file says now, as two bytes.
    fn reads(&self) -> Option<[u8; 2]> {
        let mut buf = [0u8; 3];
        let f = File::open(&self.path).ok()?;
        let n = f.read_at(&mut buf, 0).ok()?;
        (n == 2).then(|| [buf[0], buf[1]])
    }

    /// Makes the file say `1` (fault) or `0`; once sealed, `1` whatever is asked. Unchanged, it is left
    /// alone unless someone else changed it (keepalived's `init_file ... overwrite` writes
    /// `1` when keepalived starts): then it is written again. A failed write is tried again
    /// next time.
    pub fn set(&self, fault: bool) -> io::Result<()> {
        let Ok(mut s) = self.state.lock() else {
            return Ok(());
        };
        // Sealed: `1` whatever is asked, and written again if someone changed it.
        let fault = fault || s.1;
        let want: [u8; 2] = if fault { *b"1\n" } else { *b"0\n" };
        if s.0 == Some(fault) && self.reads() == Some(want) {
            return Ok(());
        }
        s.0 = None;
        self.write(fault, true)?;
        s.0 = Some(fault);
        Ok(())
    }

    /// `1` for good: after a fence, and at a disarming exit.
    pub fn seal(&self) -> io::Result<()> {
        self.set(true)?;
        if let Ok(mut s) = self.state.lock() {
            s.1 = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_1_at_start_0_when_healthy_1_on_fault_and_stays_1_once_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("handover");
        let read = || std::fs::read_to_string(&p).unwrap();
        let h = HandoverFile::prepare(&p).unwrap();
        assert_eq!(read(), "1\n", "no all-pass round yet");
        h.set(false).unwrap();
        assert_eq!(read(), "0\n");
        h.set(true).unwrap();
        assert_eq!(read(), "1\n");
        // Someone else wrote it (keepalived starting with `init_file 1 overwrite`): the next
        // round writes what wdfeed knows again.
        h.set(false).unwrap();
        std::fs::write(&p, "1\n").unwrap();
        h.set(false).unwrap();
        assert_eq!(read(), "0\n");
        h.seal().unwrap();
        assert_eq!(read(), "1\n");
        h.set(false).unwrap();
        assert_eq!(read(), "1\n", "sealed");
        std::fs::write(&p, "0\n").unwrap();
        h.set(false).unwrap();
        assert_eq!(read(), "1\n", "sealed: 1 again, whoever wrote 0");
    }

    #[test]
    fn a_symlink_in_its_place_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let p = dir.path().join("handover");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        assert!(HandoverFile::prepare(&p).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
