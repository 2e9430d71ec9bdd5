//! Arming and disarming: what sysfs says of each device before wdfeed opens it, opening and
//! programming every device (or, in a dry run, only reading sysfs), the fence bound with
//! the timeouts the drivers granted, and the exit sequence that disarms or leaves armed.

use std::time::Duration;

use super::Options;
use crate::config::bound::{self, Bound};
use crate::config::{Config, OnExit};
use crate::device::flags::describe_bootstatus;
use crate::device::io::KernelIo;
use crate::device::{open, sysfs, takeover, Armed, DeviceError, Request, Watchdog};
use crate::system::Root;
use crate::time::deadline;
use crate::Failure;

/// What sysfs says of each device before wdfeed opens it: a watchdog already running is
/// taken over. Read within `limit`: a sysfs that hangs here would hang the open too, so it
/// stops start-up. Returns, per configured device, whether sysfs says `nowayout` (no close
/// ever stops it).
pub(super) fn note_device_states(
    config: &Config,
    root: &Root,
    limit: Duration,
) -> Result<Vec<bool>, Failure> {
    let (devices, root) = (config.devices.clone(), root.clone());
    let seen = deadline::within("sysfs", limit, move || {
        devices
            .iter()
            .map(|d| (d.path.clone(), sysfs::find(&root, &d.path)))
            .collect::<Vec<_>>()
    })
    .map_err(|e| {
        Failure::runtime(format!(
            "reading /sys/class/watchdog {e}: the watchdog driver or sysfs hangs; nothing was \
             armed. Find the hanging file (cat /proc/<wdfeed pid>/task/*/stack) and start \
             wdfeed again"
        ))
    })?;
    let nowayout = seen
        .iter()
        .map(|(_, w)| w.as_ref().and_then(|w| w.nowayout) == Some(true))
        .collect();
    for (path, seen) in seen {
        let Some(seen) = seen else {
            continue;
        };
        for note in takeover::notes(&seen) {
            match note {
                takeover::Note::Running => {
                    tracing::info!(device = %path.display(), state = "active", "{}", note.text())
                }
            }
        }
    }
    Ok(nowayout)
}

/// Arms every device and states the fence bound with what the drivers granted. `nowayout`
/// is what [`note_device_states`] found.
pub(super) fn arm_and_state_bound(
    config: &Config,
    opts: &Options,
    nowayout: &[bool],
) -> Result<(Vec<Box<dyn Armed>>, Bound), Failure> {
    let (devices, identities, granted) = arm(config, opts, nowayout)?;
    let bound = bound::compute(
        config,
        &identities,
        (!opts.dry_run).then_some(granted.as_slice()),
    );
    if bound
        .crashdump
        .as_ref()
        .is_some_and(|c| c.reset_by.is_none())
    {
        for d in devices {
            let _ = d.disarm();
        }
        return Err(Failure::runtime(
            "fence.mode crashdump: every device is softdog, a timer of the kernel that the crash ends: nothing would reset a dump kernel that hangs, and no bound could be stated. Add a hardware watchdog (iTCO_wdt, ipmi_watchdog, i6300esb in QEMU) or use `mode: watchdog`; nothing was armed".into(),
        ));
    }
    for line in bound.to_string().lines().skip(1) {
        tracing::info!("{}", line.trim());
    }
    if opts.dry_run {
        tracing::info!(fence_bound_s = %bound.seconds(), "dry run: no device opened (would arm)");
    } else {
        tracing::info!(fence_bound_s = %bound.seconds(), devices = devices.len(), "armed");
    }
    Ok((devices, bound))
}

type Armament = (Vec<Box<dyn Armed>>, Vec<Option<String>>, Vec<Duration>);

