//! The node_exporter textfile-collector file (`metrics.textfile`): a thread of its own
//! rewrites it atomically (a hidden temporary file in the same directory, renamed over it)
//! from the snapshot the status thread offers when the state changed (or its refresh period
//! passed). A hung disk there holds only
//! this thread: the status thread never waits on it, and skips a round (and says so) while
//! the previous write has not finished. Nothing here fails a check or fences.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use super::{prometheus, Status, TextfileStatus};
use crate::system::io::{self as file_io, Durability};

/// How the writer thread writes the file (a test hands in one that hangs).
type WriteFn = Box<dyn Fn(&Path, &[u8]) -> io::Result<()> + Send>;

/// The file's mode: node_exporter, another user, reads it.
const MODE: u32 = 0o644;

/// The status thread's side of the textfile writer.
pub struct Textfile {
    path: PathBuf,
    tx: SyncSender<Status>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// A write is under way.
    busy: AtomicBool,
    /// The daemon stops: the file goes, so that no stale "healthy" lingers for node_exporter.
    stopped: AtomicBool,
    skipped: AtomicU64,
    writes: AtomicU64,
    warning: Mutex<Option<String>>,
}

impl Shared {
    fn set_warning(&self, w: Option<String>) {
        if let Ok(mut g) = self.warning.lock() {
            *g = w;
        }
    }
}

impl Textfile {
    /// Starts the writer thread for `path`, and warns at once if its directory is missing
    /// or not writable (the daemon runs on; the file appears once the directory does).
    pub fn start(path: PathBuf) -> io::Result<Arc<Textfile>> {
        Self::start_with(path, Box::new(write_atomically))
    }

