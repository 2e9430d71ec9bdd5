//! After a boot that ran with `fence.mode: crashdump`: the dump its dump kernel saved, found
//! at start-up in the directory the state record names (`dumps`, the config's
//! `crashdump-dir`, kdump-tools' /var/crash by default), so that the log, `wdfeed status`
//! and the metrics name the cause: "the previous boot was fenced (crashdump) at ...; a dump
//! was saved at ...".
//!
//! Read only, on a thread of its own that start-up waits for at most
//! [`super::state::IO_TIMEOUT`] (the directory is on a disk). The directory may be writable
//! by others (Ubuntu's /var/crash is 1777): only entries owned by root (or by wdfeed's own
//! user) are looked at, no
//! symlink is followed, at most [`MAX_ENTRIES`] entries per directory are read, and of the
//! dump's kernel log only its last [`MAX_DMESG_BYTES`], for wdfeed's own FENCE line.
//!
//! The layouts: kdump-tools' `<dir>/<YYYYMMDDHHMM>/dump.<stamp>` beside `dmesg.<stamp>`, and
//! kexec-tools' (Fedora) `<dir>/<host>-<date>/vmcore` beside `vmcore-dmesg.txt`; a `vmcore`
//! or `dump.*` right in the directory counts too. A dump counts if it was written after the
//! previous boot armed (the state record's mtime, less [`CLOCK_MARGIN`]).
//!
//! What was found is kept in the runtime directory (tmpfs, [`keep`]), so that a wdfeed
//! restarted in the same boot, whose state record is then of this boot, still names it.

