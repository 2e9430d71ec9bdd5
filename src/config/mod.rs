//! `watchdog.yaml`: reading it strictly ([`raw`]), locating every problem in the text
//! ([`locate`]), and turning it into a checked [`Config`] that the daemon can trust.
//! Every problem is collected, not just the first ([`parse`] says what stops early), and
//! each names `file:line:col`, the key, and what to do.

pub(crate) mod advice;
pub(crate) mod bound;
mod check_keys;
pub(crate) mod crashdump;
mod depth;
mod entries;
mod input_rules;
mod kill_entry;
mod locate;
pub(crate) mod notes;
mod parse;
pub mod permissions;
mod raw;
mod rules;
mod tree;
mod wording;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::health::checks::CheckSettings;
use crate::health::condition::Condition;
use crate::health::conditional::Conditional;
use crate::health::{Check, Schedule};
use crate::system::Root;
pub use kill_entry::KillEntry;
use locate::Location;
pub use parse::parse;
pub use raw::{FenceMode, OnExit};

/// Where the daemon looks for its config when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/wdfeed/watchdog.yaml";

/// The config used when [`DEFAULT_PATH`] does not exist.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

/// The name problems in the embedded default are reported under.
pub const EMBEDDED_NAME: &str = "<embedded default>";

/// A checked config: every rule holds, every default is filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub devices: Vec<DeviceConfig>,
    pub interval: Duration,
    pub on_exit: OnExit,
    /// `rejoin-delay`: how long READY=1 waits on a boot after one that ended armed without a
    /// clean stop; `None`: the delay recorded by the config that was running (its B).
    pub rejoin_delay: Option<Duration>,
    /// `max-pause`: the longest maintenance pause an operator may ask for.
    pub max_pause: Duration,
    /// `rejoin-budget`: boots in a row that ended armed before READY=1 waits for an operator.
    pub rejoin_budget: crate::rejoin::budget::Budget,
    pub fence: FenceConfig,
    pub checks: Vec<CheckConfig>,
    /// The node_exporter textfile-collector file the daemon rewrites (`metrics.textfile`).
    pub metrics_textfile: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceConfig {
    pub path: PathBuf,
    pub timeout: Duration,
    pub pretimeout: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FenceConfig {
    pub mode: FenceMode,
    /// The processes the fence SIGKILLs, each with its owner.
    pub kill: Vec<KillEntry>,
    pub stall_threshold: Duration,
    /// Interfaces the fence takes down, in order.
    pub isolate: Vec<String>,
    /// The file the status thread keeps at 0 (healthy) or 1 (handing over, fenced).
    pub handover_file: Option<PathBuf>,
    /// `mode: crashdump` only: its timeout and where dumps go.
    pub crashdump: Option<crashdump::CrashdumpConfig>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckConfig {
    /// The name used in logs and tables (the `label` key, or the check's own label).
    pub name: String,
    pub schedule: Schedule,
    pub settings: CheckSettings,
    /// `when:`: the check is idle (its lease held) while this does not hold.
    pub when: Option<Condition>,
}

impl CheckConfig {
    /// Prepares the check to run on the node seen through `root`. A check with `when:` is
    /// prepared anew each time its condition turns true, so here it only gets its watcher.
    pub fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        match &self.when {
            None => self.settings.build(root),
            Some(c) => Ok(Box::new(Conditional::new(
                c.clone(),
                self.settings.clone(),
                root,
            ))),
        }
    }

    /// The longest a fault can go unseen by this check before its lease is gone: the time
    /// the fault takes to become visible to a run, rounded up to whole `every` periods
    /// (runs come only every `every`, and a D state or a stuck queue is timed from the
    /// first run that saw it), then `tolerance + 1` runs of `every + deadline` each.
    pub fn worst_detection(&self) -> Duration {
        self.schedule.in_whole_periods(self.settings.time_to_see())
            + self.schedule.worst_detection()
    }
}

/// The device timeout when the config gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One thing wrong with a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The key's path, e.g. `checks[1].stuck-after`; empty for the document as a whole.
    pub key: String,
    pub message: String,
    pub location: Option<Location>,
}

