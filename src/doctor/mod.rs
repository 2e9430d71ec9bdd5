//! `wdfeed doctor`: the HA engines and other watchdog users on this node, weighed against
//! the wdfeed config in use, with what is wrong and how to fix it. docs/PACEMAKER.md has the
//! sources behind every rule.
//!
//! One module per engine, each adding findings to one [`Report`]: [`sbd`], [`pacemaker`]
//! (the CIB on disk), [`corosync`], [`systemd`] (the runtime watchdog), [`others`]
//! (keepalived, processes holding a watchdog open), [`heartbeat_drbd`] (heartbeat's deadtime,
//! DRBD in block-io, DRBD-backed mounts watched without `when:`). The parsers of other engines' files are
//! modules of their own ([`envfile`], [`corosync_conf`], [`cib`]), and [`devices`] says
//! which watchdog a path names.
//!
//! Every file is read under `--root`. It is a command, not the daemon: it may run
//! `systemctl` (on the real root only, under a timeout). A file of another engine that
//! cannot be read or parsed is reported with its path; it never stops the rest. Exit 0
//! unless a finding is an error (a conflict that breaks wdfeed, sbd or Pacemaker): then 1.
//!
//! It is an executable of its own, `wdfeed-doctor` (`src/bin/wdfeed-doctor.rs`), which
//! `wdfeed doctor` runs: the daemon's binary neither carries nor locks its code (it forks,
//! and it follows other projects' versions), and the doctor's own command line is the
//! options `wdfeed doctor` passes on.

mod cib;
mod corosync;
mod corosync_conf;
mod devices;
mod envfile;
mod heartbeat_drbd;
mod helper;
mod others;
mod pacemaker;
mod sbd;
mod sbd_process;
mod sbd_timing;
mod systemd;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use crate::config::advice;
use crate::config::bound::{self, Bound};
use crate::config::{self, Config};
use crate::device::sysfs;
use crate::system::{sysfile, Root};
use crate::Failure;

/// How bad one finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Note,
    Warn,
    Error,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok   ",
            Level::Note => "note ",
            Level::Warn => "warn ",
            Level::Error => "error",
        }
    }
}

struct Finding {
    level: Level,
    topic: &'static str,
    text: String,
    fix: Option<String>,
}

#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
    /// Engines or watchdog users found; none means there is nothing to weigh.
    engines: Vec<&'static str>,
}

impl Report {
    fn add(&mut self, level: Level, topic: &'static str, text: String, fix: Option<String>) {
        self.findings.push(Finding {
            level,
            topic,
            text,
            fix,
        });
    }

    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

/// What every section needs to know about wdfeed itself.
struct Wdfeed<'a> {
    root: &'a Root,
    config: &'a Config,
    bound: Bound,
    /// wdfeed's devices as [`devices::key`] names them, with the path the config gives.
    devices: Vec<(String, PathBuf)>,
}

impl Wdfeed<'_> {
    fn uses(&self, key: &str) -> Option<&Path> {
        self.devices
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, p)| p.as_path())
    }

    fn kills(&self, name: &str) -> bool {
        self.config.fence.kill.iter().any(|k| k.name == name)
    }

    fn b(&self) -> String {
        format!("{} s", self.bound.seconds())
    }
}

/// A text file of another engine: `Ok(None)` when it does not exist.
fn read_file(root: &Root, node_path: &str) -> Result<Option<String>, String> {
    let view = root.resolve(node_path);
    if fs::symlink_metadata(&view).is_err() {
        return Ok(None);
    }
    sysfile::read_capped(root, &view, 4 * 1024 * 1024)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// At most 40 characters of `text` with control characters shown as `?`, for messages
/// that quote a line of a file that may hold anything.
fn printable(text: &str) -> String {
    sysfile::shorten(text)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn exists(root: &Root, node_path: &str) -> bool {
    fs::symlink_metadata(root.resolve(node_path)).is_ok()
}

/// What `wdfeed doctor` passes on: the global options it was given and its own.
#[derive(Parser, Debug)]
#[command(
    name = "wdfeed-doctor",
    version,
    about = "wdfeed doctor: the node's HA engines and watchdog users against the wdfeed config"
)]
struct Args {
    /// Read every file under DIR (as `wdfeed --root`).
    #[arg(long, env = "WDFEED_ROOT", value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// As `wdfeed --allow-unsafe-config`.
    #[arg(long, env = "WDFEED_ALLOW_UNSAFE_CONFIG", value_parser = clap::builder::FalseyValueParser::new())]
    allow_unsafe_config: bool,
    /// error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: String,
    /// The config file (default: as `run`).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The doctor's executable: parses what `wdfeed doctor` passed on, runs, and returns the
/// exit code `wdfeed doctor` gives.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let _log = match crate::logging::init(&args.log_level) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("wdfeed: {e}");
            return ExitCode::from(Failure::CONFIG);
        }
    };
    crate::config::permissions::allow_unsafe(args.allow_unsafe_config);
    let result = run(&Root::at(&args.root), args.config.as_deref());
    crate::cli::exit(result)
}

