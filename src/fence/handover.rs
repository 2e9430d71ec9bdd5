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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::system::errno_slot::{errno_of, ErrnoSlot};

/// The handover file and what it says now.
pub struct HandoverFile {
    path: PathBuf,
    /// What the status thread last wrote (true = `1`), if it knows.
    state: Mutex<Option<bool>>,
    /// `1` for good: set by the fence and by a disarming exit.
    sealed: AtomicBool,
    /// What the fence's own write did.
    fenced: ErrnoSlot,
}

/// The longest path the handover file may have: std opens a shorter one from a buffer on
/// the stack, so the fence's open allocates nothing.
const MAX_PATH: usize = 255;

/// Why `dir` cannot hold the handover file: not a directory, not root's, or writable by
/// others (who could put a FIFO or a symlink where the fence writes).
fn unsafe_directory(dir: &Path, meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if !meta.file_type().is_dir() {
        return Some(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != crate::ffi::effective_uid() {
        return Some(format!(
            "{} is owned by uid {}, not by wdfeed's user",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "{} is writable by its group or by others (mode {:o})",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    None
}

impl HandoverFile {
    /// Creates (or opens) the file at start-up and makes it say `1`: no all-pass round yet.
    /// The fence writes it, so it must never make the fence wait: it must sit on a tmpfs (a
    /// write there never waits on a disk), in a directory of root's that no one else may
    /// write (no FIFO or symlink can be planted in its place), under a short path (opening
    /// it allocates nothing).
    pub fn prepare(path: &Path) -> io::Result<HandoverFile> {
        if path.as_os_str().len() > MAX_PATH {
            return Err(io::Error::other(format!(
                "the path is over {MAX_PATH} bytes"
            )));
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| io::Error::other("the path names no directory"))?;
        let meta = std::fs::symlink_metadata(dir)?;
        if let Some(why) = unsafe_directory(dir, &meta) {
            return Err(io::Error::other(why));
        }
        let f = HandoverFile {
            path: path.to_path_buf(),
            state: Mutex::new(None),
            sealed: AtomicBool::new(false),
            fenced: ErrnoSlot::new(),
        };
        // Judged before anything is created: a refused path is left as it was.
        let d = std::fs::File::open(dir)?;
        crate::fence::record::memory_backed(&d, dir).map_err(io::Error::other)?;
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

    /// Opens the file for writing without following a symlink or waiting on a FIFO, and
    /// only if it is a regular file.
    fn open(&self, create: bool) -> io::Result<File> {
        let file: File = OpenOptions::new()
            .write(true)
            .create(create)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.path)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(file)
    }

    fn write(&self, fault: bool, create: bool) -> io::Result<()> {
        let file = self.open(create)?;
        file.write_all_at(if fault { b"1\n" } else { b"0\n" }, 0)?;
        file.set_len(2)?;
        // Dropping the file closes it: keepalived re-reads on IN_CLOSE_WRITE.
        Ok(())
    }

    /// What the file says now, as two bytes.
    fn reads(&self) -> Option<[u8; 2]> {
        let mut buf = [0u8; 3];
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.path)
            .ok()?;
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
        self.fenced
            .set(self.write(true, false).map_err(|e| errno_of(&e)));
    }

    /// What the fence's own write did: `None` if not tried, else its result.
    pub fn fence_outcome(&self) -> Option<Result<(), nix::errno::Errno>> {
        self.fenced.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of root's on a tmpfs, as the handover file demands.
    fn shm() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("wdfeed-handover-")
            .tempdir_in("/dev/shm")
            .unwrap()
    }

    #[test]
    fn a_place_where_the_fence_could_wait_is_refused_and_left_as_it_was() {
        // Not a tmpfs: a write there could wait on the disk that failed.
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let p = disk.path().join("handover");
        let e = HandoverFile::prepare(&p).err().expect("refused");
        assert!(e.to_string().contains("not memory-backed"), "{e}");
        assert!(!p.exists(), "nothing created");
        // A directory others may write: a FIFO or a symlink could be put in its place.
        let open = shm();
        std::fs::set_permissions(
            open.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        let e = HandoverFile::prepare(&open.path().join("handover"))
            .err()
            .expect("refused");
        assert!(
            e.to_string().contains("writable by its group or by others"),
            "{e}"
        );
        // A FIFO in its place never hangs it.
        let dir = shm();
        let fifo = dir.path().join("handover");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(HandoverFile::prepare(&fifo).is_err());
        // A path too long to open without allocating.
        let long = dir.path().join("h".repeat(250));
        assert!(HandoverFile::prepare(&long)
            .err()
            .unwrap()
            .to_string()
            .contains("over 255 bytes"));
    }

    #[test]
    fn says_1_at_start_0_when_healthy_1_on_fault_and_stays_1_once_sealed() {
        let dir = shm();
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
        let dir = shm();
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
        let dir = shm();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let p = dir.path().join("handover");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        assert!(HandoverFile::prepare(&p).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
