//! `block-io`: the node's disks are not stuck.
//!
//! A disk is stuck when requests are in flight and none has completed for `stuck-after`: the
//! state a dead NBD server, a lost multipath or a hung controller leaves behind (the
//! writers sit in D state, nothing errors). That is judged by [`judge`], a pure function of
//! the last sample that showed progress, the current sample, and the time between them.
//! Slow but progressing I/O is healthy. A SCSI disk whose `device/state` is not `running`
//! (`offline`, `blocked`, `transport-offline`...) fails at once; NVMe controllers must be `live`.
//!
//! Reads `/proc/diskstats` (every layout: 14, 18, 20 fields), `/sys/block/<dev>/inflight`
//! and `/sys/block/<dev>/device/state`. What it cannot see: one request stuck while others
//! complete on the same disk, a virtio-scsi disk whose SCSI timeout never fires (its state
//! stays `running`: only the stuck rule catches it), and I/O that completes with errors
//! (that is `writable`'s probe).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{CheckKind, KeyProblem};
use crate::health::{Check, Verdict};
use crate::system::diskstats::{self, DiskStat};
use crate::system::{blockdev, Root};
use crate::units::HumanDuration;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Disks by kernel name (`vda`, `sda`, `nvme0n1`, `dm-0`; `/dev/` may be written before it).
    /// Default: every disk under /sys/block except loop, ram and zram devices.
    #[serde(default)]
    pub devices: Option<Vec<String>>,
    /// How long requests may sit in flight with no completion before the disk counts as stuck.
    #[serde(default = "default_stuck_after")]
    pub stuck_after: HumanDuration,
}

fn default_stuck_after() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            devices: None,
            stuck_after: default_stuck_after(),
        }
    }
}

impl CheckKind for Settings {
    const KIND: &'static str = "block-io";

    fn label(&self) -> String {
        match &self.devices {
            None => "block-io all disks".into(),
            Some(d) => format!("block-io {}", d.join(",")),
        }
    }

    fn problems(&self) -> Vec<KeyProblem> {
        let mut out = Vec::new();
        if self.stuck_after.get().is_zero() {
            out.push(KeyProblem::new("stuck-after", "must be longer than 0s"));
        }
        if let Some(devices) = &self.devices {
            if devices.is_empty() {
                out.push(KeyProblem::new(
                    "devices",
                    "empty: list disks, or leave the key out to watch every disk",
                ));
            }
            for (i, d) in devices.iter().enumerate() {
                let name = kernel_name(d);
                if name.is_empty() || name.contains('/') || name.starts_with('.') {
                    out.push(KeyProblem::new(
                        format!("devices[{i}]"),
                        format!(
                            "`{d}` is not a kernel disk name as in /sys/block (e.g. `sda`, `dm-0`)"
                        ),
                    ));
                } else if devices[..i].iter().any(|o| kernel_name(o) == name) {
                    out.push(KeyProblem::new(
                        format!("devices[{i}]"),
                        format!("`{d}` is listed twice"),
                    ));
                }
            }
        }
        out
    }

    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        Ok(Box::new(BlockIo::new(self.clone(), root)?))
    }

    /// A disk may pass a single sample mid-failover of its path.
    fn default_tolerance(&self) -> u32 {
        1
    }

    /// A disk is stuck only after `stuck-after` without completions.
    fn time_to_see(&self) -> Duration {
        self.stuck_after.get()
    }
}

/// `/dev/sda` → `sda`.
fn kernel_name(d: &str) -> &str {
    d.strip_prefix("/dev/").unwrap_or(d)
}

/// What one disk looks like at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Requests completed so far (reads, writes, discards, flushes). Only its changes matter.
    pub completed: u64,
    pub in_flight: u64,
}

/// The last time a disk was seen making progress (or idle), kept between runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub completed: u64,
    pub at: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    Idle,
    Completing,
    /// In flight with no completion since `for_`, not yet for `stuck-after`.
    Waiting {
        in_flight: u64,
        for_: Duration,
    },
    Stuck {
        in_flight: u64,
        for_: Duration,
    },
}

/// Decides whether a disk is stuck. `last` is the last sample that showed progress (none on
/// the first run), `now` the time of `cur`. Returns the progress to keep for the next run.
pub fn judge(
    last: Option<Progress>,
    cur: Sample,
    now: Duration,
    stuck_after: Duration,
) -> (Progress, Judgement) {
    let fresh = Progress {
        completed: cur.completed,
        at: now,
    };
    match last {
        _ if cur.in_flight == 0 => (fresh, Judgement::Idle),
        Some(p) if p.completed == cur.completed => {
            let for_ = now.saturating_sub(p.at);
            let in_flight = cur.in_flight;
            if for_ >= stuck_after {
                (p, Judgement::Stuck { in_flight, for_ })
            } else {
                (p, Judgement::Waiting { in_flight, for_ })
            }
        }
        // Nothing to compare with yet: count the wait from now.
        None => (
            fresh,
            Judgement::Waiting {
                in_flight: cur.in_flight,
                for_: Duration::ZERO,
            },
        ),
        Some(_) => (fresh, Judgement::Completing),
    }
}