use std::fs::{self, File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::budget::utc;
use super::state::{self, Previous};

/// The most entries read of one directory.
pub const MAX_ENTRIES: usize = 1024;
/// The most of a dump's kernel log read (its end).
pub const MAX_DMESG_BYTES: u64 = 2 << 20;
/// How much older than the record a dump may look and still count: the dump kernel's clock
/// comes from the RTC, the armed node's may have been stepped since.
pub const CLOCK_MARGIN: Duration = Duration::from_secs(5);

/// The dump of the previous boot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedDump {
    pub path: PathBuf,
    pub bytes: u64,
    /// When it was written (its mtime), in seconds since the epoch.
    pub written_epoch_s: u64,
    /// kdump-tools writes `dump-incomplete` and renames it when done: false for one never
    /// finished (the hardware reset the dump kernel first, or it failed).
    #[serde(default = "finished")]
    pub complete: bool,
    /// The FENCE line wdfeed wrote before the crash, found in the dump's kernel log: its
    /// mode, when after the start of that boot, and the check with its evidence.
    pub fence: Option<FenceLine>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FenceLine {
    pub mode: String,
    pub at_boot_s: Option<f64>,
    /// `check=... evidence=...`, cut to 300 characters.
    pub what: String,
}

fn finished() -> bool {
    true
}

impl SavedDump {
    /// The sentence for the log, `status` and the metrics' help.
    pub fn describe(&self) -> String {
        let (what, cut) = if self.complete {
            ("a dump was saved", "")
        } else {
            ("an INCOMPLETE dump was left", ": the dump kernel never finished it (the watchdog reset it at crashdump-timeout, too short for this dump, or it failed or hung)")
        };
        let saved = format!(
            "{what} at {} ({:.1} MiB, written {}){cut}",
            self.path.display(),
            self.bytes as f64 / (1u64 << 20) as f64,
            utc(self.written_epoch_s)
        );
        match &self.fence {
            Some(f) => format!(
                "the previous boot was fenced ({}) at {} ({}); {saved}",
                f.mode,
                f.at_boot_s
                    .map_or("an unknown time".into(), |s| format!("{s:.1} s after it started")),
                f.what
            ),
            None => format!(
                "the previous boot crashed (the kernel log in its dump names no wdfeed fence: a panic of its own, or a watchdog pretimeout); {saved}"
            ),
        }
    }
}

/// What start-up found of the previous boot's dump: `None` when that boot did not run with
/// `fence.mode: crashdump` (nothing to look for); `Some(Err(line))` when it did and no dump
/// is there (or the directory could not be read), with what to say.
pub fn of_previous_boot(
    previous: &Previous,
    state_dir: &Path,
    boot_id: &str,
) -> Option<Result<SavedDump, String>> {
    let Previous::Record(r) = previous else {
        return None;
    };
    let dir = r.dumps.clone()?;
    if r.boot == boot_id || !r.state.ended_armed() {
        return None;
    }
    let record = state::path_in(state_dir);
    let state_dir = state_dir.to_path_buf();
    let found = state::bounded("dump-find", move || {
        let stat =
            |p: &Path| fs::metadata(p).map_err(|e| format!("cannot stat {}: {e}", p.display()));
        let time = stat(&record)?
            .modified()
            .map_err(|e| format!("cannot read the mtime of {}: {e}", record.display()))?
            .checked_sub(CLOCK_MARGIN)
            .unwrap_or(UNIX_EPOCH);
        let owner = stat(&state_dir)?.uid();
        newest(&dir, Since { time, owner }).map(|d| (d, dir))
    });
    Some(match found {
        None => Err(format!(
            "looking for the previous boot's crash dump did not finish within {} s (a hung disk?): not named",
            state::IO_TIMEOUT.as_secs()
        )),
        Some(Err(e)) => Err(format!("the previous boot ran with fence.mode crashdump: {e}")),
        Some(Ok((None, dir))) => Err(format!(
            "the previous boot ended armed with fence.mode crashdump, and {} holds no dump written since it armed: it was not fenced, or the dump kernel saved none (its console says why; `kdump-config status`)",
            dir.display()
        )),
        Some(Ok((Some(d), _))) => Ok(d),
    })
}

/// The file in the runtime directory that keeps the finding for a restart in this boot.
pub const KEPT_NAME: &str = "previous-dump";

/// What [`keep`] writes: the finding and the boot it was made in.
#[derive(Serialize, Deserialize)]
struct Kept {
    boot: String,
    dump: SavedDump,
}

/// Keeps `dump`, found in boot `boot_id`, in the runtime directory (tmpfs); a failure only
/// means a restart would not name it.
pub fn keep(runtime_dir: &Path, boot_id: &str, dump: &SavedDump) -> std::io::Result<()> {
    use crate::system::io::{write_atomically, Durability};
    let text = serde_json::to_vec(&Kept {
        boot: boot_id.into(),
        dump: dump.clone(),
    })
    .map_err(std::io::Error::other)?;
    write_atomically(
        &runtime_dir.join(KEPT_NAME),
        &text,
        0o600,
        Durability::Unsynced,
    )
}

/// What an earlier start of this boot found ([`keep`]); none of another boot.
pub fn kept(runtime_dir: &Path, boot_id: &str) -> Option<SavedDump> {
    use crate::system::io::{read_capped, Links};
    let text = read_capped(&runtime_dir.join(KEPT_NAME), 64 * 1024, Links::Refuse).ok()?;
    let k: Kept = serde_json::from_str(&text).ok()?;
    (k.boot == boot_id).then_some(k.dump)
}

/// Whose entries are looked at: root's, and those of the state directory's owner (wdfeed's
/// own user), never another user's.
#[derive(Clone, Copy)]
struct Since {
    time: SystemTime,
    owner: u32,
}

fn trusted(meta: &Metadata, since: Since) -> bool {
    meta.uid() == 0 || meta.uid() == since.owner
}

/// Trusted, not a symlink, written since then.
fn counts(meta: &Metadata, since: Since) -> bool {
    trusted(meta, since)
        && !meta.file_type().is_symlink()
        && meta.modified().is_ok_and(|m| m >= since.time)
}

fn entries(dir: &Path) -> std::io::Result<Vec<(PathBuf, Metadata)>> {
    Ok(fs::read_dir(dir)?
        .take(MAX_ENTRIES)
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            fs::symlink_metadata(&p).ok().map(|m| (p, m))
        })
        .collect())
}

/// A dump file, and whether it is complete (kdump-tools' `dump-incomplete`, its `cp`
/// fallback's `vmcore-incomplete`, until renamed).
fn dump_kind(name: &str) -> Option<bool> {
    if name.contains("dmesg") {
        None
    } else if name.starts_with("dump-incomplete") || name.starts_with("vmcore-incomplete") {
        Some(false)
    } else if name.starts_with("dump.") || name.starts_with("vmcore") {
        Some(true)
    } else {
        None
    }
}

fn is_dmesg(name: &str) -> bool {
    name.starts_with("dmesg") || name.starts_with("vmcore-dmesg")
}

