//! What a device's state before wdfeed opens it means for the operator: a watchdog that
//! firmware or an earlier wdfeed left running is taken over, and a driver that stops on
//! every close cannot stay armed across a restart. Read from sysfs, so nothing here opens
//! (arms) a device. sysfs shows only what the driver told the kernel: a timer started
//! behind its back (softdog's `soft_active_on_boot=1` on 6.1) reads `inactive`.

use crate::config::OnExit;
use crate::device::flags::WDIOF_MAGICCLOSE;
use crate::device::sysfs::SysfsWatchdog;

/// Something worth a log line before the device is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// Already counting down (sysfs `active`): wdfeed's open takes it over. Until then the
    /// kernel feeds it if the driver reported it running, for at most
    /// `watchdog.open_timeout` where set.
    Running,
    /// No magic close: any close stops it, so `on-exit: keep-armed` cannot hold.
    StopsOnClose,
}

impl Note {
    pub fn text(&self) -> &'static str {
        match self {
            Note::Running => "already running before wdfeed opened it (started by firmware, or left armed by an earlier run with on-exit: keep-armed): wdfeed takes it over when every check has passed once",
            Note::StopsOnClose => "the driver has no magic close, so closing the device stops it: on-exit: keep-armed cannot keep it armed across a restart (a restart leaves the node unwatched until wdfeed is back)",
        }
    }
}

/// The notes for one device as sysfs shows it before wdfeed opens it.
pub fn notes(seen: &SysfsWatchdog, on_exit: OnExit) -> Vec<Note> {
    let mut out = Vec::new();
    if seen.state.as_deref() == Some("active") {
        out.push(Note::Running);
    }
    let magic_close = seen.options.map(|o| o & WDIOF_MAGICCLOSE != 0);
    if on_exit == OnExit::KeepArmed && magic_close == Some(false) {
        out.push(Note::StopsOnClose);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::flags::{WDIOF_KEEPALIVEPING, WDIOF_SETTIMEOUT};

    fn seen(state: Option<&str>, options: Option<u32>) -> SysfsWatchdog {
        SysfsWatchdog {
            name: "watchdog0".into(),
            state: state.map(str::to_string),
            options,
            ..Default::default()
        }
    }

    #[test]
    fn an_active_device_is_a_takeover() {
        let w = seen(Some("active"), Some(WDIOF_MAGICCLOSE));
        assert_eq!(notes(&w, OnExit::Disarm), vec![Note::Running]);
        assert!(notes(&seen(Some("inactive"), None), OnExit::Disarm).is_empty());
        assert!(notes(&seen(None, None), OnExit::Disarm).is_empty());
    }

    #[test]
    fn keep_armed_without_magic_close_is_called_out() {
        let no_magic = Some(WDIOF_SETTIMEOUT | WDIOF_KEEPALIVEPING);
        assert_eq!(
            notes(&seen(Some("inactive"), no_magic), OnExit::KeepArmed),
            vec![Note::StopsOnClose]
        );
        // disarm does not care, and a driver that has it, or that sysfs does not describe,
        // is not accused
        assert!(notes(&seen(Some("inactive"), no_magic), OnExit::Disarm).is_empty());
        assert!(notes(&seen(None, Some(WDIOF_MAGICCLOSE)), OnExit::KeepArmed).is_empty());
        assert!(notes(&seen(None, None), OnExit::KeepArmed).is_empty());
    }
}
