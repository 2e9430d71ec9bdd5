//! Standard output for every command. A write never panics: the first failure is kept, later
//! writes are skipped, and [`finish`] turns it into the exit code. A reader that went away
//! (EPIPE, `wdfeed check | head -1`) ends the command quietly with its own exit code; any other
//! failure (ENOSPC on /dev/full) is one error line and exit 1.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Mutex;

/// The first write error on standard output, if any.
static FAILED: Mutex<Option<io::Error>> = Mutex::new(None);

/// Writes `args` to standard output, or remembers why it could not.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_some() {
        return;
    }
    if let Err(e) = io::stdout().lock().write_fmt(args) {
        *failed = Some(e);
    }
}

/// Flushes standard output and returns the exit code: `code` when every write succeeded or the
/// reader went away, else 1 after one line on standard error that says what failed.
pub fn finish(code: ExitCode) -> ExitCode {
    let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_none() {
        if let Err(e) = io::stdout().lock().flush() {
            *failed = Some(e);
        }
    }
    match failed.take() {
        None => code,
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => code,
        Some(e) => {
            eprintln!("wdfeed: cannot write to standard output: {e}; check where it is redirected (a full disk?)");
            ExitCode::from(1)
        }
    }
}
