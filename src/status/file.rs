//! The status file on disk: written atomically and for root only, read only if it is a
//! regular file of bounded size.

use std::fs;
use std::io;
use std::path::Path;

use super::Status;

/// The status file's mode: it names the checks and quotes their evidence, for root only.
pub const STATUS_MODE: u32 = 0o600;

/// Writes `status` to `path` atomically: a new temporary file in the same directory
/// (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode [`STATUS_MODE`]: never one planted there, never through
/// a symlink), renamed over it.
pub fn write(path: &Path, status: &Status) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let text = serde_json::to_vec_pretty(status).map_err(io::Error::other)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the status file path names no file"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(STATUS_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    // The directory is made when it is missing, not looked for at every write.
    let made_dir = || -> io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)?;
        }
        Ok(())
    };
    let open = || match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            made_dir()?;
            open()
        }
        other => other,
    };
    let mut file = match open() {
        // Left by an earlier run of this pid, or planted: unlink never follows a symlink.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp)?;
            open()?
        }
        other => other?,
    };
    let written = file.write_all(&text);
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
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
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.kind() {
            _ if e.raw_os_error() == Some(libc::ELOOP) => format!(
                "{} is a symbolic link: the daemon never writes one; give the --status-file the daemon writes",
                path.display()
            ),
            io::ErrorKind::NotFound => format!(
                "no status at {}: wdfeed is not running (or runs with another --status-file)",
                path.display()
            ),
            _ => format!("cannot read {}: {e}", path.display()),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file (a FIFO, device or directory): give the --status-file the daemon writes",
            path.display()
        ));
    }
    let mut text = String::new();
    file.take(MAX_STATUS_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_STATUS_BYTES {
        return Err(format!(
            "{} is over {MAX_STATUS_BYTES} bytes: not a wdfeed status file",
            path.display()
        ));
    }
    Ok(text)
}
