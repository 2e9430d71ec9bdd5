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
//! passes through an empty state, and the file is never removed. The status thread keeps
//! it (and the exit sequence seals it); the fence itself writes `1` once, in the same round
//! as any fence ([`HandoverFile::fence_write`]: no lock, no allocation, no new file).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;

/// The handover file and what it says now.
pub struct HandoverFile {
    path: PathBuf,
    /// What the status thread last wrote (true = `1`), if it knows.
    state: Mutex<Option<bool>>,
    /// `1` for good: set by the fence and by a disarming exit.
    sealed: AtomicBool,
    /// The errno of the fence's own write (0: written; -1: not tried).
    fence_errno: AtomicI32,
}

impl HandoverFile {
    /// Creates (or opens) the file at start-up and makes it say `1`: no all-pass round yet.
    pub fn prepare(path: &Path) -> io::Result<HandoverFile> {
        let f = HandoverFile {
            path: path.to_path_buf(),
            state: Mutex::new(None),
            sealed: AtomicBool::new(false),
            fence_errno: AtomicI32::new(-1),
        };
        f.write(true, true)?;
        if let Ok(mut s) = f.state.lock() {
            *s = Some(true);
        }
        Ok(f)
    }

    /// Holds the status thread's lock (tests: the fence must not wait for it).
    #[cfg(test)]
    pub fn lock_for_test(&self) -> std::sync::MutexGuard<'_, Option<bool>> {
        self.state.lock().unwrap()
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
        let fault = fault || self.sealed.load(Ordering::SeqCst);
        let want: [u8; 2] = if fault { *b"1\n" } else { *b"0\n" };
        if *s == Some(fault) && self.reads() == Some(want) {
            return Ok(());
        }
        *s = None;
        self.write(fault, true)?;
        *s = Some(fault);
        // A fence that wrote `1` while this wrote `0` must not be undone.
        if !fault && self.sealed.load(Ordering::SeqCst) {
            *s = None;
            self.write(true, true)?;
            *s = Some(true);
        }
        Ok(())
    }

    /// `1` for good: after a fence, and at a disarming exit.
    pub fn seal(&self) -> io::Result<()> {
        self.sealed.store(true, Ordering::SeqCst);
        self.set(true)
    }

    /// The fence's step: `1` for good, written at once by the thread that fences. The file
    /// exists (made at start-up), so this opens it without creating it, writes two bytes
    /// and closes it (keepalived re-reads on close). Takes no lock and allocates nothing;
    /// the outcome is read with [`Self::fence_outcome`].
    pub fn fence_write(&self) {
        self.sealed.store(true, Ordering::SeqCst);
        let errno = match self.write(true, false) {
            Ok(()) => 0,
            Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
        };
        self.fence_errno.store(errno, Ordering::SeqCst);
    }

    /// What the fence's own write did: `None` if not tried, else its result.
    pub fn fence_outcome(&self) -> Option<io::Result<()>> {
        match self.fence_errno.load(Ordering::SeqCst) {
            -1 => None,
            0 => Some(Ok(())),
            e => Some(Err(io::Error::from_raw_os_error(e))),
        }
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
    fn the_fence_writes_1_at_once_and_the_status_thread_never_undoes_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("handover");
        let read = || std::fs::read_to_string(&p).unwrap();
        let h = HandoverFile::prepare(&p).unwrap();
        h.set(false).unwrap();
        assert_eq!(read(), "0\n");
        assert!(h.fence_outcome().is_none());
        // The status thread is in the middle of a round (holding its lock): the fence
        // neither waits for it nor is undone by it.
        let guard = h.state.lock().unwrap();
        h.fence_write();
        assert_eq!(read(), "1\n");
        drop(guard);
        h.set(false).unwrap();
        assert_eq!(read(), "1\n");
        assert!(matches!(h.fence_outcome(), Some(Ok(()))));
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
