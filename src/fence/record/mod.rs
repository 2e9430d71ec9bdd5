//! The fence record: one small file on a memory-backed filesystem (wdfeed's runtime
//! directory, /run/wdfeed by default) that says whether wdfeed fenced in this boot. It
//! outlives the process (a SIGKILLed, restarted wdfeed reads it) and not the boot (tmpfs and
//! the boot id both see to that).
//!
//! At start-up the record is opened (created if needed), its filesystem checked, and what it
//! says read: [`Found`]. The fence then writes to the already-open file with one pwrite from
//! a buffer on its own stack: no allocation, no lock, no new file, no sync.
//!
//! The format, fixed-size and padded with newlines:
//!
//! ```text
//! wdfeed fence record 1
//! boot <boot id>
//! state clean | fenced
//! at <seconds since boot> <seconds since the epoch>
//! reason <check>: <evidence>
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Cursor, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::statfs::{self, FsType, TMPFS_MAGIC};

use crate::system::{sysfile, Root};

mod found;
#[cfg(test)]
mod tests;

use found::parse;
pub use found::Found;

/// The runtime directory unless `--runtime-dir` says otherwise.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/wdfeed";
/// The record's file name in the runtime directory.
pub const FILE_NAME: &str = "fence";
/// The record's size: every write replaces all of it.
pub(super) const SIZE: usize = 512;
pub(super) const MAGIC: &str = "wdfeed fence record 1";
/// ramfs's statfs type (linux/magic.h), which nix does not name.
#[allow(clippy::unnecessary_cast)]
const RAMFS_MAGIC: FsType = FsType(0x8584_58f6_i64 as _);

/// The open record.
pub struct FenceRecord {
    path: PathBuf,
    file: File,
    boot_id: String,
}

/// Reads the boot id of the node `root` shows.
pub fn read_boot_id(root: &Root) -> Result<String, String> {
    let path = root.proc("sys/kernel/random/boot_id");
    let text = sysfile::read_capped(root, &path, sysfile::SMALL)
        .map_err(|e| format!("cannot read the boot id: {e}"))?;
    let id = text.trim();
    let well_formed = id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !well_formed {
        return Err(format!(
            "{} does not hold a boot id (36 hex digits and dashes): {:?}",
            root.node_name(&path).display(),
            id.chars().take(40).collect::<String>()
        ));
    }
    Ok(id.to_string())
}

impl FenceRecord {
    /// Opens (creates) the record in `dir`, refuses a filesystem that is not memory-backed,
    /// reads what it says, and leaves a clean record of this boot where it may arm.
    pub fn open(dir: &Path, boot_id: &str) -> Result<(Self, Found), String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the runtime directory {}: {e}; create it (the unit's RuntimeDirectory=wdfeed does) or pass --runtime-dir",
                dir.display()
            )
        })?;
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc_o_cloexec())
            .open(&path)
            .map_err(|e| format!("cannot open the fence record {}: {e}", path.display()))?;
        check_memory_backed(&file, &path)?;
        let mut text = Vec::new();
        let found = match (&mut file).take(4 * SIZE as u64).read_to_end(&mut text) {
            Err(e) => Found::Damaged {
                why: format!("unreadable: {e}"),
            },
            Ok(_) => parse(&text, boot_id),
        };
        let record = FenceRecord {
            path,
            file,
            boot_id: boot_id.to_string(),
        };
        if found.may_arm() {
            record.write_clean().map_err(|e| {
                format!(
                    "cannot write the fence record {}: {e}",
                    record.path.display()
                )
            })?;
        }
        Ok((record, found))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The boot id read at start-up.
    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    fn write_clean(&self) -> io::Result<()> {
        let mut buf = [b'\n'; SIZE];
        let mut c = Cursor::new(&mut buf[..]);
        write!(c, "{MAGIC}\nboot {}\nstate clean\n", self.boot_id)?;
        self.file.set_len(SIZE as u64)?;
        self.file.write_all_at(&buf, 0)
    }

    /// The fence's step: records this boot as fenced at `now` (CLOCK_BOOTTIME) for
    /// `check: evidence`. One pwrite from a buffer on the stack; a reason too long is cut
    /// (a newline in the evidence only cuts the reason short when read back). Allocates
    /// nothing.
    pub fn write_fenced(&self, now: Duration, check: &str, evidence: &str) -> io::Result<()> {
        use std::fmt::Write as _;
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // A reason that does not fit is cut on a character boundary (the record stays UTF-8
        // text); the header always fits. The rest of the record is newlines.
        let mut line = crate::fence::Line::<SIZE>::default();
        let _ = write!(
            line,
            "{MAGIC}\nboot {}\nstate fenced\nat {:.3} {epoch}\nreason {check}: {evidence}",
            self.boot_id,
            now.as_secs_f64(),
        );
        line.end_with_newline();
        let mut buf = [b'\n'; SIZE];
        buf[..line.as_bytes().len()].copy_from_slice(line.as_bytes());
        self.file.write_all_at(&buf[..], 0)
    }
}

/// O_CLOEXEC: nothing wdfeed might start inherits the record.
fn libc_o_cloexec() -> i32 {
    nix::fcntl::OFlag::O_CLOEXEC.bits()
}

/// Whether `file` (at `path`, for the message) lives on tmpfs or ramfs: what the fence
/// writes must never wait on a disk.
pub(crate) fn memory_backed(file: &File, path: &Path) -> Result<(), String> {
    let fs = statfs::fstatfs(file)
        .map_err(|e| format!("cannot statfs {}: {}", path.display(), e.desc()))?;
    let kind = fs.filesystem_type();
    if kind == TMPFS_MAGIC || kind == RAMFS_MAGIC {
        return Ok(());
    }
    Err(format!(
        "{} is on a filesystem that is not memory-backed (statfs type {:#x}, not tmpfs or ramfs)",
        path.display(),
        kind.0
    ))
}

fn check_memory_backed(file: &File, path: &Path) -> Result<(), String> {
    memory_backed(file, path).map_err(|e| {
        format!(
            "the fence record: {e}: a record there could outlive the boot, or block the fence on a disk; put the runtime directory on a tmpfs (/run is one on systemd hosts) with --runtime-dir or WDFEED_RUNTIME_DIR"
        )
    })
}