/// Everything wrong with one config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the operator named it, or [`EMBEDDED_NAME`].
    pub source: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.source)?;
            if let Some(loc) = p.location {
                write!(f, ":{}:{}", loc.line, loc.column)?;
            }
            if p.key.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": `{}`: {}", p.key, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Which config text was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Embedded,
}

impl Origin {
    pub fn name(&self) -> String {
        match self {
            Origin::File(p) => p.display().to_string(),
            Origin::Embedded => EMBEDDED_NAME.to_string(),
        }
    }
}

/// A loaded config and what an operator should hear about it even though it is valid.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub origin: Origin,
    pub warnings: Vec<String>,
}

/// Reads the config named by `-c`, else [`DEFAULT_PATH`] if it exists, else the embedded
/// default.
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
    let (origin, text) = match path {
        Some(p) => (Origin::File(p.to_path_buf()), read(p)?),
        None if Path::new(DEFAULT_PATH).exists() => {
            let p = Path::new(DEFAULT_PATH);
            (Origin::File(p.to_path_buf()), read(p)?)
        }
        None => (Origin::Embedded, EMBEDDED_DEFAULT.to_string()),
    };
    let config = parse(&text, &origin.name())?;
    let mut warnings = Vec::new();
    if let Origin::File(p) = &origin {
        let v = permissions::judge(p);
        if !v.refuse.is_empty() {
            return Err(ConfigError {
                source: origin.name(),
                problems: v
                    .refuse
                    .into_iter()
                    .map(|message| Problem {
                        key: String::new(),
                        message,
                        location: None,
                    })
                    .collect(),
            });
        }
        warnings.extend(v.warnings);
    }
    warnings.extend(notes::warnings(&config));
    if config.checks.is_empty() {
        warnings.push(
            "no checks configured: wdfeed pets while it runs and only its freeze guard can fence"
                .into(),
        );
    }
    Ok(Loaded {
        config,
        origin,
        warnings,
    })
}

/// The largest config file read: a real one is a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<String, ConfigError> {
    read_regular_file(path).map_err(|message| ConfigError {
        source: path.display().to_string(),
        problems: vec![Problem {
            key: String::new(),
            message,
            location: None,
        }],
    })
}

/// Reads the config: a regular file only (a FIFO or device would hang or never end), opened
/// without blocking, at most [`MAX_CONFIG_BYTES`]. A symlink is followed (a config managed
/// elsewhere and linked into /etc is common); the permission rules judge what it points at.
fn read_regular_file(path: &Path) -> Result<String, String> {
    use crate::system::io::{read_capped, Links, ReadError};
    read_capped(path, MAX_CONFIG_BYTES, Links::Follow).map_err(|e| match e {
        ReadError::NotFound => "cannot read the config: No such file or directory (os error 2) (check the path; without -c wdfeed uses /etc/wdfeed/watchdog.yaml or its embedded default)".to_string(),
        ReadError::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            format!("cannot read the config: {e} (run as root or make the file readable)")
        }
        ReadError::Io(e) => format!("cannot read the config: {e}"),
        ReadError::NotRegular => "the config is not a regular file (a FIFO, device or directory): give the path of a YAML file".into(),
        ReadError::TooBig(max) => format!(
            "the config is over the limit of {max} bytes: give the path of a watchdog.yaml"
        ),
        ReadError::Symlink => "the config path loops through symbolic links (ELOOP): give the path of a YAML file".into(),
    })
}

#[cfg(test)]
mod read_tests {
    use super::read_regular_file;

    #[test]
    fn fifo_device_directory_and_huge_files_are_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_regular_file(&fifo).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read_regular_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read_regular_file(dir.path()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; 1024 * 1024 + 1]).unwrap();
        let e = read_regular_file(&big).unwrap_err();
        assert!(e.contains("over the limit"), "{e}");
        let ok = dir.path().join("ok.yaml");
        std::fs::write(&ok, "interval: 1s\n").unwrap();
        assert_eq!(read_regular_file(&ok).unwrap(), "interval: 1s\n");
    }
}

#[cfg(test)]
mod tests;
