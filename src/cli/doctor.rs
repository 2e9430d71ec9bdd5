//! `wdfeed doctor`: runs the doctor (`crate::doctor`), an executable of its own installed
//! beside wdfeed's, in place of this process. The daemon's binary so carries none of the
//! doctor's code: mlockall locks every page a daemon maps.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Failure;

/// The doctor's file name, beside wdfeed's own executable.
pub const DOCTOR_EXE: &str = "wdfeed-doctor";

/// Replaces this process with `wdfeed-doctor` and the options it needs; returns only when
/// that cannot be done.
pub fn run(
    root: &Path,
    allow_unsafe_config: bool,
    log_level: &str,
    config: Option<&Path>,
) -> Result<(), Failure> {
    let exe = doctor_path()?;
    let mut cmd = Command::new(&exe);
    cmd.arg("--root")
        .arg(root)
        .arg("--log-level")
        .arg(log_level);
    if allow_unsafe_config {
        cmd.arg("--allow-unsafe-config");
    }
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let e = cmd.exec();
    Err(Failure::runtime(format!(
        "cannot run the doctor {}: {e}; it is installed beside wdfeed (the Debian package \
         does; by hand: install -m 755 target/release/{DOCTOR_EXE} {})",
        exe.display(),
        exe.parent().unwrap_or(Path::new("/usr/sbin")).display()
    )))
}

/// `wdfeed-doctor` in the directory of the running executable.
fn doctor_path() -> Result<PathBuf, Failure> {
    let me = std::env::current_exe().map_err(|e| {
        Failure::runtime(format!(
            "cannot find the doctor: where wdfeed's own executable is ({e}) is unknown; run {DOCTOR_EXE} directly"
        ))
    })?;
    Ok(me.with_file_name(DOCTOR_EXE))
}