/// The newest dump in `dir` (or one level down) written since `since`.
fn newest(dir: &Path, since: Since) -> Result<Option<SavedDump>, String> {
    let top = entries(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    // (path, meta, the directory to look for its kernel log in)
    let mut dumps: Vec<(PathBuf, Metadata)> = Vec::new();
    for (path, meta) in top {
        if !counts(&meta, since) {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if meta.is_file() && dump_kind(name).is_some() {
            dumps.push((path, meta));
        } else if meta.is_dir() {
            for (p, m) in entries(&path).unwrap_or_default() {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if m.is_file() && dump_kind(n).is_some() && counts(&m, since) {
                    dumps.push((p, m));
                }
            }
        }
    }
    let Some((path, meta)) = dumps
        .into_iter()
        .max_by_key(|(_, m)| m.modified().unwrap_or(UNIX_EPOCH))
    else {
        return Ok(None);
    };
    let fence = path.parent().and_then(|d| fence_line_beside(d, since));
    let complete = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(dump_kind)
        .unwrap_or(false);
    Ok(Some(SavedDump {
        complete,
        written_epoch_s: meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs()),
        bytes: meta.len(),
        path,
        fence,
    }))
}

/// wdfeed's last FENCE line in the kernel log saved beside a dump.
fn fence_line_beside(dir: &Path, since: Since) -> Option<FenceLine> {
    let (path, _) = entries(dir).ok()?.into_iter().find(|(p, m)| {
        m.is_file()
            && trusted(m, since)
            && p.file_name().and_then(|n| n.to_str()).is_some_and(is_dmesg)
    })?;
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(MAX_DMESG_BYTES)))
        .ok()?;
    let mut bytes = Vec::new();
    f.take(MAX_DMESG_BYTES).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines().rev().find_map(parse_fence_line)
}