fn run(root: &Root, config_path: Option<&Path>) -> Result<(), Failure> {
    let loaded = config::load(config_path).map_err(Failure::config)?;
    let identities = crate::device::sysfs::identities(
        root,
        loaded.config.devices.iter().map(|d| d.path.as_path()),
    );
    let wd = Wdfeed {
        root,
        config: &loaded.config,
        bound: bound::compute(&loaded.config, &identities, None),
        devices: loaded
            .config
            .devices
            .iter()
            .map(|d| (devices::key(root, &d.path), d.path.clone()))
            .collect(),
    };
    let mut report = Report::default();
    let sbd = sbd::check(&wd, &mut report);
    pacemaker::check(&wd, sbd.as_ref(), &mut report);
    corosync::check(&wd, sbd.as_ref(), &mut report);
    systemd::check(&wd, sbd.as_ref(), &mut report);
    others::check_keepalived(&wd, &mut report);
    others::check_holders(&wd, &mut report);
    heartbeat_drbd::check(&wd, &mut report);
    crate::cli::out::write(format_args!(
        "{}",
        render(&wd, &loaded.origin.name(), sbd.as_ref(), &report)
    ));
    match report.count(Level::Error) {
        0 => Ok(()),
        n => Err(Failure::runtime(format!(
            "doctor found {n} error{}: see the lines marked `error` and their fix",
            if n == 1 { "" } else { "s" }
        ))),
    }
}

fn render(wd: &Wdfeed, origin: &str, sbd: Option<&sbd::Sbd>, report: &Report) -> String {
    let mut out = String::new();
    let devs: Vec<String> = wd
        .devices
        .iter()
        .zip(&wd.config.devices)
        .map(|((key, path), d)| {
            let id = sysfs::find(wd.root, &d.path)
                .and_then(|w| w.identity)
                .map(|i| format!(", {i}"))
                .unwrap_or_default();
            format!("{} ({key}{id})", path.display())
        })
        .collect();
    let _ = writeln!(
        out,
        "wdfeed doctor: config {origin}, fence bound {}, devices {}",
        wd.b(),
        devs.join(", ")
    );
    if report.engines.is_empty() {
        let _ = writeln!(
            out,
            "no HA engine and no other watchdog user found on this node: no sbd, Pacemaker, \
             corosync, keepalived, heartbeat or DRBD, systemd's runtime watchdog is off, and \
             no process holds a watchdog open. Nothing to change."
        );
        for f in report.findings.iter().filter(|f| f.level > Level::Ok) {
            render_one(&mut out, f);
        }
        return out;
    }
    for f in &report.findings {
        render_one(&mut out, f);
    }
    if sbd.is_some() {
        let s = sbd
            .and_then(|s| s.timeout)
            .unwrap_or(advice::SBD_DEFAULT_WATCHDOG_TIMEOUT);
        let rec = advice::pacemaker(wd.bound.total);
        let _ = writeln!(out, "for this node: {}", rec.line());
        if s > rec.sbd_watchdog_timeout {
            let _ = writeln!(
                out,
                "  (keeping SBD_WATCHDOG_TIMEOUT={s}: fencing-watchdog-timeout={}s)",
                advice::fencing_watchdog_timeout(wd.bound.total, s)
            );
        }
    }
    let _ = writeln!(
        out,
        "summary: {} error(s), {} warning(s), {} note(s)",
        report.count(Level::Error),
        report.count(Level::Warn),
        report.count(Level::Note)
    );
    out
}

fn render_one(out: &mut String, f: &Finding) {
    let _ = writeln!(out, "{} {}: {}", f.level.label(), f.topic, f.text);
    if let Some(fix) = &f.fix {
        let _ = writeln!(out, "      fix: {fix}");
    }
}
