//! heartbeat (haresources, `crm off`) with DRBD. Three rules:
//! - heartbeat's `deadtime` (ha.cf) must be longer than B: the peer declares this node dead
//!   after deadtime and takes the resources over, and a sick node is only reset within B;
//! - `block-io` must not list a DRBD device: a frozen peer stalls a healthy Primary's drbd0
//!   (the drbd check watches DRBD);
//! - a `writable` mount on DRBD needs `when: {mounted: ...}`: it is mounted on the Primary
//!   alone, and the check fails (fences) the node it moves away from.
//!
//! A DRBD-backed mount is known from the init namespace's mountinfo (a device of DRBD's block
//! major 147, or a `/dev/drbd` source) and from heartbeat's haresources
//! (`Filesystem::/dev/drbd0::/srv/nfs::ext4`), so a standby, where it is not mounted, is told
//! too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{printable, read_file, Level, Report, Wdfeed};
use crate::config::notes;
use crate::health::checks::CheckSettings;
use crate::system::mountinfo;
use crate::units::format_duration;

/// DRBD's block device major (include/uapi/linux/major.h `DRBD_MAJOR`).
const DRBD_MAJOR: u32 = 147;

/// heartbeat's default deadtime (config.c: 30000 ms).
const DEFAULT_DEADTIME: Duration = Duration::from_secs(30);

pub(super) fn check(wd: &Wdfeed, report: &mut Report) {
    check_block_io(wd, report);
    let haresources = match read_file(wd.root, "/etc/ha.d/haresources") {
        Ok(text) => text,
        Err(e) => {
            report.add(Level::Warn, "heartbeat", format!("cannot read: {e}"), None);
            None
        }
    };
    check_drbd_mounts(wd, haresources.as_deref(), report);
    check_deadtime(wd, report);
    check_debugfs(wd, report);
}

/// The drbd check with `resources:` and `when: {drbd-primary: ...}` learn a resource's minors
/// from debugfs: without it they fail (closed) on a node where DRBD runs.
fn check_debugfs(wd: &Wdfeed, report: &mut Report) {
    use crate::health::condition::Condition;
    let names: Vec<&str> = wd
        .config
        .checks
        .iter()
        .filter(|c| {
            matches!(&c.settings, CheckSettings::Drbd(d) if d.resources.is_some())
                || matches!(c.when, Some(Condition::DrbdPrimary(_)))
        })
        .map(|c| c.name.as_str())
        .collect();
    if names.is_empty() || !super::exists(wd.root, "/proc/drbd") {
        return;
    }
    if !report.engines.contains(&"drbd") {
        report.engines.push("drbd");
    }
    if super::exists(wd.root, "/sys/kernel/debug/drbd/minors") {
        report.add(
            Level::Ok,
            "drbd",
            "DRBD names its resources in debugfs (/sys/kernel/debug/drbd/minors)".into(),
            None,
        );
    } else {
        report.add(
            Level::Warn,
            "drbd",
            format!(
                "{} name DRBD resources, but /sys/kernel/debug/drbd/minors is missing: \
                 without it a Primary cannot be told by name, and those checks fail",
                names.join(", ")
            ),
            Some(
                "mount debugfs at boot: `mount -t debugfs debugfs /sys/kernel/debug` \
                  (systemd's sys-kernel-debug.mount does it)"
                    .into(),
            ),
        );
    }
}

fn check_block_io(wd: &Wdfeed, report: &mut Report) {
    let (frozen, ko) = notes::drbd_gives_up_after();
    for d in notes::drbd_in_block_io(wd.config) {
        if !report.engines.contains(&"drbd") {
            report.engines.push("drbd");
        }
        let name = d.device;
        report.add(
            Level::Warn,
            "drbd",
            format!(
                "checks[{}] ({}) lists {name}, a DRBD device: when the peer freezes, the \
                 healthy Primary's {name} shows I/O that never completes until DRBD gives \
                 up on the peer ({} to {} by DRBD 8.4's defaults), and a stuck-after \
                 of {} fences this node for the peer's fault",
                d.index,
                d.check,
                format_duration(frozen),
                format_duration(ko),
                format_duration(d.stuck_after)
            ),
            Some(format!(
                "remove {name} from block-io's devices (its default list leaves DRBD out) \
                 and watch DRBD with `kind: drbd`"
            )),
        );
    }
}

/// Mount points on DRBD: (mount point, device), from mountinfo and haresources.
fn drbd_mounts(wd: &Wdfeed, haresources: Option<&str>) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    if let Ok(table) = mountinfo::read_init(wd.root) {
        for e in &table {
            if e.major == DRBD_MAJOR || e.source.starts_with("/dev/drbd") {
                out.push((PathBuf::from(&e.mount_point), e.source.clone()));
            }
        }
    }
    for line in haresources.unwrap_or_default().lines() {
        let line = line.split('#').next().unwrap_or_default();
        for res in line.split_whitespace() {
            // Filesystem::/dev/drbd0::/srv/nfs::ext4
            let mut parts = res.split("::");
            let (Some("Filesystem"), Some(dev), Some(mnt)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if dev.starts_with("/dev/drbd") && !out.iter().any(|(m, _)| m == Path::new(mnt)) {
                out.push((PathBuf::from(mnt), dev.to_string()));
            }
        }
    }
    out
}