/// `[   14.123456] wdfeed: FENCE check=... evidence=... bound=...s mode=crashdump`.
fn parse_fence_line(line: &str) -> Option<FenceLine> {
    let (before, after) = line.split_once("wdfeed: FENCE ")?;
    let at_boot_s = before
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.split(']').next())
        .and_then(|t| t.trim().parse::<f64>().ok());
    let mode = after
        .rsplit_once(" mode=")
        .map_or("unknown mode", |(_, m)| m.trim())
        .chars()
        .take(20)
        .collect();
    let what = after
        .rsplit_once(" bound=")
        .map_or(after, |(w, _)| w)
        .chars()
        .take(300)
        .collect();
    Some(FenceLine {
        mode,
        at_boot_s,
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rejoin::state::{RunState, StateRecord};

    const PREV: &str = "11111111-4f50-6172-8394-a5b6c7d8e9f0";
    const THIS: &str = "22222222-4f50-6172-8394-a5b6c7d8e9f0";

    fn armed(dumps: Option<&Path>) -> Previous {
        Previous::Record(StateRecord {
            boot: PREV.into(),
            state: RunState::Armed,
            bound: Duration::from_secs(66),
            rejoin_delay: Duration::from_secs(66),
            ended: vec![],
            dumps: dumps.map(Path::to_path_buf),
        })
    }

    /// A state directory whose record was written `ago` before now.
    fn state_dir(ago: Duration) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(state::FILE_NAME);
        fs::write(&p, "wdfeed state 1\n").unwrap();
        let f = File::options().write(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() - ago).unwrap();
        d
    }

    fn set_age(p: &Path, ago: Duration) {
        File::open(p)
            .unwrap()
            .set_modified(SystemTime::now() - ago)
            .unwrap();
    }

    const DMESG: &str = "[    0.000000] Linux version 6.1.0-57-amd64\n[   14.250001] wdfeed: FENCE check=process fakehb evidence=fakehb pid 7 stopped (T) bound=45.0s mode=crashdump\n[   14.251000] wdfeed: CRASHDUMP every device now resets 40s after this pet; crashing into the dump kernel (sysrq c)\n[   14.252000] sysrq: Trigger a crash\n";

    #[test]
    fn a_kdump_tools_dump_written_since_the_previous_boot_armed_is_named_with_its_fence() {
        let state = state_dir(Duration::from_secs(600));
        let crash = tempfile::tempdir().unwrap();
        // An old dump (before the previous boot armed) and the new one.
        for (stamp, ago, bytes) in [("202501010000", 3600, 10), ("202512072031", 60, 4 << 20)] {
            let d = crash.path().join(stamp);
            fs::create_dir(&d).unwrap();
            let dump = d.join(format!("dump.{stamp}"));
            fs::write(&dump, vec![0u8; bytes]).unwrap();
            fs::write(d.join(format!("dmesg.{stamp}")), DMESG).unwrap();
            for p in [&dump, &d] {
                set_age(p, Duration::from_secs(ago));
            }
        }
        let found = of_previous_boot(&armed(Some(crash.path())), state.path(), THIS)
            .unwrap()
            .unwrap();
        assert!(found.path.ends_with("202512072031/dump.202512072031"));
        assert_eq!(found.bytes, 4 << 20);
        let line = found.describe();
        assert!(
            line.starts_with("the previous boot was fenced (crashdump) at 14.3 s after it started (check=process fakehb evidence=fakehb pid 7 stopped (T)); a dump was saved at "),
            "{line}"
        );
        assert!(
            line.contains("dump.202512072031 (4.0 MiB, written 20"),
            "{line}"
        );
    }

    #[test]
    fn a_dump_the_dump_kernel_never_finished_is_named_incomplete() {
        let state = state_dir(Duration::from_secs(600));
        let crash = tempfile::tempdir().unwrap();
        let d = crash.path().join("202512072031");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("dump-incomplete"), vec![0u8; 1024]).unwrap();
        fs::write(d.join("dmesg.202512072031"), DMESG).unwrap();
        let found = of_previous_boot(&armed(Some(crash.path())), state.path(), THIS)
            .unwrap()
            .unwrap();
        assert!(!found.complete);
        let line = found.describe();
        assert!(
            line.starts_with("the previous boot was fenced (crashdump)"),
            "{line}"
        );
        assert!(line.contains("; an INCOMPLETE dump was left at "), "{line}");
        assert!(line.contains("the dump kernel never finished it"), "{line}");
    }

    #[test]
    fn a_dump_without_a_fence_line_is_a_crash_of_its_own() {
        let state = state_dir(Duration::from_secs(600));
        let crash = tempfile::tempdir().unwrap();
        fs::write(crash.path().join("vmcore"), "core").unwrap();
        let found = of_previous_boot(&armed(Some(crash.path())), state.path(), THIS)
            .unwrap()
            .unwrap();
        assert!(
            found.describe().starts_with(
                "the previous boot crashed (the kernel log in its dump names no wdfeed fence"
            ),
            "{}",
            found.describe()
        );
    }

    #[test]
    fn nothing_is_looked_for_without_crashdump_or_after_a_clean_stop_or_in_the_same_boot() {
        let state = state_dir(Duration::from_secs(600));
        let crash = tempfile::tempdir().unwrap();
        fs::write(crash.path().join("vmcore"), "core").unwrap();
        assert_eq!(of_previous_boot(&armed(None), state.path(), THIS), None);
        assert_eq!(
            of_previous_boot(&armed(Some(crash.path())), state.path(), PREV),
            None
        );
        let Previous::Record(mut r) = armed(Some(crash.path())) else {
            unreachable!()
        };
        r.state = RunState::StoppedCleanly;
        assert_eq!(
            of_previous_boot(&Previous::Record(r), state.path(), THIS),
            None
        );
        assert_eq!(
            of_previous_boot(&Previous::NoRecord, state.path(), THIS),
            None
        );
    }

    #[test]
    fn old_dumps_and_missing_directories_are_said_so() {
        let state = state_dir(Duration::from_secs(60));
        let crash = tempfile::tempdir().unwrap();
        let old = crash.path().join("vmcore");
        fs::write(&old, "core").unwrap();
        set_age(&old, Duration::from_secs(3600));
        let e = of_previous_boot(&armed(Some(crash.path())), state.path(), THIS)
            .unwrap()
            .unwrap_err();
        assert!(e.contains("holds no dump written since it armed"), "{e}");
        let e = of_previous_boot(&armed(Some(&crash.path().join("none"))), state.path(), THIS)
            .unwrap()
            .unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let state = state_dir(Duration::from_secs(600));
        let crash = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(elsewhere.path().join("vmcore"), "core").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), crash.path().join("202512072031")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("vmcore"), crash.path().join("vmcore"))
            .unwrap();
        let e = of_previous_boot(&armed(Some(crash.path())), state.path(), THIS)
            .unwrap()
            .unwrap_err();
        assert!(e.contains("holds no dump"), "{e}");
    }
}
