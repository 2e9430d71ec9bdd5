//! Rules on values no one means to write: periods too short to be real, NUL bytes, `..` in
//! paths (`probe-paths` refuses them itself), a device listed twice under two spellings, a relative program. Each refuses with a
//! rule the operator can read; the floors and bounds are documented in docs/CONFIG.md.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::tree::key_text;
use super::wording::MAX_PROBLEMS;
use super::Problem;
use crate::health::checks::{CheckSettings, KeyProblem};
use crate::units::format_duration;

/// The shortest `interval` and `every`: 10 ms is one jiffy at HZ=100, the coarsest timer tick a
/// kernel may have; shorter periods cannot be kept, and would spin the SCHED_FIFO feeder (or
/// a check thread) for nothing, the device timeout being at least 1 s.
pub const MIN_PERIOD: Duration = Duration::from_millis(10);

/// The shortest `stuck-after`: a request may sit in a busy disk's queue for hundreds of
/// milliseconds without anything being wrong.
pub const MIN_STUCK_AFTER: Duration = Duration::from_secs(1);

/// The longest `stuck-after`: ten minutes is well above what the SCSI layer itself waits
/// (a 30 s command timeout, retried five times); more only delays the fence (it is part of
/// the fence bound).
pub const MAX_STUCK_AFTER: Duration = Duration::from_secs(600);

/// The default `timeout` of a `command` check: 10 s, but never more than three quarters of
/// the check's deadline, so that the default always validates and a killed command is
/// reaped before the deadline.
pub fn default_command_timeout(deadline: Duration) -> Duration {
    Duration::from_secs(10).min(deadline * 3 / 4)
}

/// The message for a period below [`MIN_PERIOD`], or `None`.
pub fn period_too_short(d: Duration) -> Option<String> {
    (!d.is_zero() && d < MIN_PERIOD).then(|| {
        format!(
            "{} is below the floor of {}: no kernel timer is that fine, and the thread would spin; write e.g. `5s`",
            format_duration(d),
            format_duration(MIN_PERIOD)
        )
    })
}

/// `path` with `.` and `..` worked out and repeated slashes gone, without touching the
/// filesystem: two spellings of one device compare equal.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                if out.as_os_str().is_empty() || out.ends_with("..") {
                    out.push("..");
                } else if out != Path::new("/") {
                    out.pop();
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Rules on one check's settings that the check kinds leave to the config layer.
pub fn check_settings(settings: &CheckSettings) -> Vec<KeyProblem> {
    let mut out = Vec::new();
    let no_dotdot = |out: &mut Vec<KeyProblem>, key: String, path: &Path| {
        if path.components().any(|c| c == Component::ParentDir) {
            out.push(KeyProblem::new(
                key,
                format!(
                    "`{}` holds a `..` component: write the path without it, e.g. `{}`",
                    path.display(),
                    normalize(path).display()
                ),
            ));
        }
    };
    match settings {
        CheckSettings::BlockIo(s) => {
            let d = s.stuck_after.get();
            if !d.is_zero() && !(MIN_STUCK_AFTER..=MAX_STUCK_AFTER).contains(&d) {
                out.push(KeyProblem::new(
                    "stuck-after",
                    format!(
                        "{} is outside {}..{}: shorter counts a busy disk as stuck, longer only delays the fence (default 30s)",
                        format_duration(d),
                        format_duration(MIN_STUCK_AFTER),
                        format_duration(MAX_STUCK_AFTER)
                    ),
                ));
            }
        }
        CheckSettings::Process(s) => {
            for (key, path) in [("pidfile", &s.pidfile), ("fresh-file", &s.fresh_file)] {
                if let Some(p) = path {
                    no_dotdot(&mut out, key.into(), p);
                }
            }
        }
        CheckSettings::Command(s) => {
            if let Some(p) = s.argv.first().filter(|p| !p.is_empty()) {
                if !p.starts_with('/') {
                    out.push(KeyProblem::new(
                        "argv[0]",
                        format!(
                            "`{}` is not an absolute path: a relative program depends on the daemon's PATH and working directory; write e.g. `/usr/local/sbin/{}`",
                            p.escape_debug(),
                            p.rsplit('/').next().unwrap_or(p).escape_debug()
                        ),
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

/// Every string in the document (key or value) that holds a NUL byte: no path or name may.
/// The first [`MAX_PROBLEMS`] are listed; the path is written out only for those.
pub fn nul_bytes(doc: &serde_yaml::Value, problems: &mut Vec<Problem>) {
    let mut at = String::new();
    walk(doc, &mut at, problems);
}

fn walk(v: &serde_yaml::Value, at: &mut String, problems: &mut Vec<Problem>) {
    let refuse = |problems: &mut Vec<Problem>, key: &str, s: &str| {
        if problems.len() < MAX_PROBLEMS {
            problems.push(Problem {
                key: key.to_string(),
                message: format!(
                    "`{}` holds a NUL byte: no path, name or argument may",
                    s.escape_debug()
                ),
                location: None,
            })
        }
    };
    match v {
        serde_yaml::Value::String(s) if s.contains('\0') => refuse(problems, at, s),
        serde_yaml::Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                walk(item, at, problems);
                at.truncate(len);
            }
        }
        serde_yaml::Value::Mapping(map) => {
            for (k, item) in map {
                let name = key_text(k);
                let len = at.len();
                if len > 0 {
                    at.push('.');
                }
                at.push_str(&name);
                if name.contains('\0') {
                    refuse(problems, at, &name);
                }
                walk(item, at, problems);
                at.truncate(len);
            }
        }
        serde_yaml::Value::Tagged(t) => walk(&t.value, at, problems),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_works_out_dots_without_the_filesystem() {
        assert_eq!(
            normalize(Path::new("/dev/x/../watchdog0")),
            Path::new("/dev/watchdog0")
        );
        assert_eq!(
            normalize(Path::new("/dev//./watchdog0")),
            Path::new("/dev/watchdog0")
        );
        assert_eq!(normalize(Path::new("/../dev")), Path::new("/dev"));
    }

    #[test]
    fn the_default_command_timeout_fits_any_deadline() {
        assert_eq!(
            default_command_timeout(Duration::from_secs(10)),
            Duration::from_millis(7500)
        );
        assert_eq!(
            default_command_timeout(Duration::from_secs(60)),
            Duration::from_secs(10)
        );
    }
}
