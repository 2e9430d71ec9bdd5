//! Reading the kernel's small text files (`/proc`, `/sys`) without trusting them: a size cap,
//! lossy text, and errors that name the file, the line and the item.
//!
//! Every reader in [`crate::system`] goes through here, so a truncated, garbage or huge file is
//! an error an operator can read, never a panic or an unbounded allocation. Parsing stays in
//! the readers; this module owns only the bytes-to-text step and the error type.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::system::Root;

/// Cap for one-value files (`/sys/block/X/inflight`, a pidfile).
pub const SMALL: u64 = 64 * 1024;
/// Cap for table files (`/proc/diskstats`, `/proc/meminfo`).
pub const TABLE: u64 = 4 * 1024 * 1024;
/// Cap for `/proc/1/mountinfo`: nodes running many containers reach megabytes.
pub const MOUNTINFO: u64 = 64 * 1024 * 1024;

/// Why a kernel file could not be read or understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// The file as the node names it (`/proc/diskstats`), not as this view reaches it.
    pub file: PathBuf,
    /// 1-based line, when the problem is in one line.
    pub line: Option<usize>,
    pub what: String,
}

impl ReadError {
    pub fn new(file: impl Into<PathBuf>, line: Option<usize>, what: impl Into<String>) -> Self {
        ReadError {
            file: file.into(),
            line,
            what: what.into(),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "{} line {n}: {}", self.file.display(), self.what),
            None => write!(f, "{}: {}", self.file.display(), self.what),
        }
    }
}

impl std::error::Error for ReadError {}

/// A parse problem inside a text, before the reader knows which file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub what: String,
}

impl LineError {
    pub fn new(line: usize, what: impl Into<String>) -> Self {
        LineError {
            line,
            what: what.into(),
        }
    }

    /// Attaches the file the text came from.
    pub fn in_file(self, file: impl Into<PathBuf>) -> ReadError {
        ReadError::new(file, Some(self.line), self.what)
    }
}

/// Reads `view_path` as text, refusing more than `limit` bytes. Invalid UTF-8 is replaced
/// rather than refused: mount points may hold any byte, and one odd name must not hide the
/// rest of the table.
pub fn read_capped(root: &Root, view_path: &Path, limit: u64) -> Result<String, ReadError> {
    let name = root.node_name(view_path);
    let file = File::open(root.follow(view_path))
        .map_err(|e| ReadError::new(&name, None, e.to_string()))?;
    read_from(file, limit).map_err(|e| ReadError::new(&name, None, e.to_string()))
}

/// The buffer a read starts with: most kernel files fit, so one read(2) returns all of it
/// and a second one the end of file. An empty buffer would grow by small reads (five per
/// `/proc/<pid>/stat`, measured with strace), and these files are read every second.
const FIRST_READ: u64 = 8 * 1024;

fn read_from(file: File, limit: u64) -> io::Result<String> {
    let first = usize::try_from(FIRST_READ.min(limit.saturating_add(1))).unwrap_or(4096);
    let mut bytes = Vec::with_capacity(first);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    text_of(bytes, limit)
}

/// A kernel file kept open between runs and read again with pread from offset 0: for the
/// kernel's seq files (`/proc/1/mountinfo`, `/proc/diskstats`) a read at offset 0 makes the
/// kernel produce the file anew, so the text is that of now (Linux 6.18, measured: a mount,
/// a remount ro and an umount each showed at the next pread; diskstats counters moved).
/// A kept `/proc/1/mountinfo` stays on the mount namespace init had when it was opened
/// (init does not change it). Any error on the kept descriptor drops it and the file is
/// opened afresh once; an error then is the reader's error, as with [`read_capped`]. Only
/// files on procfs are kept: any other (a fixture tree) is opened at every read.
#[derive(Debug)]
pub struct KeptFile {
    view_path: PathBuf,
    file: Option<File>,
}

impl KeptFile {
    /// `view_path` as this view reaches it (`root.proc("diskstats")`); opened at first read.
    pub fn new(view_path: PathBuf) -> Self {
        KeptFile {
            view_path,
            file: None,
        }
    }

    /// The path as this view reaches it.
    pub fn view_path(&self) -> &Path {
        &self.view_path
    }

    /// The whole file as text, at most `limit` bytes (see [`read_capped`]).
    pub fn read(&mut self, root: &Root, limit: u64) -> Result<String, ReadError> {
        if let Some(f) = &self.file {
            if let Ok(text) = pread_all(f, limit) {
                return Ok(text);
            }
            self.file = None;
        }
        let name = root.node_name(&self.view_path);
        let file = File::open(root.follow(&self.view_path))
            .map_err(|e| ReadError::new(&name, None, e.to_string()))?;
        let text =
            pread_all(&file, limit).map_err(|e| ReadError::new(&name, None, e.to_string()))?;
        // Only the kernel's own files are kept: a regular file (a fixture tree) can be
        // replaced by a rename, which a kept descriptor would never see.
        if is_procfs(&file) {
            self.file = Some(file);
        }
        Ok(text)
    }
}

pub(crate) fn is_procfs(file: &File) -> bool {
    use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
    fstatfs(file).is_ok_and(|fs| fs.filesystem_type() == PROC_SUPER_MAGIC)
}

/// Reads `file` from offset 0 to its end with pread, at most `limit + 1` bytes.
pub(crate) fn pread_all(file: &File, limit: u64) -> io::Result<String> {
    use std::os::unix::fs::FileExt;
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = vec![0u8; usize::try_from(FIRST_READ).unwrap_or(8192).min(cap)];
    let mut len = 0usize;
    loop {
        if len == bytes.len() {
            if len >= cap {
                break;
            }
            bytes.resize(len.saturating_mul(2).min(cap), 0);
        }
        let n = file.read_at(&mut bytes[len..], len as u64)?;
        if n == 0 {
            break;
        }
        len += n;
    }
    bytes.truncate(len);
    text_of(bytes, limit)
}

