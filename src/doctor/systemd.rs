//! systemd's runtime watchdog: PID 1 opens and pets a watchdog itself when
//! `RuntimeWatchdogSec=` is not `off`/`0` (systemd-system.conf(5), systemd 252: the device is
//! `WatchdogDevice=`, default /dev/watchdog0). On the running host `systemctl show` says what
//! PID 1 uses; under another root (or when systemctl cannot answer) the files say what it
//! would use: /etc/systemd/system.conf, then the drop-ins of every system.conf.d directory
//! sorted by file name, the last assignment winning.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::helper::run_with_timeout;
use super::sbd::Sbd;
use super::{devices, Level, Report, Wdfeed};
use crate::system::sysfile;
use crate::system::Root;

/// Drop-in directories, lowest precedence first (a file name in a later one replaces the
/// same name in an earlier one).
const DROPIN_DIRS: [&str; 4] = [
    "/usr/lib/systemd/system.conf.d",
    "/usr/local/lib/systemd/system.conf.d",
    "/run/systemd/system.conf.d",
    "/etc/systemd/system.conf.d",
];
const MAIN_FILE: &str = "/etc/systemd/system.conf";

/// What PID 1 does with a watchdog, and where that was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeWatchdog {
    /// The value as written (`off`, `0`, `30s`, `default`...; systemctl prints `0`, `infinity`).
    pub runtime_watchdog: String,
    pub runtime_source: String,
    /// `WatchdogDevice=`, when set.
    pub device: Option<String>,
    pub device_source: Option<String>,
}

impl RuntimeWatchdog {
    /// True unless the runtime watchdog is off.
    pub fn enabled(&self) -> bool {
        let v = self.runtime_watchdog.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("off") || v == "0s")
    }

    /// The device PID 1 opens: `WatchdogDevice=`, else systemd's default.
    pub fn device_path(&self) -> &str {
        match self.device.as_deref() {
            Some(d) if !d.is_empty() => d,
            _ => "/dev/watchdog0",
        }
    }
}

/// One `[Manager]` assignment found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Setting {
    key: String,
    value: String,
    line: usize,
}

fn manager_settings(text: &str) -> Vec<Setting> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].trim().to_string();
            continue;
        }
        if section != "Manager" {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push(Setting {
                key: k.trim().to_string(),
                value: v.trim().to_string(),
                line: i + 1,
            });
        }
    }
    out
}

/// The files systemd reads, in the order it applies them (node paths).
fn config_files(root: &Root) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from(MAIN_FILE)];
    let mut dropins: Vec<(String, PathBuf)> = Vec::new();
    for dir in DROPIN_DIRS {
        let Ok(entries) = fs::read_dir(root.follow(root.resolve(dir))) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".conf") {
                continue;
            }
            let node = Path::new(dir).join(&name);
            dropins.retain(|(n, _)| n != &name);
            dropins.push((name, node));
        }
    }
    dropins.sort_by(|a, b| a.0.cmp(&b.0));
    files.extend(dropins.into_iter().map(|(_, p)| p));
    files
}

/// What the files under `root` configure, and any file that could not be read. A drop-in
/// that is a symlink to /dev/null masks a vendor file and is skipped.
pub fn from_files(root: &Root) -> (RuntimeWatchdog, Vec<String>) {
    let mut found = RuntimeWatchdog {
        runtime_watchdog: "off".into(),
        runtime_source: "systemd's default: no system.conf sets it".into(),
        device: None,
        device_source: None,
    };
    let mut unreadable = Vec::new();
    for node in config_files(root) {
        let view = root.resolve(&node);
        if fs::read_link(&view).is_ok_and(|t| t == Path::new("/dev/null")) {
            continue;
        }
        if fs::symlink_metadata(&view).is_err() {
            continue;
        }
        let text = match sysfile::read_capped(root, &view, sysfile::SMALL) {
            Ok(t) => t,
            Err(e) => {
                unreadable.push(e.to_string());
                continue;
            }
        };
        for s in manager_settings(&text) {
            let source = format!("{}:{}", node.display(), s.line);
            match s.key.as_str() {
                "RuntimeWatchdogSec" => {
                    found.runtime_watchdog = s.value;
                    found.runtime_source = source;
                }
                "WatchdogDevice" => {
                    found.device = Some(s.value);
                    found.device_source = Some(source);
                }
                _ => {}
            }
        }
    }
    (found, unreadable)
}

