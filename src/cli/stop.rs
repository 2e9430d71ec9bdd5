//! `wdfeed stop --fenced`: ends a fenced wdfeed (one that fenced, or one held by the fence
//! record of this boot), which ignores SIGTERM. It sends SIGUSR1 to the pid in the status
//! file; the devices stay armed and the fence record stays, so the node still resets and no
//! wdfeed arms again in this boot.

use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::status;
use crate::Failure;

pub fn run(status_file: &Path, fenced: bool) -> Result<(), Failure> {
    if !fenced {
        return Err(Failure::runtime(
            "a healthy wdfeed stops on SIGTERM (systemctl stop wdfeed); `wdfeed stop --fenced` is only for a fenced one, which ignores SIGTERM"
                .into(),
        ));
    }
    let s = status::read(status_file).map_err(Failure::runtime)?;
    if !s.state.starts_with("fenced") {
        return Err(Failure::runtime(format!(
            "wdfeed pid {} is not fenced (state {} in {}): stop it with SIGTERM (systemctl stop wdfeed)",
            s.pid,
            s.state,
            status_file.display()
        )));
    }
    let stops: Vec<String> = s
        .devices
        .iter()
        .filter(|d| d.stays_armed_on_close == Some(false))
        .map(|d| d.path.display().to_string())
        .collect();
    if !stops.is_empty() {
        return Err(Failure::runtime(format!(
            "refused: {} {} no magic close, so the close at wdfeed's exit would stop {} and the fenced node would never reset; the fenced wdfeed (pid {}) stays until the hardware resets the node",
            stops.join(", "),
            if stops.len() == 1 { "has" } else { "have" },
            if stops.len() == 1 { "it" } else { "them" },
            s.pid
        )));
    }
    let pid = super::daemon_pid(status_file, s.pid)?;
    kill(Pid::from_raw(pid), Signal::SIGUSR1).map_err(|e| {
        Failure::runtime(format!(
            "cannot signal wdfeed pid {pid} (from {}): {}",
            status_file.display(),
            e.desc()
        ))
    })?;
    outln!("sent SIGUSR1 to the fenced wdfeed pid {pid}: it exits, the devices stay armed, and the fence record keeps every new wdfeed from arming until the reset");
    Ok(())
}
