//! What a device's state before wdfeed opens it means for the operator: a watchdog that
//! firmware or an earlier wdfeed left running is taken over. Read from sysfs, so nothing
//! here opens (arms) a device. sysfs shows only what the driver told the kernel: a timer
//! started behind its back (softdog's `soft_active_on_boot=1` on 6.1) reads `inactive`.
//! Whether a close stops the device is judged at arming, from GETSUPPORT
//! ([`super::watchdog::stays_armed_on_close`]), and [`STOPS_ON_CLOSE`] says what it means.

use crate::device::sysfs::SysfsWatchdog;

/// The warning for a device that any close without the magic `V` stops, whatever
/// `on-exit` says.
pub const STOPS_ON_CLOSE: &str = "the driver has no magic close (GETSUPPORT lacks WDIOF_MAGICCLOSE): any close of the device stops it, so a wdfeed that exited after a fence would leave the node running. wdfeed therefore never exits once fenced (`wdfeed stop --fenced` is refused), and on-exit: keep-armed cannot hold across a restart; prefer a driver with magic close, or load it with nowayout=1";

/// Something worth a log line before the device is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// Already counting down (sysfs `active`): wdfeed's open takes it over. Until then the
    /// kernel feeds it if the driver reported it running, for at most
    /// `watchdog.open_timeout` where set.
    Running,
}

impl Note {
    pub fn text(&self) -> &'static str {
        match self {
            Note::Running => "already running before wdfeed opened it (started by firmware, or left armed by an earlier run with on-exit: keep-armed): wdfeed takes it over when every check has passed once",
        }
    }
}

/// The notes for one device as sysfs shows it before wdfeed opens it.
pub fn notes(seen: &SysfsWatchdog) -> Vec<Note> {
    let mut out = Vec::new();
    if seen.state.as_deref() == Some("active") {
        out.push(Note::Running);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::flags::WDIOF_MAGICCLOSE;

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
        assert_eq!(notes(&w), vec![Note::Running]);
        assert!(notes(&seen(Some("inactive"), None)).is_empty());
        assert!(notes(&seen(None, None)).is_empty());
    }
}
