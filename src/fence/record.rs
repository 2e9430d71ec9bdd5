//! The fence record: one small file on a memory-backed filesystem (wdfeed's runtime
//! directory, /run/wdfeed by default) that says whether wdfeed fenced in this boot. It
//! outlives the process (a SIGKILLed, restarted wdfeed reads it) and not the boot (tmpfs and
//! the boot id both see to that).
//!
//! At start-up the record is opened (created if needed), its filesystem checked, and what it
//! says read: [`Found`]. The fence then writes to the already-open file with one pwrite from
//! a buffer prepared at start-up: no allocation, no new file, no sync.
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
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::statfs::{self, FsType, TMPFS_MAGIC};

use crate::system::Root;

/// The runtime directory unless `--runtime-dir` says otherwise.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/wdfeed";
/// The record's file name in the runtime directory.
pub const FILE_NAME: &str = "fence";
/// The record's size: every write replaces all of it.
const SIZE: usize = 512;
const MAGIC: &str = "wdfeed fence record 1";
/// ramfs's statfs type (linux/magic.h), which nix does not name.
#[allow(clippy::unnecessary_cast)]
const RAMFS_MAGIC: FsType = FsType(0x8584_58f6_i64 as _);

/// What the record said at start-up.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// No record, or an empty one: first start in this boot.
    Nothing,
    /// wdfeed ran in this boot and did not fence.
    CleanThisBoot,
    /// A record of another boot: ignored (it is overwritten as clean).
    OtherBoot { boot: String },
    /// wdfeed fenced in this boot: it must never arm or pet again until the reset.
    FencedThisBoot {
        at_boot_s: f64,
        at_epoch_s: u64,
        reason: String,
    },
    /// A record that names this boot but cannot be read as one: treated as fenced.
    Damaged { why: String },
}

impl Found {
    /// Whether wdfeed may arm in this boot.
    pub fn may_arm(&self) -> bool {
        matches!(
            self,
            Found::Nothing | Found::CleanThisBoot | Found::OtherBoot { .. }
        )
    }

    /// One line for the log and `status`.
    pub fn describe(&self, path: &Path) -> String {
        let p = path.display();
        match self {
            Found::Nothing => format!("no fence record at {p}: first start in this boot"),
            Found::CleanThisBoot => format!("fence record {p}: not fenced in this boot"),
            Found::OtherBoot { boot } => {
                format!("fence record {p} is of another boot ({boot}): ignored")
            }
            Found::FencedThisBoot {
                at_boot_s,
                at_epoch_s,
                reason,
            } => format!(
                "fenced earlier in this boot at {at_boot_s:.1} s after boot (unix time {at_epoch_s}) ({reason}): waiting for the reset (record {p})"
            ),
            Found::Damaged { why } => format!(
                "fence record {p} of this boot is damaged ({why}): treated as fenced, waiting for the reset"
            ),
        }
    }
}

/// The open record and the buffer the fence writes.
pub struct FenceRecord {
    path: PathBuf,
    file: File,
    boot_id: String,
    /// Prepared at start-up; the fence formats into it in place (a newline in the
    /// evidence only cuts the reason short when read back).
    buf: Mutex<[u8; SIZE]>,
}

