//! Where the fence's one line goes first: `/dev/kmsg`, and pstore's `/dev/pmsg0` where the
//! platform has it (that one survives the reset), both opened at start-up so that the fence
//! opens nothing. Only the fence writes them, with one write(2) each: no lock.

use std::fs::{File, OpenOptions};
use std::io::Write;

use crate::system::Root;

/// The kernel logs the fence line goes to; none in a dry run or under a fixture root.
#[derive(Default)]
pub struct KernelLog {
    files: Vec<File>,
}

impl KernelLog {
    /// Opens the kernel logs of the node `root` shows, unless this is a dry run or a fixture.
    pub fn prepare(root: &Root, dry_run: bool) -> Self {
        if dry_run || !root.is_host() {
            return KernelLog::default();
        }
        let mut files = Vec::new();
        match OpenOptions::new().write(true).open(root.dev("kmsg")) {
            Ok(f) => files.push(f),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open /dev/kmsg: the fence reason will reach stderr only")
            }
        }
        // pstore's message log survives the reset where the platform keeps it.
        if let Ok(f) = OpenOptions::new().write(true).open(root.dev("pmsg0")) {
            tracing::info!("fence reasons also go to pstore (/dev/pmsg0)");
            files.push(f);
        }
        KernelLog { files }
    }

    /// A log that is this file (tests).
    #[cfg(test)]
    pub fn to_file(file: File) -> Self {
        KernelLog { files: vec![file] }
    }

    /// Writes `line` to every log, one write(2) each (a kmsg record is one write); a
    /// failure is ignored (the log gets the line too). Allocates nothing.
    pub fn write(&self, line: &[u8]) {
        for mut f in &self.files {
            let _ = f.write_all(line);
        }
    }
}
