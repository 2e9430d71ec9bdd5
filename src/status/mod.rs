//! The daemon's state for operators: `wdfeed status` reads a JSON file that a status thread
//! (never the feeder) rewrites under /run when the state changes, and at least every
//! `refresh_s` (ten intervals, at most a minute) otherwise; the same summary goes to systemd
//! as STATUS=.
//!
//! The file's format and its reading and writing are here; [`report`] gathers the state
//! from the daemon's parts without ever waiting on the feeder, the fence or a check; and
//! [`publish`] is the thread that writes it.

mod file;
pub mod liveness;
mod prometheus;
mod publish;
mod report;
mod textfile;

pub use prometheus::render as render_prometheus;

pub use file::{read, write};
pub use publish::start;
pub use report::Reporter;
pub use textfile::Textfile;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the status file lives unless `--status-file` says otherwise.
pub const DEFAULT_STATUS_FILE: &str = "/run/wdfeed/status.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    /// The daemon's start time (clock ticks after boot, /proc/PID/stat field 22): with the
    /// pid, it tells the daemon from a process that reused its pid.
    #[serde(default)]
    pub start_time: Option<u64>,
    /// CLOCK_BOOTTIME when this was written, in seconds.
    pub written_at_s: f64,
    /// The daemon rewrites the file at once when its state changes (see
    /// [`Status::changed_from`]) and at least this often otherwise: a file older than this
    /// (and three intervals) is of a daemon that is stopped or stuck. Its figures are those
    /// of `written_at_s`. Absent: every interval (older daemons).
    #[serde(default)]
    pub refresh_s: Option<f64>,
    pub interval_s: f64,
    pub dry_run: bool,
    /// `armed` (or `dry-run`), or `fenced`.
    pub state: String,
    pub fence: Option<FenceStatus>,
    pub bound_s: f64,
    pub last_pet_age_s: Option<f64>,
    pub devices: Vec<DeviceStatus>,
    pub checks: Vec<CheckStatus>,
    pub lateness: LatenessStatus,
    /// The wdfeed version that wrote this.
    #[serde(default)]
    pub version: String,
    /// The node_exporter textfile, when `metrics.textfile` is set.
    #[serde(default)]
    pub textfile: Option<TextfileStatus>,
    /// While READY=1 waits for the rejoin delay (state `rejoin-wait`).
    #[serde(default)]
    pub rejoin: Option<RejoinStatus>,
    /// While READY=1 is held until `wdfeed rejoin-now` (state `rejoin-hold`).
    #[serde(default)]
    pub hold: Option<HoldStatus>,
    /// A maintenance pause in progress (`wdfeed pause`).
    #[serde(default)]
    pub pause: Option<PauseStatus>,
    /// The fence budget, and the boots that ended armed in a row when wdfeed started.
    #[serde(default)]
    pub budget: Option<BudgetStatus>,
    /// The crash dump the previous boot left (`fence.mode: crashdump`), found at start-up.
    #[serde(default)]
    pub previous_boot: Option<PreviousBootStatus>,
}

/// The previous boot's crash dump, and the fence that caused it when the dump's kernel log
/// names one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreviousBootStatus {
    /// "the previous boot was fenced (crashdump) at ...; a dump was saved at ...".
    pub cause: String,
    pub dump: PathBuf,
    pub dump_bytes: u64,
    /// False for a dump the dump kernel never finished (kdump-tools' `dump-incomplete`).
    #[serde(default = "complete")]
    pub complete: bool,
    /// The mode of the wdfeed fence that crashed it (`crashdump`); none for a crash of its own.
    pub fenced: Option<String>,
}

fn complete() -> bool {
    true
}

/// READY=1 held until an operator says `wdfeed rejoin-now`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldStatus {
    /// `fence-budget` or `kernel-command-line`.
    pub by: String,
    /// Why, with the times of the fences.
    pub why: String,
}

/// A maintenance pause in progress: failing checks do not fence until it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PauseStatus {
    /// Who asked (SO_PEERCRED of the request).
    pub uid: u32,
    pub pid: i32,
    pub reason: String,
    /// When it began, CLOCK_BOOTTIME seconds.
    pub since_s: f64,
    /// Seconds until it ends by itself.
    pub left_s: f64,
}