fn check_drbd_mounts(wd: &Wdfeed, haresources: Option<&str>, report: &mut Report) {
    let on_drbd = drbd_mounts(wd, haresources);
    if on_drbd.is_empty() {
        return;
    }
    if !report.engines.contains(&"drbd") {
        report.engines.push("drbd");
    }
    for (i, c) in wd.config.checks.iter().enumerate() {
        let CheckSettings::Writable(w) = &c.settings else {
            continue;
        };
        for mount in &w.mounts {
            let Some((_, dev)) = on_drbd.iter().find(|(m, _)| m == mount) else {
                continue;
            };
            if c.when.is_none() {
                report.add(
                    Level::Warn,
                    "drbd",
                    format!(
                        "checks[{i}] ({}) watches {} on {dev} without `when:`: it is mounted on \
                         the DRBD Primary alone, so on the standby (or after a switchover) the \
                         check fails and fences the node",
                        c.name,
                        mount.display()
                    ),
                    Some(format!(
                        "give that check `when: {{mounted: {}}}` (one writable check per \
                         DRBD-backed mount)",
                        mount.display()
                    )),
                );
            } else {
                report.add(
                    Level::Ok,
                    "drbd",
                    format!(
                        "checks[{i}] ({}) watches {} on {dev} when {}",
                        c.name,
                        mount.display(),
                        c.when.as_ref().map(ToString::to_string).unwrap_or_default()
                    ),
                    None,
                );
            }
        }
    }
}

fn check_deadtime(wd: &Wdfeed, report: &mut Report) {
    let text = match read_file(wd.root, "/etc/ha.d/ha.cf") {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(e) => {
            report.engines.push("heartbeat");
            report.add(Level::Warn, "heartbeat", format!("cannot read: {e}"), None);
            return;
        }
    };
    report.engines.push("heartbeat");
    let (deadtime, from) = match directive(&text, "deadtime") {
        None => (DEFAULT_DEADTIME, "heartbeat's default".to_string()),
        Some((n, value)) => match heartbeat_time(value) {
            Some(d) => (d, format!("/etc/ha.d/ha.cf:{n}")),
            None => {
                report.add(
                    Level::Warn,
                    "heartbeat",
                    format!(
                        "/etc/ha.d/ha.cf:{n}: deadtime `{}` is not a time heartbeat reads \
                         (seconds, or milliseconds with `ms`)",
                        printable(value)
                    ),
                    None,
                );
                return;
            }
        },
    };
    let b = wd.bound.total;
    if deadtime <= b {
        report.add(
            Level::Warn,
            "heartbeat",
            format!(
                "deadtime {} ({from}) is not longer than wdfeed's fence bound {}: the peer \
                 declares this node dead and takes its resources over while a sick node may \
                 still be up, serving, until wdfeed resets it",
                format_duration(deadtime),
                wd.b()
            ),
            Some(format!(
                "set `deadtime` in /etc/ha.d/ha.cf above {} on both nodes (and initdead at \
                 least as long), or lower the bound (`wdfeed validate` shows its parts)",
                wd.b()
            )),
        );
    } else {
        report.add(
            Level::Ok,
            "heartbeat",
            format!(
                "deadtime {} ({from}) is longer than the fence bound {}",
                format_duration(deadtime),
                wd.b()
            ),
            None,
        );
    }
}

/// The value of the last `name` line of ha.cf, with its line number (heartbeat keeps the
/// last one).
fn directive<'a>(text: &'a str, name: &str) -> Option<(usize, &'a str)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.split('#').next().unwrap_or_default().trim();
            let (k, v) = l.split_once(char::is_whitespace)?;
            (k == name).then(|| (i + 1, v.trim()))
        })
        .last()
}

/// heartbeat's times (config.c `get_msec`): seconds, possibly with a fraction, or
/// milliseconds with `ms`.
fn heartbeat_time(value: &str) -> Option<Duration> {
    let (num, scale) = match value.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (value.strip_suffix('s').unwrap_or(value), 1.0),
    };
    let v: f64 = num.trim().parse().ok()?;
    (0.0..1e9)
        .contains(&v)
        .then(|| Duration::from_secs_f64(v * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_times_and_the_last_directive() {
        assert_eq!(heartbeat_time("10"), Some(Duration::from_secs(10)));
        assert_eq!(heartbeat_time("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(heartbeat_time("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(heartbeat_time("soon"), None);
        assert_eq!(heartbeat_time("-1"), None);
        let text = "keepalive 1\ndeadtime 10 # first\n# deadtime 99\ndeadtime\t20\nwarntime 5\n";
        assert_eq!(directive(text, "deadtime"), Some((4, "20")));
        assert_eq!(directive(text, "initdead"), None);
    }
}
