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
use crate::system::sysfile::KeptFile;
use crate::system::{blockdev, Root};
use crate::units::HumanDuration;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Disks by kernel name (`vda`, `sda`, `nvme0n1`, `dm-0`; `/dev/` may be written before it).
    /// Default: every disk under /sys/block except [`LEFT_OUT`].
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

/// The shortest `stuck-after`: a request may sit in a busy disk's queue for hundreds of
/// milliseconds without anything being wrong.
pub const MIN_STUCK_AFTER: Duration = Duration::from_secs(1);

/// The longest `stuck-after`: ten minutes is well above what the SCSI layer itself waits
/// (a 30 s command timeout, retried five times); more only delays the fence (it is part of
/// the fence bound).
pub const MAX_STUCK_AFTER: Duration = Duration::from_secs(600);

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
        let d = self.stuck_after.get();
        if d.is_zero() {
            out.push(KeyProblem::new("stuck-after", "must be longer than 0s"));
        } else if !(MIN_STUCK_AFTER..=MAX_STUCK_AFTER).contains(&d) {
            out.push(KeyProblem::new(
                "stuck-after",
                format!(
                    "{} is outside {}..{}: shorter counts a busy disk as stuck, longer only delays the fence (default 30s)",
                    crate::units::format_duration(d),
                    crate::units::format_duration(MIN_STUCK_AFTER),
                    crate::units::format_duration(MAX_STUCK_AFTER)
                ),
            ));
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

/// What the default device list leaves out, in the operator's words.
pub const LEFT_OUT: &str = "loop, ram and zram (backed by files and memory), drbd and nbd \
    (their I/O waits on the peer or the server: a frozen peer must not fence this node) and \
    devices stacked on drbd or nbd (LVM on DRBD)";

/// `/dev/sda` → `sda`.
pub fn kernel_name(d: &str) -> &str {
    d.strip_prefix("/dev/").unwrap_or(d)
}

/// A DRBD device's kernel name (`drbd0`).
pub fn is_drbd(name: &str) -> bool {
    name.starts_with("drbd") && blockdev::is_network_backed(name)
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
    /// `/proc/diskstats`, kept open and read again from offset 0 at each run.
    diskstats: KeptFile,
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
            diskstats: diskstats::kept(root),
        })
    }

    fn disks(&self) -> Result<Vec<String>, String> {
        match &self.devices {
            Some(d) => Ok(d.clone()),
            None => Ok(blockdev::disks(&self.root)
                .map_err(|e| format!("cannot list disks: {e}"))?
                .into_iter()
                .filter(|d| {
                    !blockdev::is_memory_or_loop(d)
                        && !blockdev::is_network_backed(d)
                        && !blockdev::stacked_on_network(&self.root, d)
                })
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
        let mut stats = match diskstats::read_kept(&self.root, &mut self.diskstats) {
            Ok(s) => s,
            Err(e) => return Verdict::unhealthy(e.to_string()),
        };
        if stats.is_empty() {
            return Verdict::unhealthy("/proc/diskstats lists no block devices");
        }
        let disks = match self.disks() {
            Ok(d) => d,
            Err(e) => return Verdict::unhealthy(e),
        };
        let mut bad = Vec::new();
        let mut waiting = Vec::new();
        let mut fine = Vec::new();
        let mut seen = HashMap::with_capacity(disks.len());
        let mut reread = false;
        self.undecided = None;
        for dev in &disks {
            let name = blockdev::diskstats_name(dev);
            // A disk added between the two reads: look once more before calling it missing.
            if !reread && !stats.iter().any(|s| s.name == name) {
                reread = true;
                match diskstats::read_kept(&self.root, &mut self.diskstats) {
                    Ok(s) => stats = s,
                    Err(e) => return Verdict::unhealthy(e.to_string()),
                }
            }
            if let Some(stat) = stats.iter().find(|s| s.name == name) {
                match self.sample(dev, stat) {
                    Ok(cur) => {
                        let (keep, judgement) =
                            judge(self.progress.get(dev).copied(), cur, now, self.stuck_after);
                        seen.insert(dev.clone(), keep);
                        self.record(dev, judgement, &mut bad, &mut waiting, &mut fine);
                    }
                    Err(e) => bad.push(e),
                }
            } else if self.devices.is_some() {
                bad.push(format!("{dev}: not in /proc/diskstats"));
            } else {
                bad.push(format!(
                    "{dev}: in /sys/block but not in /proc/diskstats, its I/O cannot be watched"
                ));
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
    /// the driver holds, and a stale zero in either must not hide a stuck disk. An unreadable
    /// `inflight` is an error: every block device has one.
    fn sample(&self, dev: &str, stat: &DiskStat) -> Result<Sample, String> {
        let sysfs = blockdev::inflight(&self.root, dev)
            .map(|(r, w)| r.saturating_add(w))
            .map_err(|e| format!("{dev}: cannot read its requests in flight: {e}"))?;
        Ok(Sample {
            completed: stat.completed(),
            in_flight: stat.in_progress.max(sysfs),
        })
    }

    fn record<'a>(
        &mut self,
        dev: &'a str,
        judgement: Judgement,
        bad: &mut Vec<String>,
        waiting: &mut Vec<String>,
        fine: &mut Vec<&'a str>,
    ) {
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
            Judgement::Idle | Judgement::Completing => fine.push(dev),
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
mod tests;