    fn start_with(path: PathBuf, write: WriteFn) -> io::Result<Arc<Textfile>> {
        let shared = Arc::new(Shared::default());
        if let Some(w) = unwritable(&path) {
            tracing::warn!(file = %path.display(), "{w}");
            shared.set_warning(Some(w));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let thread_shared = Arc::clone(&shared);
        let thread_path = path.clone();
        crate::system::threads::spawn("textfile", move || {
            writer(&thread_path, &rx, &thread_shared, &write)
        })?;
        Ok(Arc::new(Textfile { path, tx, shared }))
    }

    /// Hands `status` to the writer; never waits. While the previous write is unfinished
    /// the round is skipped and counted.
    pub fn offer(&self, status: &Status) {
        if self.shared.busy.load(Ordering::Acquire) {
            self.skip();
            return;
        }
        match self.tx.try_send(status.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.skip(),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn skip(&self) {
        let n = self.shared.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 || n.is_power_of_two() {
            tracing::warn!(file = %self.path.display(), skipped_rounds = n, "the previous metrics textfile write has not finished (hung disk?): round skipped");
        }
    }

    /// The daemon stops: removes the file (and the writer removes it again should a write
    /// finish later). Called by the status thread as it ends; nothing waits for it.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        let _ = fs::remove_file(&self.path);
    }

    /// What `wdfeed status` says of the textfile; never waits on the writer.
    pub fn status(&self) -> TextfileStatus {
        let skipped = self.shared.skipped.load(Ordering::Relaxed);
        let mut warning = self.shared.warning.try_lock().ok().and_then(|g| g.clone());
        if self.shared.busy.load(Ordering::Acquire) && skipped > 0 {
            warning = Some(format!(
                "a write has not finished for {skipped} rounds (hung disk under {}?)",
                self.path.display()
            ));
        }
        TextfileStatus {
            path: self.path.clone(),
            warning,
            skipped_rounds: skipped,
            writes: self.shared.writes.load(Ordering::Relaxed),
        }
    }
}

fn writer(path: &Path, rx: &Receiver<Status>, shared: &Shared, write: &WriteFn) {
    let mut failing = false;
    // Ends when the status thread is gone (the daemon stops).
    while let Ok(status) = rx.recv() {
        shared.busy.store(true, Ordering::Release);
        let result = write(path, prometheus::render(&status).as_bytes());
        shared.busy.store(false, Ordering::Release);
        if shared.stopped.load(Ordering::Acquire) {
            break;
        }
        match result {
            Ok(()) => {
                shared.writes.fetch_add(1, Ordering::Relaxed);
                if failing {
                    tracing::info!(file = %path.display(), "metrics textfile written again");
                }
                failing = false;
                shared.set_warning(None);
            }
            Err(e) => {
                let w = format!(
                    "cannot write the metrics textfile {}: {e} (create the directory or make it writable for wdfeed; petting and fencing are not affected)",
                    path.display()
                );
                if !failing {
                    tracing::warn!("{w}");
                }
                failing = true;
                shared.set_warning(Some(w));
            }
        }
    }
    let _ = fs::remove_file(path);
}

/// Writes `bytes` through a hidden temporary file beside `path` (node_exporter reads only
/// `*.prom`), renamed over it. No fsync: a lost file after a crash is harmless.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    file_io::write_atomically(path, bytes, MODE, Durability::Unsynced)
}

/// Why `path` cannot be written (its directory is missing, not a directory, or not
/// writable), or `None` when it looks writable.
pub fn unwritable(path: &Path) -> Option<String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let hint = "create it (Debian's prometheus-node-exporter reads /var/lib/prometheus/node-exporter) or fix `metrics.textfile`; petting and fencing are not affected";
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(format!(
            "the metrics textfile directory {} does not exist: {hint}",
            dir.display()
        )),
        Err(e) => Some(format!("cannot reach {}: {e}: {hint}", dir.display())),
        Ok(m) if !m.is_dir() => Some(format!("{} is not a directory: {hint}", dir.display())),
        Ok(_) => match nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK) {
            Ok(()) => None,
            Err(e) => Some(format!(
                "the metrics textfile directory {} is not writable ({}): {hint}",
                dir.display(),
                e.desc()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wdfeed.prom");
        write_atomically(&p, b"a 1\n").unwrap();
        write_atomically(&p, b"a 2\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "a 2\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("wdfeed.prom")]);
    }

    #[test]
    fn a_missing_directory_is_a_warning_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope/wdfeed.prom");
        let w = unwritable(&p).expect("a missing directory is reported");
        assert!(w.contains("does not exist") && w.contains("nope"), "{w}");
        assert!(write_atomically(&p, b"x").is_err());
        assert_eq!(unwritable(&dir.path().join("wdfeed.prom")), None);
    }

    #[test]
    fn a_file_as_directory_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "").unwrap();
        let w = unwritable(&dir.path().join("f/wdfeed.prom")).unwrap();
        assert!(w.contains("not a directory"), "{w}");
    }

    #[test]
    fn the_writer_writes_offers_and_reports_failures_as_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/wdfeed.prom");
        let t = Textfile::start(p.clone()).unwrap();
        assert!(t.status().warning.unwrap().contains("does not exist"));
        let s = super::super::prometheus::tests::fixture();
        t.offer(&s);
        wait_until(|| {
            t.status()
                .warning
                .as_deref()
                .is_some_and(|w| w.contains("cannot write"))
        });
        fs::create_dir(dir.path().join("sub")).unwrap();
        wait_until(|| {
            t.offer(&s);
            t.status().writes > 0
        });
        assert_eq!(t.status().warning, None);
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.contains("wdfeed_build_info{"), "{text}");
    }

    /// A writer whose write never finishes: the status thread's offers return at once and
    /// count skipped rounds. The write hangs as on a dead disk, until the test lets it go.
    #[test]
    fn a_hung_write_never_holds_the_offer_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wdfeed.prom");
        let (release, hang) = mpsc::channel::<()>();
        let hang = Mutex::new(hang);
        let t = Textfile::start_with(
            p,
            Box::new(move |_: &Path, _: &[u8]| {
                let _ = hang.lock().unwrap().recv();
                Ok(())
            }),
        )
        .unwrap();
        let s = super::super::prometheus::tests::fixture();
        t.offer(&s); // taken by the writer, which hangs
        wait_until(|| t.shared.busy.load(Ordering::Acquire));
        let started = std::time::Instant::now();
        for _ in 0..5 {
            t.offer(&s);
        }
        let took = started.elapsed();
        let st = t.status();
        assert_eq!(st.skipped_rounds, 5);
        assert!(st.warning.unwrap().contains("has not finished"));
        println!("5 offers against a hung writer returned in {took:?}");
        drop(release);
    }

    fn wait_until(mut done: impl FnMut() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("timed out waiting");
    }
}
