//! Opening a watchdog device, and saying why it failed: who holds it (EBUSY), what to fix
//! for permissions (EACCES), how to get a device at all (ENOENT).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use nix::errno::Errno;

use super::watchdog::DeviceError;
use crate::system::process_table;
use crate::system::Root;

/// Opens `node_path` (as the node names it) for writing. Opening arms the watchdog.
pub fn open_device(root: &Root, node_path: &Path) -> Result<File, DeviceError> {
    let view = root.follow(root.resolve(node_path));
    let err =
        |errno: Option<Errno>, detail: String| DeviceError::new(node_path, "open", errno, detail);
    match fs::metadata(&view) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(err(Some(Errno::ENOENT), NO_DEVICE_HINT.into()));
        }
        Ok(m) if !m.file_type().is_char_device() => {
            return Err(err(None, "not a character device; a watchdog is /dev/watchdog or /dev/watchdogN (see `wdfeed info`)".into()));
        }
        _ => {}
    }
    OpenOptions::new().write(true).open(&view).map_err(|e| {
        let errno = e.raw_os_error().map(Errno::from_raw);
        let detail = match errno {
            Some(Errno::EBUSY) => busy_hint(root, node_path),
            Some(Errno::EACCES) | Some(Errno::EPERM) => "run wdfeed as root, or give its user the group the udev rule in udev/ sets on /dev/watchdog*".into(),
            Some(Errno::ENOENT) | Some(Errno::ENODEV) | Some(Errno::ENXIO) => NO_DEVICE_HINT.into(),
            _ => String::new(),
        };
        err(errno, detail)
    })
}

/// What to do when there is no watchdog at all.
pub const NO_DEVICE_HINT: &str = "no such watchdog device: load a driver (softdog in a VM, iTCO_wdt on Intel boards, ipmi_watchdog with a BMC, i6300esb for QEMU's emulated card) and see `wdfeed info`";

/// Names whoever holds `node_path` open, from `<root>/proc/*/fd`.
pub fn busy_hint(root: &Root, node_path: &Path) -> String {
    match holder(root, node_path) {
        Some((1, name)) => format!("held by pid 1 ({name}): is RuntimeWatchdogSec= set in /etc/systemd/system.conf? Turn it off, or let one of the two feed the device"),
        Some((pid, name)) => format!("held by pid {pid} ({name}): stop it first (another watchdog daemon?); a watchdog device has one user at a time"),
        None => "another process holds it open (not found in /proc: a container or a kernel user?); a watchdog device has one user at a time".into(),
    }
}

/// The first process with an open descriptor on `node_path`, and its name.
pub fn holder(root: &Root, node_path: &Path) -> Option<(i32, String)> {
    let me = nix::unistd::getpid().as_raw();
    for pid in process_table::pids(root) {
        if pid == me && root.is_host() {
            continue;
        }
        let Ok(fds) = fs::read_dir(root.follow(root.proc(format!("{pid}/fd")))) else {
            continue;
        };
        let holds = fds
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .any(|target| target == node_path);
        if holds {
            let name = process_table::stat(root, pid)
                .map(|s| s.comm)
                .unwrap_or_else(|| "unknown".into());
            return Some((pid, name));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_with_holder(pid: i32, comm: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!("proc/{pid}"));
        fs::create_dir_all(p.join("fd")).unwrap();
        fs::write(p.join("stat"), format!("{pid} ({comm}) S 0 0 0")).unwrap();
        std::os::unix::fs::symlink("/dev/null", p.join("fd/0")).unwrap();
        std::os::unix::fs::symlink("/dev/watchdog0", p.join("fd/3")).unwrap();
        dir
    }

    #[test]
    fn busy_names_systemd_and_runtime_watchdog() {
        let dir = fixture_with_holder(1, "systemd");
        let hint = busy_hint(&Root::at(dir.path()), Path::new("/dev/watchdog0"));
        assert!(
            hint.starts_with("held by pid 1 (systemd): is RuntimeWatchdogSec= set"),
            "{hint}"
        );
    }

    #[test]
    fn busy_names_any_other_holder() {
        let dir = fixture_with_holder(4242, "watchdog");
        let hint = busy_hint(&Root::at(dir.path()), Path::new("/dev/watchdog0"));
        assert!(hint.starts_with("held by pid 4242 (watchdog)"), "{hint}");
        let none = busy_hint(&Root::at(dir.path()), Path::new("/dev/watchdog1"));
        assert!(none.contains("not found in /proc"), "{none}");
    }

    #[test]
    fn a_missing_device_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_device(&Root::at(dir.path()), Path::new("/dev/watchdog0")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("cannot open watchdog /dev/watchdog0"),
            "{text}"
        );
        assert!(text.contains("softdog"), "{text}");
    }

    #[test]
    fn a_regular_file_is_not_opened_as_a_watchdog() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("dev")).unwrap();
        fs::write(dir.path().join("dev/watchdog0"), "").unwrap();
        let e = open_device(&Root::at(dir.path()), Path::new("/dev/watchdog0")).unwrap_err();
        assert!(e.to_string().contains("not a character device"), "{e}");
    }
}
