//! The rejoin delay in progress: its end on CLOCK_BOOTTIME, kept in the runtime directory (a
//! tmpfs, beside the fence record) so that a wdfeed restarted during the delay neither
//! starts it again nor skips it, and a new boot never sees it.
//!
//! ```text
//! wdfeed rejoin 1
//! boot <boot id>
//! until <seconds since boot>
//! delay <seconds>
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file's name in the runtime directory.
pub const FILE_NAME: &str = "rejoin";
const MAGIC: &str = "wdfeed rejoin 1";
/// The largest file read: the record is four short lines.
const MAX_BYTES: u64 = 1024;

/// A delay decided in this boot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pending {
    /// When READY=1 may go, on CLOCK_BOOTTIME.
    pub until: Duration,
    pub delay: Duration,
}

/// What the runtime directory says of a delay.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// No delay was decided in this boot.
    Nothing,
    ThisBoot(Pending),
    /// Names this boot but cannot be read: the delay runs again in full (the safe case).
    Damaged {
        why: String,
    },
}

pub fn path_in(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(FILE_NAME)
}

pub fn read(runtime_dir: &Path, boot_id: &str) -> Found {
    use crate::system::io::{read_capped, Links, ReadError};
    let text = match read_capped(&path_in(runtime_dir), MAX_BYTES, Links::Refuse) {
        Err(ReadError::NotFound) => return Found::Nothing,
        Err(ReadError::TooBig(max)) => {
            return Found::Damaged {
                why: format!("over {max} bytes"),
            }
        }
        Err(ReadError::Symlink) => {
            return Found::Damaged {
                why: "a symbolic link".into(),
            }
        }
        Err(ReadError::NotRegular) => {
            return Found::Damaged {
                why: "not a regular file".into(),
            }
        }
        Err(ReadError::Io(e)) => {
            return Found::Damaged {
                why: format!("unreadable: {e}"),
            }
        }
        Ok(t) => t,
    };
    let mut lines = text.lines();
    let damaged = |why: &str| Found::Damaged { why: why.into() };
    if lines.next() != Some(MAGIC) {
        return damaged("the first line is not `wdfeed rejoin 1`");
    }
    match lines.next().and_then(|l| l.strip_prefix("boot ")) {
        Some(b) if b == boot_id => {}
        // A file of another boot on a tmpfs cannot happen but through a copy: not this boot's.
        Some(b) if b.len() == boot_id.len() => return Found::Nothing,
        _ => return damaged("no whole `boot` line"),
    }
    let mut secs = |key: &str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64)
    };
    match (secs("until "), secs("delay ")) {
        (Some(until), Some(delay)) => Found::ThisBoot(Pending { until, delay }),
        _ => damaged("the `until` or `delay` line is missing or malformed"),
    }
}

/// Writes the delay of this boot, atomically, for root only, without fsync (a tmpfs).
pub fn write(runtime_dir: &Path, boot_id: &str, p: Pending) -> io::Result<()> {
    use crate::system::io::{write_atomically, Durability};
    let text = format!(
        "{MAGIC}\nboot {boot_id}\nuntil {:.3}\ndelay {:.3}\n",
        p.until.as_secs_f64(),
        p.delay.as_secs_f64()
    );
    write_atomically(
        &path_in(runtime_dir),
        text.as_bytes(),
        0o600,
        Durability::Unsynced,
    )
}
