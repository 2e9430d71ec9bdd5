//! `wdfeed rejoin-now`: ends a rejoin delay or a hold in progress (READY=1 goes at once):
//! SIGUSR2 to the pid in the status file, if that wdfeed says it is in state `rejoin-wait` or
//! `rejoin-hold`.

use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::status;
use crate::Failure;

/// SIGUSR2 to a wdfeed in state `rejoin-wait` or `rejoin-hold`.
pub fn run(status_file: &Path) -> Result<(), Failure> {
    let s = status::read(status_file).map_err(Failure::runtime)?;
    if s.state != "rejoin-wait" && s.state != "rejoin-hold" {
        return Err(Failure::runtime(format!(
            "wdfeed pid {} holds no rejoin delay or hold (state {} in {}): nothing to end",
            s.pid,
            s.state,
            status_file.display()
        )));
    }
    let pid = super::daemon_pid(status_file, s.pid)?;
    kill(Pid::from_raw(pid), Signal::SIGUSR2).map_err(|e| {
        Failure::runtime(format!(
            "cannot signal wdfeed pid {pid} (from {}): {}",
            status_file.display(),
            e.desc()
        ))
    })?;
    let what = if s.state == "rejoin-hold" {
        "hold"
    } else {
        "delay"
    };
    outln!("sent SIGUSR2 to wdfeed pid {pid}: the rejoin {what} ends now and READY=1 goes; units ordered after wdfeed (the cluster stack) start");
    Ok(())
}