pub struct BlockIo {
    root: Root,
    /// Listed disks, or `None` for every real disk found at each run (disks come and go).
    devices: Option<Vec<String>>,
    stuck_after: Duration,
    progress: HashMap<String, Progress>,
    /// After a run: how much longer the slowest waiting disk has until it counts as stuck
    /// (`None`: no disk was waiting). Before the first run: `stuck-after`.
    undecided: Option<Duration>,
}

impl BlockIo {
    pub fn new(settings: Settings, root: &Root) -> Result<Self, String> {
        let devices = settings
            .devices
            .map(|d| d.iter().map(|n| kernel_name(n).to_string()).collect());
        Ok(BlockIo {
            root: root.clone(),
            devices,
            stuck_after: settings.stuck_after.get(),
            progress: HashMap::new(),
            undecided: Some(settings.stuck_after.get()),
        })
    }

    fn disks(&self) -> Result<Vec<String>, String> {
        match &self.devices {
            Some(d) => Ok(d.clone()),
            None => Ok(blockdev::disks(&self.root)
                .map_err(|e| format!("cannot list disks: {e}"))?
                .into_iter()
                .filter(|d| !blockdev::is_memory_or_loop(d))
                .collect()),
        }
    }
}

impl Check for BlockIo {
    /// Before the first run a disk may be stuck without showing it, so a one-shot caller
    /// should sample twice, `stuck-after` apart; after a run, only while a disk is waiting.
    fn settle_time(&self) -> Option<Duration> {
        self.undecided
    }

    fn run(&mut self, now: Duration) -> Verdict {
        let stats = match diskstats::read(&self.root) {
            Ok(s) => s,
            Err(e) => return Verdict::unhealthy(e.to_string()),
        };
        let disks = match self.disks() {
            Ok(d) => d,
            Err(e) => return Verdict::unhealthy(e),
        };
        let mut bad = Vec::new();
        let mut waiting = Vec::new();
        let mut fine = Vec::new();
        let mut seen = HashMap::with_capacity(disks.len());
        self.undecided = None;
        for dev in &disks {
            let name = blockdev::diskstats_name(dev);
            let Some(stat) = stats.iter().find(|s| s.name == name) else {
                if self.devices.is_some() {
                    bad.push(format!("{dev}: not in /proc/diskstats"));
                }
                continue;
            };
            let cur = self.sample(dev, stat);
            let (keep, judgement) =
                judge(self.progress.get(dev).copied(), cur, now, self.stuck_after);
            seen.insert(dev.clone(), keep);
            match judgement {
                Judgement::Stuck { in_flight, for_ } => bad.push(format!(
                    "{dev}: {in_flight} {} in flight, none completed for {} s",
                    requests(in_flight),
                    for_.as_secs()
                )),
                Judgement::Waiting { in_flight, for_ } => {
                    let left = self.stuck_after.saturating_sub(for_);
                    self.undecided = self.undecided.max(Some(left));
                    waiting.push(format!(
                        "{dev}: {in_flight} {} in flight, none completed for {} s (stuck after {})",
                        requests(in_flight),
                        for_.as_secs(),
                        HumanDuration(self.stuck_after)
                    ))
                }
                Judgement::Idle | Judgement::Completing => fine.push(dev.as_str()),
            }
            if let Some(problem) = self.device_state_problem(dev) {
                bad.push(problem);
            }
        }
        self.progress = seen;
        if !bad.is_empty() {
            return Verdict::unhealthy(bad.join("; "));
        }
        let mut evidence = waiting;
        match fine.len() {
            0 if evidence.is_empty() => evidence.push("no disks to watch".into()),
            0 => {}
            n if n <= 8 => evidence.push(format!("{}: idle or completing", fine.join(", "))),
            n => evidence.push(format!("{n} disks idle or completing")),
        }
        Verdict::healthy(evidence.join("; "))
    }
}

fn requests(n: u64) -> &'static str {
    if n == 1 {
        "request"
    } else {
        "requests"
    }
}

impl BlockIo {
    /// diskstats' in-progress count, or `inflight` when it says more: both count requests
    /// the driver holds, and a stale zero in either must not hide a stuck disk.
    fn sample(&self, dev: &str, stat: &DiskStat) -> Sample {
        let sysfs = blockdev::inflight(&self.root, dev)
            .map(|(r, w)| r.saturating_add(w))
            .unwrap_or(0);
        Sample {
            completed: stat.completed(),
            in_flight: stat.in_progress.max(sysfs),
        }
    }