/// The bytes read (at most `limit + 1` of them) as text, or why not.
pub(crate) fn text_of(bytes: Vec<u8>, limit: u64) -> io::Result<String> {
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes: not a kernel file I understand"),
        ));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parses one unsigned counter, naming the item when it is not one.
pub fn parse_u64(item: &str, text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| format!("{item} `{}` is not a counter", shorten(text)))
}

/// The most characters of a file's content a message quotes: files expected to be tiny
/// (pidfiles, sysfs state files) may be symlinks to anything, and evidence goes to logs and
/// the status file.
pub const EXCERPT_CHARS: usize = 32;

/// At most [`EXCERPT_CHARS`] characters of `text`, control characters escaped (`\n`,
/// `\u{1b}`), for messages that quote a file's content.
pub fn shorten(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(EXCERPT_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_file_over_the_cap_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        fs::create_dir_all(root.proc("")).unwrap();
        fs::write(root.proc("big"), vec![b'7'; 5000]).unwrap();
        let err = read_capped(&root, &root.proc("big"), 4096).unwrap_err();
        assert_eq!(err.file, Path::new("/proc/big"));
        assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");
        assert_eq!(
            read_capped(&root, &root.proc("big"), 5000).unwrap().len(),
            5000
        );
    }

    #[test]
    fn a_kept_file_reads_what_the_file_says_now_of_any_size_and_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        fs::create_dir_all(root.proc("")).unwrap();
        let mut kept = KeptFile::new(root.proc("t"));
        let err = kept.read(&root, SMALL).unwrap_err();
        assert!(err.to_string().starts_with("/proc/t: "), "{err}");
        fs::write(root.proc("t"), "one\n").unwrap();
        assert_eq!(kept.read(&root, SMALL).unwrap(), "one\n");
        // rewritten in place, longer than the first buffer
        let long = "x".repeat(20_000);
        fs::write(root.proc("t"), &long).unwrap();
        assert_eq!(kept.read(&root, SMALL).unwrap(), long);
        let err = kept.read(&root, 10_000).unwrap_err();
        assert!(err.to_string().contains("larger than 10000 bytes"), "{err}");
        fs::write(root.proc("t"), "two").unwrap();
        assert_eq!(kept.read(&root, SMALL).unwrap(), "two");
        // replaced by a rename, as a fixture writer does: not on procfs, so never kept
        fs::write(root.proc("t.new"), "three").unwrap();
        fs::rename(root.proc("t.new"), root.proc("t")).unwrap();
        assert_eq!(kept.read(&root, SMALL).unwrap(), "three");
        assert!(kept.file.is_none());
    }

    /// On this kernel a seq file read again at offset 0 is produced anew: `/proc/loadavg`
    /// names the last pid created, and a child created between two reads moves it.
    #[test]
    fn a_kept_kernel_seq_file_gives_fresh_data() {
        let root = Root::host();
        let mut kept = KeptFile::new(root.proc("loadavg"));
        let last_pid = |t: &str| t.split_whitespace().nth(4).map(str::to_string);
        let before = last_pid(&kept.read(&root, SMALL).unwrap());
        assert!(kept.file.is_some(), "a procfs file is kept open");
        let mut moved = false;
        for _ in 0..20 {
            std::process::Command::new("true").status().unwrap();
            if last_pid(&kept.read(&root, SMALL).unwrap()) != before {
                moved = true;
                break;
            }
        }
        assert!(moved, "the last pid stayed {before:?}");
    }

    #[test]
    fn a_missing_file_names_the_node_path() {
        let root = Root::at("/nonexistent-wdfeed-root");
        let err = read_capped(&root, &root.proc("diskstats"), SMALL).unwrap_err();
        assert!(err.to_string().starts_with("/proc/diskstats: "), "{err}");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        fs::write(root.resolve("x"), b"a\xffb").unwrap();
        assert_eq!(
            read_capped(&root, &root.resolve("x"), SMALL).unwrap(),
            "a\u{fffd}b"
        );
    }

    #[test]
    fn counters_and_garbage() {
        assert_eq!(parse_u64("reads", "18446744073709551615"), Ok(u64::MAX));
        assert!(parse_u64("reads", "18446744073709551616").is_err());
        assert!(parse_u64("reads", "-1").unwrap_err().contains("reads `-1`"));
        assert!(shorten(&"x".repeat(100)).ends_with("..."));
    }

    #[test]
    fn an_excerpt_is_short_and_escaped() {
        let secret =
            "root:$6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyz:19000:0:99999:7:::\nbin:x";
        let e = shorten(secret);
        assert_eq!(e, format!("{}...", &secret[..EXCERPT_CHARS]));
        assert_eq!(shorten("a\nb\x1b[2Jc"), "a\\nb\\u{1b}[2Jc");
    }

    #[test]
    fn a_pidfile_linked_to_a_secret_shows_only_an_escaped_excerpt() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let secret = format!("{}\n{}\n", "s".repeat(30) + "XYZ-SECRET-TAIL", "line two");
        fs::write(dir.path().join("shadow"), &secret).unwrap();
        std::os::unix::fs::symlink("/shadow", dir.path().join("x.pid")).unwrap();
        let e = crate::system::process_table::read_pidfile(&root, Path::new("/x.pid"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(!e.contains("line two"), "{e}");
        assert!(e.contains(&"s".repeat(30)), "{e}");
    }
}