/// The fence budget (`rejoin-budget`) and the row it counted at start-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetStatus {
    /// Boots in a row that ended armed before READY=1 is held (0: off).
    pub fences: u32,
    pub within_s: f64,
    /// The boots that ended armed in a row within the window, oldest first.
    pub recent: Vec<EndedBoot>,
}

/// One boot that ended armed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndedBoot {
    /// Seconds since the epoch: the fence's time, or when the next boot found it.
    pub at: u64,
    pub boot: String,
    pub what: String,
}

/// The rejoin delay in progress: armed and petting, READY=1 held back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejoinStatus {
    /// Seconds until READY=1.
    pub wait_left_s: f64,
    pub delay_s: f64,
    /// What the state record (and the kernel) said of the previous boot.
    pub cause: String,
}

/// How the textfile writer fares: a problem is a warning, never a failed check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TextfileStatus {
    pub path: PathBuf,
    /// Why the last write failed, or why the file cannot be written at all.
    pub warning: Option<String>,
    /// Rounds skipped because the previous write had not finished (a hung disk).
    pub skipped_rounds: u64,
    pub writes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FenceStatus {
    pub check: String,
    pub evidence: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub path: PathBuf,
    pub identity: Option<String>,
    pub timeout_s: f64,
    /// The reset time after the last pet, less the time since it: an estimate, not the
    /// driver's GETTIMELEFT (the device belongs to the feeder alone).
    pub time_left_s: Option<f64>,
    /// Pets this device took since the daemon started.
    #[serde(default)]
    pub pets_total: u64,
    /// Pets this device refused (a failed pet is no pet: it does not count above, and the
    /// last pet's age does not restart).
    #[serde(default)]
    pub pet_failures_total: u64,
    /// Why the last refused pet failed.
    #[serde(default)]
    pub last_pet_error: Option<String>,
    /// Whether closing the device without the magic `V` leaves it armed (GETSUPPORT's
    /// WDIOF_MAGICCLOSE, IPMI, nowayout); `false` means a fenced wdfeed must never exit.
    #[serde(default)]
    pub stays_armed_on_close: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    pub healthy: Option<bool>,
    pub evidence: Option<String>,
    pub elapsed_ms: Option<f64>,
    /// Seconds until the lease runs out (negative: expired).
    pub lease_left_s: Option<f64>,
    pub last_run_age_s: Option<f64>,
    /// Failed runs in a row (0 after a pass).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The condition the check follows (`when:`), as written; `None` for a check without one.
    #[serde(default)]
    pub when: Option<String>,
    /// The condition did not hold at the last run: the check watched nothing and held its
    /// lease; `evidence` says why.
    #[serde(default)]
    pub idle: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatenessStatus {
    pub wakeups: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// The sum of every lateness, in seconds.
    #[serde(default)]
    pub sum_s: f64,
    /// Cumulative counts: wake-ups less late than `le_us` microseconds.
    #[serde(default)]
    pub buckets: Vec<LatenessBucket>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatenessBucket {
    pub le_us: u64,
    pub count: u64,
}

impl Status {
    /// How long after `written_at_s` a reader may still take the file for a running
    /// daemon's: the refresh period, plus three intervals of slack.
    pub fn fresh_for_s(&self) -> f64 {
        self.refresh_s.unwrap_or(self.interval_s) + 3.0 * self.interval_s
    }

    /// Whether `self` says something `before` did not, so the file must be rewritten now:
    /// the state, the fence, the rejoin wait, a device's failures, whether the feeder pets
    /// on time, a check's verdict, failures in a row, lease validity or (when failing) its
    /// evidence, the textfile's warnings. Ages, counters and the lateness figures move at
    /// every round and wait for the refresh: between writes they are as of `written_at_s`.
    pub fn changed_from(&self, before: &Status) -> bool {
        let pets_on_time = |s: &Status| s.last_pet_age_s.map(|a| a <= 2.0 * s.interval_s);
        let device = |d: &DeviceStatus| {
            (
                d.path.clone(),
                d.identity.clone(),
                d.pet_failures_total,
                d.last_pet_error.clone(),
                d.stays_armed_on_close,
            )
        };
        let check = |c: &CheckStatus| {
            (
                c.name.clone(),
                c.healthy,
                c.consecutive_failures,
                c.lease_left_s.map(|l| l >= 0.0),
                (c.healthy != Some(true)).then(|| c.evidence.clone()),
            )
        };
        let textfile = |s: &Status| {
            s.textfile
                .as_ref()
                .map(|t| (t.warning.clone(), t.skipped_rounds))
        };
        self.state != before.state
            || self.fence != before.fence
            || self.rejoin.as_ref().map(|r| &r.cause) != before.rejoin.as_ref().map(|r| &r.cause)
            || pets_on_time(self) != pets_on_time(before)
            || !self
                .devices
                .iter()
                .map(device)
                .eq(before.devices.iter().map(device))
            || !self
                .checks
                .iter()
                .map(check)
                .eq(before.checks.iter().map(check))
            || textfile(self) != textfile(before)
    }

    /// One line for systemd's STATUS= and the logs.
    pub fn summary(&self) -> String {
        if let Some(f) = &self.fence {
            return format!("FENCED by {}: {}", f.check, f.evidence);
        }
        let healthy = self
            .checks
            .iter()
            .filter(|c| c.healthy == Some(true))
            .count();
        let pet = self
            .last_pet_age_s
            .map(|a| format!("last pet {a:.1} s ago"))
            .unwrap_or_else(|| "not petted yet".into());
        let wait = self
            .rejoin
            .as_ref()
            .map(|r| {
                format!(
                    ", READY=1 held for the rejoin delay: {:.1} s left",
                    r.wait_left_s
                )
            })
            .unwrap_or_default();
        let idle = match self.checks.iter().filter(|c| c.idle).count() {
            0 => String::new(),
            n => format!(" ({n} idle: condition not holding)"),
        };
        let hold = self
            .hold
            .as_ref()
            .map(|h| format!(", READY=1 held ({}) until `wdfeed rejoin-now`", h.by))
            .unwrap_or_default();
        let pause = self
            .pause
            .as_ref()
            .map(|p| {
                format!(
                    ", PAUSED by uid {} for {:.0} s more: {}",
                    p.uid, p.left_s, p.reason
                )
            })
            .unwrap_or_default();
        format!(
            "{}: {healthy}/{} checks healthy{idle}, {pet}, fence bound {:.1} s{wait}{hold}{pause}",
            self.state,
            self.checks.len(),
            self.bound_s
        )
    }
}

/// Seconds with millisecond precision, for the file.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::file::STATUS_MODE;
    use super::*;
    use std::fs;

    #[test]
    fn an_oversized_status_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("status.json");
        fs::write(&big, vec![b' '; 1024 * 1024 + 1]).unwrap();
        let e = read(&big).unwrap_err();
        assert!(e.contains("over 1048576 bytes"), "{e}");
    }

    fn sample() -> Status {
        Status {
            pid: 42,
            start_time: Some(7),
            written_at_s: 100.0,
            refresh_s: Some(50.0),
            interval_s: 5.0,
            dry_run: false,
            state: "armed".into(),
            fence: None,
            bound_s: 45.0,
            last_pet_age_s: Some(1.25),
            devices: vec![],
            checks: vec![
                CheckStatus {
                    name: "writable /".into(),
                    healthy: Some(true),
                    evidence: None,
                    elapsed_ms: None,
                    lease_left_s: Some(10.0),
                    last_run_age_s: None,
                    consecutive_failures: 0,
                    when: None,
                    idle: false,
                },
                CheckStatus {
                    name: "block-io".into(),
                    healthy: Some(false),
                    evidence: None,
                    elapsed_ms: None,
                    lease_left_s: Some(2.0),
                    last_run_age_s: None,
                    consecutive_failures: 0,
                    when: None,
                    idle: false,
                },
            ],
            lateness: LatenessStatus::default(),
            version: "0.0.0".into(),
            textfile: None,
            rejoin: None,
            previous_boot: None,
            hold: None,
            pause: None,
            budget: None,
        }
    }

    #[test]
    fn writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run/wdfeed/status.json");
        write(&p, &sample()).unwrap();
        assert_eq!(read(&p).unwrap(), sample());
    }

    #[test]
    fn only_a_change_of_state_makes_the_file_due_before_its_refresh() {
        let before = sample();
        let mut s = sample();
        s.written_at_s += 7.0;
        s.last_pet_age_s = Some(0.4);
        s.lateness.max_us = 9000;
        s.checks[0].lease_left_s = Some(3.0);
        s.checks[0].evidence = Some("another healthy sample".into());
        assert!(
            !s.changed_from(&before),
            "ages, figures and a healthy evidence wait"
        );
        for change in [
            |s: &mut Status| s.state = "fenced".into(),
            |s: &mut Status| s.last_pet_age_s = Some(11.0),
            |s: &mut Status| s.checks[0].healthy = Some(false),
            |s: &mut Status| s.checks[1].evidence = Some("vda: stuck".into()),
            |s: &mut Status| s.checks[1].consecutive_failures = 1,
            |s: &mut Status| s.checks[1].lease_left_s = Some(-0.5),
        ] {
            let mut s = sample();
            change(&mut s);
            assert!(s.changed_from(&before), "{s:?}");
        }
        assert_eq!(before.fresh_for_s(), 65.0);
    }

    #[test]
    fn summary_says_what_an_operator_needs() {
        assert_eq!(
            sample().summary(),
            "armed: 1/2 checks healthy, last pet 1.2 s ago, fence bound 45.0 s"
        );
        let mut s = sample();
        s.checks[0].idle = true;
        s.checks[0].when = Some("mounted /srv".into());
        assert_eq!(
            s.summary(),
            "armed: 1/2 checks healthy (1 idle: condition not holding), last pet 1.2 s ago, \
             fence bound 45.0 s"
        );
        let mut s = sample();
        s.fence = Some(FenceStatus {
            check: "writable /".into(),
            evidence: "/ read-only".into(),
        });
        assert_eq!(s.summary(), "FENCED by writable /: / read-only");
        let mut s = sample();
        s.state = "rejoin-wait".into();
        s.rejoin = Some(RejoinStatus {
            wait_left_s: 7.25,
            delay_s: 14.0,
            cause: "the previous boot ended armed".into(),
        });
        assert!(
            s.summary().starts_with("rejoin-wait: ")
                && s.summary()
                    .ends_with("READY=1 held for the rejoin delay: 7.2 s left"),
            "{}",
            s.summary()
        );
    }

    #[test]
    fn summary_names_a_pause_and_a_hold() {
        let mut s = sample();
        s.pause = Some(PauseStatus {
            uid: 0,
            pid: 77,
            reason: "heartbeat upgrade".into(),
            since_s: 90.0,
            left_s: 540.4,
        });
        s.hold = Some(HoldStatus {
            by: "fence-budget".into(),
            why: "fence budget spent".into(),
        });
        assert!(
            s.summary().ends_with(
                ", READY=1 held (fence-budget) until `wdfeed rejoin-now`, PAUSED by uid 0 for 540 s more: heartbeat upgrade"
            ),
            "{}",
            s.summary()
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("status.json");
        write(&p, &s).unwrap();
        assert_eq!(read(&p).unwrap(), s, "the new fields read back");
    }

    #[test]
    fn a_missing_or_broken_file_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("status.json");
        assert!(read(&p).unwrap_err().contains("not running"));
        fs::write(&p, "{").unwrap();
        assert!(read(&p).unwrap_err().contains("not a wdfeed status file"));
    }

    #[test]
    fn the_file_is_root_only_and_a_planted_temporary_symlink_is_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("status.json");
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let tmp = dir
            .path()
            .join(format!(".status.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        write(&p, &sample()).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        assert!(!tmp.exists(), "the temporary file was renamed");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, STATUS_MODE, "{mode:o}");
        assert_eq!(read(&p).unwrap(), sample());
    }

    #[test]
    fn the_reader_refuses_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        write(&real, &sample()).unwrap();
        let link = dir.path().join("status.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = read(&link).unwrap_err();
        assert!(e.contains("is a symbolic link"), "{e}");
    }
}
