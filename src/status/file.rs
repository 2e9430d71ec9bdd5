//! The status file on disk: written atomically and for root only, read only if it is a
//! regular file of bounded size.

use std::fs;
use std::io;
use std::path::Path;

use super::Status;

/// The status file's mode: it names the checks and quotes their evidence, for root only.
pub const STATUS_MODE: u32 = 0o600;

/// Writes `status` to `path` atomically ([`crate::system::io::write_atomically`], mode
/// [`STATUS_MODE`], no fsync: it lives on tmpfs). Its directory is made when it is missing,
/// not looked for at every write.
pub fn write(path: &Path, status: &Status) -> io::Result<()> {
    use crate::system::io::{write_atomically, Durability};
    use std::os::unix::fs::DirBuilderExt;
    let text = serde_json::to_vec_pretty(status).map_err(io::Error::other)?;
    match write_atomically(path, &text, STATUS_MODE, Durability::Unsynced) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir)?;
            }
            write_atomically(path, &text, STATUS_MODE, Durability::Unsynced)
        }
        other => other,
    }
}

/// The largest status file read: the daemon writes a few KiB.
pub const MAX_STATUS_BYTES: u64 = 1024 * 1024;

/// Reads a status file: a regular file only (a FIFO or device would hang or never end), opened
/// without blocking, at most [`MAX_STATUS_BYTES`].
pub fn read(path: &Path) -> Result<Status, String> {
    let text = read_regular_file(path)?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a wdfeed status file: {e}", path.display()))
}

fn read_regular_file(path: &Path) -> Result<String, String> {
    use crate::system::io::{read_capped, Links, ReadError};
    read_capped(path, MAX_STATUS_BYTES, Links::Refuse).map_err(|e| match e {
        ReadError::Symlink => format!(
            "{} is a symbolic link: the daemon never writes one; give the --status-file the daemon writes",
            path.display()
        ),
        ReadError::NotFound => format!(
            "no status at {}: wdfeed is not running (or runs with another --status-file)",
            path.display()
        ),
        ReadError::NotRegular => format!(
            "{} is not a regular file (a FIFO, device or directory): give the --status-file the daemon writes",
            path.display()
        ),
        ReadError::TooBig(max) => format!(
            "{} is over {max} bytes: not a wdfeed status file",
            path.display()
        ),
        ReadError::Io(e) => format!("cannot read {}: {e}", path.display()),
    })
}
