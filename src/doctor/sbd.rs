//! sbd: is it running the way Pacemaker finds it (/run/sbd.pid whose executable is
//! /usr/sbin/sbd, else a process named sbd: `pcmk__locate_sbd`), which watchdog it arms and
//! with what timeout (its environment file: /etc/default/sbd on Debian, /etc/sysconfig/sbd
//! elsewhere; `-w` and `-1` in SBD_OPTS override it), and do those agree with wdfeed's
//! devices, its fence bound and its kill list.

use std::path::Path;

use super::{
    cib, devices, envfile, exists, read_file, sbd_process, sbd_timing, Level, Report, Wdfeed,
};
use crate::config::advice;
use crate::device::sysfs;

pub(super) const SBD_PIDFILE: &str = "/run/sbd.pid";
pub(super) const SBD_EXE: &str = "/usr/sbin/sbd";
const SBD_ENV_FILES: [&str; 2] = ["/etc/default/sbd", "/etc/sysconfig/sbd"];

/// What the doctor learned about sbd, for the sections after it.
pub(super) struct Sbd {
    pub(super) running: bool,
    /// The device sbd arms, as [`devices::key`] names it (None: no watchdog, /dev/null).
    pub(super) device: Option<String>,
    /// SBD_WATCHDOG_TIMEOUT in seconds, when it could be read (else sbd's default applies).
    pub(super) timeout: Option<u64>,
    pub(super) diskless: bool,
}

/// `-w DEV` / `-1 N` in SBD_OPTS override the environment (sbd parses argv after it).
fn sbd_opt(opts: &str, flag: &str) -> Option<String> {
    let mut words = opts.split_whitespace();
    while let Some(w) = words.next() {
        if w == flag {
            return words.next().map(str::to_string);
        }
        if let Some(v) = w.strip_prefix(flag) {
            if !v.is_empty() {
                return Some(v.to_string());
            }
        }
    }
    None
}

pub(super) fn yes(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "yes" | "y" | "true" | "on" | "1"
    )
}

pub(super) fn check(wd: &Wdfeed, report: &mut Report) -> Option<Sbd> {
    let root = wd.root;
    let (running, pidfile_seen) = sbd_process::sbd_running(root, report);
    let env_path = SBD_ENV_FILES.iter().find(|p| exists(root, p)).copied();
    let installed = exists(root, SBD_EXE);
    if !running && !pidfile_seen && env_path.is_none() && !installed {
        return None;
    }
    report.engines.push("sbd");

    let env = match env_path.map(|p| (p, read_file(root, p))) {
        Some((p, Ok(Some(text)))) => {
            let f = envfile::parse(&text);
            for bad in &f.bad_lines {
                report.add(
                    Level::Warn,
                    "sbd",
                    format!("{p}:{}: {}", bad.line, bad.what),
                    None,
                );
            }
            Some((p, f))
        }
        Some((p, Err(e))) => {
            report.add(
                Level::Warn,
                "sbd",
                format!(
                    "cannot read sbd's environment file: {e}; its device and timeout are \
                     not checked"
                ),
                Some(format!("make {p} a readable file (run doctor as root)")),
            );
            None
        }
        _ => None,
    };
    if !running {
        let how = match env_path {
            Some(p) => format!("configured ({p}) but not running"),
            None => format!("installed ({SBD_EXE}) but not running"),
        };
        report.add(
            Level::Warn,
            "sbd",
            format!(
                "{how}: with fencing-watchdog-timeout > 0, pacemaker-controld exits \
                 (\"configured but SBD not active\")"
            ),
            Some(
                "enable it with the cluster stack (`systemctl enable sbd`; it starts with \
                 corosync), or set fencing-watchdog-timeout to 0 and use another fence device"
                    .into(),
            ),
        );
    }
    let Some((env_name, env)) = env else {
        return Some(Sbd {
            running,
            device: None,
            timeout: None,
            diskless: true,
        });
    };
    let at = |key: &str| {
        env.get(key)
            .map(|e| format!("{env_name}:{}", e.line))
            .unwrap_or_else(|| "sbd's default".into())
    };
    let opts = env
        .get("SBD_OPTS")
        .map(|e| e.value.clone())
        .unwrap_or_default();

    if env.get("SBD_PACEMAKER").is_some_and(|e| !yes(&e.value)) {
        report.add(
            Level::Warn,
            "sbd",
            format!(
                "SBD_PACEMAKER is off ({}): sbd then watches neither quorum nor Pacemaker, \
                 so a node that lost its cluster does not fence itself, which is what the \
                 peer's fencing-watchdog-timeout assumes",
                at("SBD_PACEMAKER")
            ),
            Some("SBD_PACEMAKER=yes".into()),
        );
    }
    let diskless = env
        .get("SBD_DEVICE")
        .is_none_or(|e| e.value.trim().is_empty());
    if !diskless {
        report.add(
            Level::Note,
            "sbd",
            format!(
                "disk-based sbd (SBD_DEVICE, {}): Pacemaker fences through the disk and \
                 waits msgwait, which must be at least the fence bound ({}) too; doctor \
                 does not read the disk",
                at("SBD_DEVICE"),
                wd.b()
            ),
            None,
        );
    }

    // The device.
    let (dev_path, dev_src) = match sbd_opt(&opts, "-w") {
        Some(d) => (d, format!("-w in SBD_OPTS, {}", at("SBD_OPTS"))),
        None => (
            env.get("SBD_WATCHDOG_DEV")
                .map(|e| e.value.clone())
                .unwrap_or_else(|| "/dev/watchdog".into()),
            at("SBD_WATCHDOG_DEV"),
        ),
    };
    let mut device = None;
    if dev_path == "/dev/null" {
        report.add(
            Level::Warn,
            "sbd",
            format!(
                "sbd arms no watchdog (SBD_WATCHDOG_DEV=/dev/null, {dev_src}): a node whose \
                 sbd hangs is not reset by sbd"
            ),
            Some("give sbd a watchdog of its own: `modprobe softdog` and point SBD_WATCHDOG_DEV at it".into()),
        );
    } else {
        let key = devices::key(root, Path::new(&dev_path));
        let sys = sysfs::find(root, &devices::follow(root, Path::new(&dev_path)));
        if let Some(ours) = wd.uses(&key) {
            report.add(
                Level::Error,
                "sbd",
                format!(
                    "SBD_WATCHDOG_DEV={dev_path} ({dev_src}) is {key}, which wdfeed pets \
                     ({}): a watchdog has one opener, so sbd or wdfeed cannot open it, and \
                     without sbd pacemaker-controld exits",
                    ours.display()
                ),
                Some(
                    "give sbd its own watchdog: `modprobe softdog`, then SBD_WATCHDOG_DEV=/dev/watchdogN \
                     naming the softdog (`wdfeed info` lists the devices and their drivers)"
                        .into(),
                ),
            );
        } else if sys.is_none() && !exists(root, &dev_path) {
            report.add(
                Level::Warn,
                "sbd",
                format!("sbd's watchdog {dev_path} ({dev_src}) does not exist on this node"),
                Some("load its driver (`modprobe softdog`) or fix SBD_WATCHDOG_DEV".into()),
            );
        } else {
            let id = sys
                .as_ref()
                .and_then(|w| w.identity.clone())
                .map(|i| format!(", {i}"))
                .unwrap_or_default();
            report.add(
                Level::Ok,
                "sbd",
                format!("sbd arms {dev_path} ({key}{id}, {dev_src}), not one of wdfeed's devices"),
                None,
            );
        }
        device = Some(key);
        // The timeout against what the device accepts.
        if let (Some(w), Some(s)) = (sys.as_ref(), sbd_timeout(&env, &opts)) {
            if let Some(max) = w.max_timeout.filter(|&m| s > u64::from(m)) {
                report.add(
                    Level::Error,
                    "sbd",
                    format!(
                        "SBD_WATCHDOG_TIMEOUT={s} is more than {dev_path} accepts (max_timeout \
                         {max} s): sbd's WDIOC_SETTIMEOUT fails and sbd does not start"
                    ),
                    Some(format!(
                        "use a watchdog that accepts {s} s (softdog takes up to 65535 s)"
                    )),
                );
            }
        }
    }

    let timeout = sbd_timing::check(wd, &env, env_name, &opts, report);

    if !wd.kills("sbd") {
        report.add(
            Level::Warn,
            "wdfeed",
            "fence.kill does not list sbd: when wdfeed fences, sbd goes on petting its own \
             watchdog and the node's reset waits for wdfeed's hardware alone"
                .into(),
            Some(
                "fence.kill: [sbd, corosync] (SIGKILLing sbd is how Pacemaker \
                 itself makes sbd reset a node)"
                    .into(),
            ),
        );
    }
    Some(Sbd {
        running,
        device,
        timeout,
        diskless,
    })
}