/// Reads the boot id of the node `root` shows.
pub fn read_boot_id(root: &Root) -> Result<String, String> {
    let path = root.proc("sys/kernel/random/boot_id");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the boot id from {}: {e}", path.display()))?;
    let id = text.trim();
    let well_formed = id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !well_formed {
        return Err(format!(
            "{} does not hold a boot id (36 hex digits and dashes): {:?}",
            path.display(),
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
            buf: Mutex::new([b'\n'; SIZE]),
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

    fn write_clean(&self) -> io::Result<()> {
        let mut buf = [b'\n'; SIZE];
        let mut c = Cursor::new(&mut buf[..]);
        write!(c, "{MAGIC}\nboot {}\nstate clean\n", self.boot_id)?;
        self.file.set_len(SIZE as u64)?;
        self.file.write_all_at(&buf, 0)
    }

    /// The fence's step: records this boot as fenced at `now` (CLOCK_BOOTTIME) for
    /// `check: evidence`. One pwrite from the prepared buffer; a reason too long is cut.
    pub fn write_fenced(&self, now: Duration, check: &str, evidence: &str) -> io::Result<()> {
        let Ok(mut buf) = self.buf.try_lock() else {
            return Err(io::Error::other("the fence record is being written"));
        };
        buf.fill(b'\n');
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut c = Cursor::new(&mut buf[..]);
        // A reason that does not fit is cut where the buffer ends; the header always fits.
        let _ = write!(
            c,
            "{MAGIC}\nboot {}\nstate fenced\nat {:.3} {epoch}\nreason {check}: {evidence}",
            self.boot_id,
            now.as_secs_f64(),
        );
        buf[SIZE - 1] = b'\n';
        self.file.write_all_at(&buf[..], 0)
    }
}

/// O_CLOEXEC: nothing wdfeed might start inherits the record.
fn libc_o_cloexec() -> i32 {
    nix::fcntl::OFlag::O_CLOEXEC.bits()
}

fn check_memory_backed(file: &File, path: &Path) -> Result<(), String> {
    let fs = statfs::fstatfs(file).map_err(|e| {
        format!(
            "cannot statfs the fence record {}: {}",
            path.display(),
            e.desc()
        )
    })?;
    let kind = fs.filesystem_type();
    if kind == TMPFS_MAGIC || kind == RAMFS_MAGIC {
        return Ok(());
    }
    Err(format!(
        "the fence record {} is on a filesystem that is not memory-backed (statfs type {:#x}, not tmpfs or ramfs): a record there could outlive the boot, or block the fence on a disk; put the runtime directory on a tmpfs (/run is one on systemd hosts) with --runtime-dir or WDFEED_RUNTIME_DIR",
        path.display(),
        kind.0
    ))
}

/// What `text` says of the boot `boot_id`.
fn parse(text: &[u8], boot_id: &str) -> Found {
    if text.iter().all(|&b| b == b'\n' || b == 0) {
        return Found::Nothing;
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return Found::Damaged {
            why: "not UTF-8 text".into(),
        };
    };
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Found::Damaged {
            why: format!("the first line is not `{MAGIC}`"),
        };
    }
    let Some(boot) = lines.next().and_then(|l| l.strip_prefix("boot ")) else {
        return Found::Damaged {
            why: "no `boot` line".into(),
        };
    };
    if boot.len() != boot_id.len() {
        return Found::Damaged {
            why: "the `boot` line holds no whole boot id".into(),
        };
    }
    if boot != boot_id {
        return Found::OtherBoot {
            boot: boot.chars().take(40).collect(),
        };
    }
    match lines.next() {
        Some("state clean") => Found::CleanThisBoot,
        Some("state fenced") => parse_fenced(lines),
        _ => Found::Damaged {
            why: "no `state clean` or `state fenced` line".into(),
        },
    }
}

fn parse_fenced<'a>(mut lines: impl Iterator<Item = &'a str>) -> Found {
    let at = lines
        .next()
        .and_then(|l| l.strip_prefix("at "))
        .and_then(|l| {
            let (boot, epoch) = l.split_once(' ')?;
            Some((boot.parse::<f64>().ok()?, epoch.parse::<u64>().ok()?))
        });
    let Some((at_boot_s, at_epoch_s)) = at else {
        return Found::Damaged {
            why: "fenced, but the `at` line is missing or malformed".into(),
        };
    };
    let reason = lines
        .next()
        .and_then(|l| l.strip_prefix("reason "))
        .unwrap_or("reason not recorded")
        .trim_end()
        .to_string();
    Found::FencedThisBoot {
        at_boot_s,
        at_epoch_s,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    const OTHER: &str = "ffffffff-4f50-6172-8394-a5b6c7d8e9f0";

    /// A directory on tmpfs (/dev/shm), as the record demands.
    fn shm() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("wdfeed-record-")
            .tempdir_in("/dev/shm")
            .unwrap()
    }

    #[test]
    fn a_first_start_finds_nothing_and_leaves_a_clean_record() {
        let dir = shm();
        let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
        assert_eq!(found, Found::Nothing);
        assert!(found.may_arm());
        let (_r, again) = FenceRecord::open(dir.path(), BOOT).unwrap();
        assert_eq!(again, Found::CleanThisBoot);
    }

    #[test]
    fn a_fence_in_this_boot_is_found_by_the_next_start() {
        let dir = shm();
        let (r, _) = FenceRecord::open(dir.path(), BOOT).unwrap();
        r.write_fenced(
            Duration::from_millis(123_456),
            "writable /mnt/data",
            "read-only",
        )
        .unwrap();
        drop(r);
        let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
        match &found {
            Found::FencedThisBoot {
                at_boot_s, reason, ..
            } => {
                assert_eq!(*at_boot_s, 123.456);
                assert_eq!(reason, "writable /mnt/data: read-only");
            }
            other => panic!("expected fenced, got {other:?}"),
        }
        assert!(!found.may_arm());
        assert!(found
            .describe(Path::new("/run/wdfeed/fence"))
            .starts_with("fenced earlier in this boot at 123.5 s after boot"));
        // still fenced: a second restart does not clear it
        let (_r, again) = FenceRecord::open(dir.path(), BOOT).unwrap();
        assert!(matches!(again, Found::FencedThisBoot { .. }));
    }

    #[test]
    fn a_record_of_another_boot_is_ignored_and_overwritten_as_clean() {
        let dir = shm();
        let (r, _) = FenceRecord::open(dir.path(), OTHER).unwrap();
        r.write_fenced(Duration::from_secs(5), "process fakehb", "gone")
            .unwrap();
        drop(r);
        let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
        assert_eq!(
            found,
            Found::OtherBoot {
                boot: OTHER.to_string()
            }
        );
        assert!(found.may_arm());
        let (_r, again) = FenceRecord::open(dir.path(), BOOT).unwrap();
        assert_eq!(again, Found::CleanThisBoot);
    }

    #[test]
    fn damaged_records_of_this_boot_do_not_arm_and_stay() {
        let dir = shm();
        let path = dir.path().join(FILE_NAME);
        for bad in [
            "garbage".to_string(),
            format!("{MAGIC}\n"),
            format!("{MAGIC}\nboot {BOOT}\n"),
            format!("{MAGIC}\nboot {BOOT}\nstate fenced\n"),
            format!("{MAGIC}\nboot {BOOT}\nstate fenced\nat x 1\n"),
            format!("{MAGIC}\nboot {BOOT}\nstate maybe\n"),
        ] {
            std::fs::write(&path, &bad).unwrap();
            let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
            assert!(matches!(found, Found::Damaged { .. }), "{bad:?}: {found:?}");
            assert!(!found.may_arm());
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                bad,
                "left as found"
            );
        }
        std::fs::write(&path, [0xffu8, 0xfe, 0x00]).unwrap();
        let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
        assert!(matches!(found, Found::Damaged { .. }));
    }

    #[test]
    fn a_truncated_record_is_damaged_not_clean() {
        let dir = shm();
        let (r, _) = FenceRecord::open(dir.path(), BOOT).unwrap();
        r.write_fenced(Duration::from_secs(7), "c", "e").unwrap();
        drop(r);
        let path = dir.path().join(FILE_NAME);
        let text = std::fs::read(&path).unwrap();
        std::fs::write(&path, &text[..MAGIC.len() + 10]).unwrap();
        let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
        assert!(matches!(found, Found::Damaged { .. }), "{found:?}");
    }

    #[test]
    fn a_long_reason_is_cut_and_the_record_still_reads() {
        let dir = shm();
        let (r, _) = FenceRecord::open(dir.path(), BOOT).unwrap();
        r.write_fenced(Duration::from_secs(9), "c", &"x\n".repeat(2000))
            .unwrap();
        drop(r);
        assert_eq!(
            std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len(),
            SIZE as u64
        );
        let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
        assert!(matches!(found, Found::FencedThisBoot { .. }), "{found:?}");
    }

    #[test]
    fn a_disk_backed_directory_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let err = match FenceRecord::open(dir.path(), BOOT) {
            Ok(_) => return, // the build tree itself is on tmpfs: nothing to prove here
            Err(e) => e,
        };
        assert!(err.contains("not memory-backed"), "{err}");
        assert!(err.contains("--runtime-dir"), "{err}");
    }

    #[test]
    fn the_boot_id_is_read_under_the_root_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proc/sys/kernel/random");
        std::fs::create_dir_all(&p).unwrap();
        let root = Root::at(dir.path());
        assert!(read_boot_id(&root).unwrap_err().contains("cannot read"));
        std::fs::write(p.join("boot_id"), format!("{BOOT}\n")).unwrap();
        assert_eq!(read_boot_id(&root).unwrap(), BOOT);
        std::fs::write(p.join("boot_id"), "hello\n").unwrap();
        assert!(read_boot_id(&root)
            .unwrap_err()
            .contains("does not hold a boot id"));
    }
}