/// Parses `systemctl show -p RuntimeWatchdogUSec -p WatchdogDevice`.
pub fn parse_show(text: &str) -> Option<RuntimeWatchdog> {
    let mut runtime = None;
    let mut device = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("RuntimeWatchdogUSec=") {
            runtime = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("WatchdogDevice=") {
            device = Some(v.trim().to_string());
        }
    }
    let source = "systemctl show (the running PID 1)".to_string();
    Some(RuntimeWatchdog {
        runtime_watchdog: runtime?,
        runtime_source: source.clone(),
        device_source: device.as_ref().map(|_| source),
        device: device.filter(|d| !d.is_empty()),
    })
}

/// The runtime watchdog on this node: from the running PID 1 when `root` is the host and
/// systemctl answers in time, else from the files. The second value says why systemctl
/// was not used, when it was asked.
pub fn find(root: &Root) -> (RuntimeWatchdog, Vec<String>, Option<String>) {
    let mut why_files = None;
    if root.is_host() {
        match run_with_timeout(
            &[
                "systemctl",
                "show",
                "--no-pager",
                "-p",
                "RuntimeWatchdogUSec",
                "-p",
                "WatchdogDevice",
            ],
            Duration::from_secs(5),
        ) {
            Ok(text) => match parse_show(&text) {
                Some(rw) => return (rw, Vec::new(), None),
                None => why_files = Some("systemctl show printed no RuntimeWatchdogUSec".into()),
            },
            Err(e) => why_files = Some(e),
        }
    }
    let (rw, unreadable) = from_files(root);
    (rw, unreadable, why_files)
}

fn cmdline_device(root: &Root) -> Option<String> {
    let text = sysfile::read_capped(root, &root.proc("cmdline"), sysfile::SMALL).ok()?;
    text.split_whitespace()
        .filter_map(|w| {
            w.strip_prefix("systemd.watchdog_device=")
                .or_else(|| w.strip_prefix("systemd.watchdog-device="))
        })
        .next_back()
        .map(str::to_string)
}