/// SBD_WATCHDOG_TIMEOUT (or `-1 N` in SBD_OPTS), in whole seconds as sbd reads it.
pub(super) fn sbd_timeout(env: &envfile::EnvFile, opts: &str) -> Option<u64> {
    let text =
        sbd_opt(opts, "-1").or_else(|| env.get("SBD_WATCHDOG_TIMEOUT").map(|e| e.value.clone()));
    match text {
        None => Some(advice::SBD_DEFAULT_WATCHDOG_TIMEOUT),
        Some(t) => cib::parse_msec(&t)
            .and_then(|ms| u64::try_from(ms / 1000).ok())
            .filter(|&s| s >= 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbd_opts_override_the_environment() {
        assert_eq!(
            sbd_opt("-W -w /dev/watchdog1 -1 9", "-w").as_deref(),
            Some("/dev/watchdog1")
        );
        assert_eq!(
            sbd_opt("-w/dev/watchdog2", "-w").as_deref(),
            Some("/dev/watchdog2")
        );
        assert_eq!(sbd_opt("-W -1 9", "-1").as_deref(), Some("9"));
        assert_eq!(sbd_opt("", "-w"), None);
    }

    #[test]
    fn sbd_reads_its_timeout_in_whole_seconds() {
        let env = envfile::parse("SBD_WATCHDOG_TIMEOUT=9\n");
        assert_eq!(sbd_timeout(&env, ""), Some(9));
        assert_eq!(sbd_timeout(&env, "-1 12"), Some(12));
        assert_eq!(sbd_timeout(&envfile::parse(""), ""), Some(5));
        assert_eq!(
            sbd_timeout(&envfile::parse("SBD_WATCHDOG_TIMEOUT=10s\n"), ""),
            Some(10)
        );
        assert_eq!(
            sbd_timeout(&envfile::parse("SBD_WATCHDOG_TIMEOUT=soon\n"), ""),
            None
        );
        assert_eq!(
            sbd_timeout(&envfile::parse("SBD_WATCHDOG_TIMEOUT=0\n"), ""),
            None
        );
    }
}