/// Opens and programs every device (or, in a dry run, reads what sysfs says of them). A
/// failure disarms the devices already armed: bad input leaves nothing armed.
fn arm(config: &Config, opts: &Options, nowayout: &[bool]) -> Result<Armament, Failure> {
    let mut devices: Vec<Box<dyn Armed>> = Vec::new();
    let mut identities = Vec::new();
    let mut granted = Vec::new();
    for (i, d) in config.devices.iter().enumerate() {
        if opts.dry_run {
            identities.push(sysfs::find(&opts.root, &d.path).and_then(|w| w.identity));
            granted.push(d.timeout);
            continue;
        }
        let want = Request {
            timeout: d.timeout,
            pretimeout: d.pretimeout,
            min_timeout: config.interval * 3,
        };
        let programmed = open::open_device(&opts.root, &d.path)
            .and_then(|file| Watchdog::program(&d.path, KernelIo::new(file), &want))
            .and_then(|dog| crashdump_timeout_taken(dog, config, opts));
        match programmed {
            Ok(mut dog) => {
                // nowayout: no close ever stops it (sysfs tells; GETSUPPORT does not).
                if nowayout.get(i) == Some(&true) {
                    dog.stays_armed_on_close = true;
                }
                if !dog.stays_armed_on_close {
                    tracing::warn!(device = %d.path.display(), identity = %dog.identity, "{}", takeover::STOPS_ON_CLOSE);
                }
                for note in &dog.notes {
                    tracing::warn!(device = %d.path.display(), "{note}");
                }
                if let Some(b) = dog.bootstatus {
                    tracing::info!(device = %d.path.display(), bootstatus = b, "{}", describe_bootstatus(b));
                }
                let options = match crate::device::flags::decode(dog.options) {
                    v if v.is_empty() => "none".to_string(),
                    v => v.join(","),
                };
                tracing::info!(device = %d.path.display(), identity = %dog.identity, timeout_s = dog.timeout.as_secs(), options = %options, stays_armed_on_close = dog.stays_armed_on_close, "device programmed");
                identities.push(Some(dog.identity.clone()));
                granted.push(dog.timeout);
                devices.push(Box::new(dog));
            }
            Err(e) => {
                for armed in devices {
                    let _ = armed.disarm();
                }
                return Err(Failure::device(e));
            }
        }
    }
    Ok((devices, identities, granted))
}

/// `mode: crashdump`: the device takes the crashdump timeout and gives its own back (the
/// fence's retime is known to work); a device that does not is disarmed and named.
fn crashdump_timeout_taken(
    mut dog: Watchdog<KernelIo>,
    config: &Config,
    opts: &Options,
) -> Result<Watchdog<KernelIo>, DeviceError> {
    let Some(c) = &config.fence.crashdump else {
        return Ok(dog);
    };
    let max = sysfs::find(&opts.root, dog.path()).and_then(|w| w.max_timeout);
    match crate::fence::crashdump::try_timeout(&mut dog, c.timeout, max) {
        Ok(()) => Ok(dog),
        Err(e) => {
            let _ = dog.disarm();
            Err(e)
        }
    }
}

/// The exit sequence: after a fence, never disarm; otherwise as `on-exit` says. True if
/// every device was disarmed.
pub(super) fn leave(
    devices: Vec<Box<dyn Armed>>,
    fenced: bool,
    on_exit: OnExit,
    dry_run: bool,
) -> bool {
    if dry_run {
        tracing::info!("dry run: nothing to disarm");
        return false;
    }
    if fenced {
        tracing::warn!("fenced: leaving every device armed; the hardware resets the node");
        return false;
    }
    match on_exit {
        OnExit::Disarm => {
            let mut all = true;
            for d in devices {
                let path = d.path().display().to_string();
                match d.disarm() {
                    Ok(()) => tracing::info!(device = %path, "disarmed"),
                    Err(e) => {
                        all = false;
                        tracing::error!(error = %e, "disarm failed")
                    }
                }
            }
            all
        }
        OnExit::KeepArmed => {
            for d in &devices {
                tracing::warn!(device = %d.path().display(), "left armed (on-exit: keep-armed): the node resets unless wdfeed is back within the timeout");
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn a_sysfs_read_that_hangs_stops_start_up_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path().join("sys/class/watchdog/watchdog0");
        std::fs::create_dir_all(&wd).unwrap();
        std::fs::write(wd.join("identity"), "i6300ESB timer\n").unwrap();
        let fifo = wd.join("state");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let config = crate::config::parse(
            "devices: [{path: /dev/watchdog0, timeout: 30s}]\n",
            "t.yaml",
        )
        .unwrap();
        let root = Root::at(dir.path());
        let e = note_device_states(&config, &root, Duration::from_millis(200)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("did not end within 0.2 s") && text.contains("nothing was armed"),
            "{text}"
        );
        // Let the thread left in open(2) go; with a plain file the notes are read.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo);
        std::fs::remove_file(&fifo).unwrap();
        std::fs::write(&fifo, "active\n").unwrap();
        note_device_states(&config, &root, Duration::from_secs(5)).unwrap();
    }
}