pub(super) fn check(wd: &Wdfeed, sbd: Option<&Sbd>, report: &mut Report) {
    let root = wd.root;
    let (rw, unreadable, why_files) = find(root);
    let partial = !unreadable.is_empty();
    for e in unreadable {
        report.add(
            Level::Warn,
            "systemd",
            format!("cannot read {e}; systemd's runtime watchdog may be set there"),
            None,
        );
    }
    if !rw.enabled() {
        let (level, as_far) = if partial {
            (Level::Note, " in the files that could be read")
        } else {
            (Level::Ok, "")
        };
        report.add(
            level,
            "systemd",
            format!(
                "systemd's runtime watchdog is off{as_far} (RuntimeWatchdogSec={}, {})",
                rw.runtime_watchdog, rw.runtime_source
            ),
            None,
        );
        return;
    }
    report.engines.push("systemd");
    if let Some(why) = why_files {
        report.add(
            Level::Note,
            "systemd",
            format!("read the files, not the running PID 1: {why}"),
            None,
        );
    }
    let (dev, dev_src) = match cmdline_device(root) {
        Some(d) => (
            d,
            "systemd.watchdog_device= on the kernel command line".to_string(),
        ),
        None => (
            rw.device_path().to_string(),
            rw.device_source
                .clone()
                .unwrap_or_else(|| "systemd's default".into()),
        ),
    };
    let key = devices::key(root, Path::new(&dev));
    let what = format!(
        "PID 1 opens and pets {dev} ({key}, {dev_src}; RuntimeWatchdogSec={}, {})",
        rw.runtime_watchdog, rw.runtime_source
    );
    let fix = "RuntimeWatchdogSec=off in a drop-in /etc/systemd/system.conf.d/wdfeed.conf \
               ([Manager]), then reboot (or `systemctl daemon-reexec`)"
        .to_string();
    if let Some(ours) = wd.uses(&key) {
        report.add(
            Level::Error,
            "systemd",
            format!(
                "{what}, which wdfeed pets ({}): PID 1 holds it from boot and wdfeed cannot \
                 open it",
                ours.display()
            ),
            Some(fix),
        );
    } else if sbd.and_then(|s| s.device.as_deref()) == Some(key.as_str()) {
        report.add(
            Level::Error,
            "systemd",
            format!("{what}, which sbd arms: sbd cannot open it and does not start"),
            Some(fix),
        );
    } else {
        report.add(
            Level::Warn,
            "systemd",
            format!("{what}: a third watchdog user beside wdfeed"),
            Some(fix),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_in_overrides_the_main_file_and_later_names_win() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let w = |p: &str, t: &str| {
            let f = root.resolve(p);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(f, t).unwrap();
        };
        w(
            "/etc/systemd/system.conf",
            "[Manager]\n#RuntimeWatchdogSec=off\nRuntimeWatchdogSec=off\n",
        );
        w(
            "/usr/lib/systemd/system.conf.d/10-vendor.conf",
            "[Manager]\nRuntimeWatchdogSec=30s\nWatchdogDevice=/dev/watchdog1\n",
        );
        w(
            "/etc/systemd/system.conf.d/05-local.conf",
            "[Manager]\nRuntimeWatchdogSec=1min\n",
        );
        let (rw, bad) = from_files(&root);
        assert!(bad.is_empty(), "{bad:?}");
        // 10-vendor sorts after 05-local: its 30s wins.
        assert_eq!(rw.runtime_watchdog, "30s");
        assert_eq!(
            rw.runtime_source,
            "/usr/lib/systemd/system.conf.d/10-vendor.conf:2"
        );
        assert!(rw.enabled());
        assert_eq!(rw.device_path(), "/dev/watchdog1");

        // The same name under /etc replaces the vendor file.
        w("/etc/systemd/system.conf.d/10-vendor.conf", "[Manager]\n");
        let (rw, _) = from_files(&root);
        assert_eq!(rw.runtime_watchdog, "1min");
        assert_eq!(rw.device, None);
        assert_eq!(rw.device_path(), "/dev/watchdog0");
    }

    #[test]
    fn other_sections_and_missing_files_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let (rw, bad) = from_files(&root);
        assert!(!rw.enabled() && bad.is_empty());
        let f = root.resolve("/etc/systemd/system.conf");
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, "[Other]\nRuntimeWatchdogSec=30s\n").unwrap();
        assert!(!from_files(&root).0.enabled());
    }

    #[test]
    fn an_unreadable_file_is_reported_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        // A directory where a file should be: read fails whoever runs the test.
        fs::create_dir_all(root.resolve("/etc/systemd/system.conf")).unwrap();
        let (_, bad) = from_files(&root);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with("/etc/systemd/system.conf: "), "{bad:?}");
    }

    #[test]
    fn systemctl_show_output() {
        let rw = parse_show("RuntimeWatchdogUSec=0\nWatchdogDevice=\n").unwrap();
        assert!(!rw.enabled());
        assert_eq!(rw.device, None);
        let rw =
            parse_show("RuntimeWatchdogUSec=infinity\nWatchdogDevice=/dev/watchdog1\n").unwrap();
        assert!(rw.enabled(), "`default` shows as infinity and is on");
        assert_eq!(rw.device_path(), "/dev/watchdog1");
        assert!(parse_show("Foo=1\n").is_none());
    }
}
