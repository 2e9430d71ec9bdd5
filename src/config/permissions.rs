//! Who can change the config: whoever can write `watchdog.yaml` or replace it in its
//! directory can make wdfeed fence this node. As sshd's StrictModes: a config, or its
//! directory, that a non-root user other than the file's owner can write is refused; one
//! owned by a non-root user (other than the one running wdfeed) is warned about. `--allow-unsafe-config` (or
//! `WDFEED_ALLOW_UNSAFE_CONFIG=1`) turns the refusal into a warning.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that allows an unsafe config, as `--allow-unsafe-config`.
pub const ALLOW_ENV: &str = "WDFEED_ALLOW_UNSAFE_CONFIG";

static ALLOW: AtomicBool = AtomicBool::new(false);

/// Set once at start-up from `--allow-unsafe-config` / [`ALLOW_ENV`].
pub fn allow_unsafe(allow: bool) {
    ALLOW.store(allow, Ordering::Relaxed);
}

fn allowed() -> bool {
    ALLOW.load(Ordering::Relaxed)
}

/// What the permissions of `path` and its directory say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Reasons to refuse the config (empty when it is safe, or when allowed anyway).
    pub refuse: Vec<String>,
    pub warnings: Vec<String>,
}

/// Looks at the owner and mode of `path` and of its directory.
pub fn judge(path: &Path) -> Verdict {
    let mut v = Verdict::default();
    let Ok(file) = std::fs::metadata(path) else {
        return v;
    };
    let dir_path = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let mut unsafe_reasons = Vec::new();
    if let Some(why) = writable_by_others(&file) {
        unsafe_reasons.push(format!(
            "{} is {why} (mode {:o}): whoever can write it can fence this node; run `chmod go-w {}`",
            path.display(),
            file.mode() & 0o7777,
            path.display()
        ));
    }
    if let Some((dir_path, dir)) = dir_path
        .as_ref()
        .and_then(|d| Some((d, std::fs::metadata(d).ok()?)))
    {
        if let Some(why) = writable_by_others(&dir) {
            unsafe_reasons.push(format!(
                "its directory {} is {why} (mode {:o}): whoever can write it can replace the config; run `chmod go-w {}`",
                dir_path.display(),
                dir.mode() & 0o7777,
                dir_path.display()
            ));
        } else if dir.uid() != 0 && dir.uid() != file.uid() {
            unsafe_reasons.push(format!(
                "its directory {} is owned by uid {}, who can replace the config; run `chown root {}`",
                dir_path.display(),
                dir.uid(),
                dir_path.display()
            ));
        }
    }
    let me = crate::ffi::effective_uid();
    if file.uid() != 0 && file.uid() != me {
        v.warnings.push(format!(
            "{} is owned by uid {}, not root: that user can fence this node; run `chown root {}`",
            path.display(),
            file.uid(),
            path.display()
        ));
    }
    if allowed() {
        v.warnings.extend(
            unsafe_reasons
                .into_iter()
                .map(|r| format!("{r} (allowed by --allow-unsafe-config)")),
        );
    } else {
        v.refuse = unsafe_reasons
            .into_iter()
            .map(|r| {
                format!("{r}; or start with --allow-unsafe-config ({ALLOW_ENV}=1) to accept it")
            })
            .collect();
    }
    v
}

/// Why users other than the owner and root may write this file or directory: the "others"
/// write bit, or the group write bit of a group other than root's.
fn writable_by_others(m: &std::fs::Metadata) -> Option<&'static str> {
    let mode = m.mode();
    if mode & 0o002 != 0 {
        Some("writable by every user")
    } else if mode & 0o020 != 0 && m.gid() != 0 {
        Some("writable by its group")
    } else {
        None
    }
}
