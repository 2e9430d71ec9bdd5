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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file's name in the runtime directory.
pub const FILE_NAME: &str = "rejoin";
const MAGIC: &str = "wdfeed rejoin 1";

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
    let text = match fs::read(path_in(runtime_dir)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Found::Nothing,
        Err(e) => {
            return Found::Damaged {
                why: format!("unreadable: {e}"),
            }
        }
        Ok(t) => t,
    };
    let text = String::from_utf8_lossy(&text[..text.len().min(1024)]).into_owned();
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

/// Writes the delay of this boot (a temporary file renamed over the old one).
pub fn write(runtime_dir: &Path, boot_id: &str, p: Pending) -> io::Result<()> {
    let path = path_in(runtime_dir);
    let tmp = runtime_dir.join(format!("{FILE_NAME}.tmp"));
    fs::write(
        &tmp,
        format!(
            "{MAGIC}\nboot {boot_id}\nuntil {:.3}\ndelay {:.3}\n",
            p.until.as_secs_f64(),
            p.delay.as_secs_f64()
        ),
    )?;
    fs::rename(&tmp, path)
}