    fn device_state_problem(&self, dev: &str) -> Option<String> {
        match blockdev::device_state(&self.root, dev)? {
            Ok(s) if s == "running" => None,
            // NVMe controllers say `live`; `/sys/block/nvmeXnY/device` is the controller.
            Ok(s) if s == "live" && dev.starts_with("nvme") => None,
            Ok(s) => Some(format!("{dev}: device state `{s}`, not running")),
            Err(e) => Some(format!("{dev}: cannot read its device state: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const STUCK: Duration = Duration::from_secs(30);

    fn sample(completed: u64, in_flight: u64) -> Sample {
        Sample {
            completed,
            in_flight,
        }
    }

    #[test]
    fn idle_and_progressing_disks_are_fine_and_restart_the_clock() {
        let (p, j) = judge(None, sample(10, 0), S(100), STUCK);
        assert_eq!(
            (p, j),
            (
                Progress {
                    completed: 10,
                    at: S(100)
                },
                Judgement::Idle
            )
        );
        let (p, j) = judge(Some(p), sample(11, 4), S(200), STUCK);
        assert_eq!(
            (p, j),
            (
                Progress {
                    completed: 11,
                    at: S(200)
                },
                Judgement::Completing
            )
        );
    }

    #[test]
    fn in_flight_without_completions_becomes_stuck_at_stuck_after() {
        let (p, j) = judge(None, sample(10, 3), S(100), STUCK);
        assert_eq!(
            j,
            Judgement::Waiting {
                in_flight: 3,
                for_: S(0)
            }
        );
        let (p, j) = judge(Some(p), sample(10, 3), S(129), STUCK);
        assert_eq!(
            j,
            Judgement::Waiting {
                in_flight: 3,
                for_: S(29)
            }
        );
        assert_eq!(
            p.at,
            S(100),
            "the wait keeps counting from the last progress"
        );
        let (_, j) = judge(Some(p), sample(10, 3), S(147), STUCK);
        assert_eq!(
            j,
            Judgement::Stuck {
                in_flight: 3,
                for_: S(47)
            }
        );
    }

    #[test]
    fn slow_but_progressing_io_is_never_stuck() {
        let mut p = None;
        for i in 0..100u64 {
            // One completion per sample, samples further apart than stuck-after.
            let (keep, j) = judge(p, sample(1000 + i, 64), S(100 + 45 * i), STUCK);
            assert!(!matches!(j, Judgement::Stuck { .. }), "run {i}");
            p = Some(keep);
        }
    }

    #[test]
    fn a_wrapped_counter_is_progress_and_a_clock_going_back_is_no_wait() {
        let last = Progress {
            completed: u64::MAX,
            at: S(100),
        };
        assert_eq!(
            judge(Some(last), sample(0, 1), S(200), STUCK).1,
            Judgement::Completing
        );
        let last = Progress {
            completed: 5,
            at: S(100),
        };
        assert_eq!(
            judge(Some(last), sample(5, 1), S(50), STUCK).1,
            Judgement::Waiting {
                in_flight: 1,
                for_: S(0)
            }
        );
    }

    #[test]
    fn device_names_are_checked_statically() {
        let s = Settings {
            devices: Some(vec![
                "/dev/sda".into(),
                "sda".into(),
                "mapper/x".into(),
                "".into(),
            ]),
            stuck_after: HumanDuration(Duration::ZERO),
        };
        let keys: Vec<String> = s.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            ["stuck-after", "devices[1]", "devices[2]", "devices[3]"]
        );
        assert!(Settings::default().problems().is_empty());
    }

    fn node() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        for d in ["vda", "sda", "loop0"] {
            std::fs::create_dir_all(root.sys(format!("block/{d}"))).unwrap();
            std::fs::write(
                root.sys(format!("block/{d}/inflight")),
                "       0        0\n",
            )
            .unwrap();
        }
        std::fs::create_dir_all(root.sys("block/sda/device")).unwrap();
        std::fs::write(root.sys("block/sda/device/state"), "running\n").unwrap();
        std::fs::create_dir_all(root.proc("")).unwrap();
        (dir, root)
    }

    fn diskstats(root: &Root, vda_writes: u64, vda_in_flight: u64) {
        std::fs::write(
            root.proc("diskstats"),
            format!(
                "   7       0 loop0 0 0 0 0 0 0 0 0 9 0 0 0 0 0 0 0 0\n 254       0 vda 34545 6727 4157314 14251 {vda_writes} 10917 2270712 3632 {vda_in_flight} 4124 18197 4508 53 251872 293 716 20\n   8       0 sda 10931 2385 771730 6120 4419 6563 166648 9088 0 10196 12440\n"
            ),
        )
        .unwrap();
    }

    #[test]
    fn a_stuck_disk_in_a_fixture_tree_with_mixed_layouts() {
        let (_dir, root) = node();
        diskstats(&root, 5460, 3);
        let mut c = BlockIo::new(Settings::default(), &root).unwrap();
        let v = c.run(S(100));
        assert!(v.healthy, "{v:?}");
        assert_eq!(
            v.evidence,
            "vda: 3 requests in flight, none completed for 0 s (stuck after 30s); sda: idle or completing"
        );
        let v = c.run(S(147));
        assert_eq!(
            v,
            Verdict::unhealthy("vda: 3 requests in flight, none completed for 47 s")
        );
        diskstats(&root, 5461, 3);
        assert!(c.run(S(150)).healthy);
    }

    #[test]
    fn settle_time_asks_for_a_second_sample_only_while_a_disk_waits() {
        let (_dir, root) = node();
        diskstats(&root, 5460, 0);
        let mut c = BlockIo::new(Settings::default(), &root).unwrap();
        assert_eq!(c.settle_time(), Some(S(30)));
        c.run(S(100));
        assert_eq!(c.settle_time(), None);
        diskstats(&root, 5461, 3);
        c.run(S(110));
        assert_eq!(c.settle_time(), None, "completing: progress seen");
        c.run(S(120));
        assert_eq!(c.settle_time(), Some(S(20)));
        c.run(S(140));
        assert_eq!(c.settle_time(), None, "stuck now: nothing left to wait for");
    }

    #[test]
    fn inflight_in_sysfs_counts_when_diskstats_says_zero() {
        let (_dir, root) = node();
        diskstats(&root, 5460, 0);
        std::fs::write(root.sys("block/vda/inflight"), "       1        0\n").unwrap();
        let mut c = BlockIo::new(Settings::default(), &root).unwrap();
        c.run(S(0));
        assert_eq!(
            c.run(S(31)).evidence,
            "vda: 1 request in flight, none completed for 31 s"
        );
    }

    #[test]
    fn scsi_state_listed_disks_and_broken_diskstats() {
        let (_dir, root) = node();
        diskstats(&root, 5460, 0);
        std::fs::write(root.sys("block/sda/device/state"), "transport-offline\n").unwrap();
        let mut c = BlockIo::new(Settings::default(), &root).unwrap();
        assert_eq!(
            c.run(S(0)),
            Verdict::unhealthy("sda: device state `transport-offline`, not running")
        );

        let s = Settings {
            devices: Some(vec!["/dev/vdb".into()]),
            ..Settings::default()
        };
        let mut c = BlockIo::new(s, &root).unwrap();
        assert_eq!(
            c.run(S(0)),
            Verdict::unhealthy("vdb: not in /proc/diskstats")
        );

        std::fs::write(root.proc("diskstats"), " 254 0 vda 1 2 3").unwrap();
        let v = c.run(S(0));
        assert!(
            v.evidence
                .starts_with("/proc/diskstats line 1: vda: 6 fields"),
            "{v:?}"
        );
        std::fs::remove_file(root.proc("diskstats")).unwrap();
        assert!(!c.run(S(0)).healthy);
    }

    #[test]
    fn a_huge_diskstats_is_an_error_not_an_allocation() {
        let (_dir, root) = node();
        let line = " 254 0 vda 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let huge = line.repeat(5 * 1024 * 1024 / line.len() + 1);
        std::fs::write(root.proc("diskstats"), huge).unwrap();
        let v = BlockIo::new(Settings::default(), &root).unwrap().run(S(0));
        assert!(!v.healthy);
        assert!(
            v.evidence.starts_with("/proc/diskstats: larger than"),
            "{v:?}"
        );
    }

    #[test]
    fn nvme_controllers_are_live_not_running() {
        let (_dir, root) = node();
        std::fs::create_dir_all(root.sys("block/nvme0n1/device")).unwrap();
        std::fs::write(root.sys("block/nvme0n1/device/state"), "live\n").unwrap();
        std::fs::write(
            root.proc("diskstats"),
            " 259 0 nvme0n1 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0\n",
        )
        .unwrap();
        let s = Settings {
            devices: Some(vec!["nvme0n1".into()]),
            ..Settings::default()
        };
        let mut c = BlockIo::new(s.clone(), &root).unwrap();
        assert!(c.run(S(0)).healthy);
        std::fs::write(root.sys("block/nvme0n1/device/state"), "dead\n").unwrap();
        assert!(!c.run(S(1)).healthy);
    }
}
