//! `drbd`: a DRBD Primary on this node can still serve its data.
//!
//! Unhealthy, with DRBD's own fields as evidence, when a volume of a watched resource is:
//! - **Primary without good data**: its local disk is not UpToDate and no connected peer has
//!   UpToDate data (the local disk failed and the peer is gone): every read fails or hangs;
//! - **Primary with I/O suspended** for `suspended-after` or longer (quorum lost, fencing
//!   that never returns, `on-no-data-accessible suspend-io`): every write hangs. The default
//!   lies above DRBD 8.4's own time to give up on a frozen peer, so a peer that froze is
//!   dropped by DRBD first and the healthy Primary goes on;
//! - **gone** while the config names it: DRBD not loaded, the resource not configured.
//!
//! A Secondary is healthy in every state: it serves nothing. How long I/O has been suspended
//! is counted across runs, from the first run that saw it.
//!
//! Reads `/proc/drbd` (DRBD 8.4, the version in mainline kernels) and, for resource names,
//! debugfs (`drbd/minors/<minor>`); both without taking any DRBD lock (`system::drbd`).
//! The judgement is a pure function of `drbd::Volume`s, the model a DRBD 9 reader (netlink)
//! would fill as well.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{CheckKind, KeyProblem};
use crate::health::{Check, Verdict};
use crate::system::drbd::{self, Role, Volume};
use crate::system::Root;
use crate::units::{format_duration, HumanDuration};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Resources by name, as in drbd.conf (`r0`). Default: every DRBD device of the node.
    #[serde(default)]
    pub resources: Option<Vec<String>>,
    /// How long a Primary's I/O may stay suspended.
    #[serde(default = "default_suspended_after")]
    pub suspended_after: HumanDuration,
}

/// Above DRBD 8.4's own time to give up on a frozen peer with its defaults (ping-int 10 s +
/// ping-timeout 0.5 s; net timeout 6 s) plus a fence-peer handler of about 5 s
/// (drbd-peer-outdater -t 5): I/O frozen for fencing resumes before this.
pub const DEFAULT_SUSPENDED_AFTER: Duration = Duration::from_secs(20);

fn default_suspended_after() -> HumanDuration {
    HumanDuration(DEFAULT_SUSPENDED_AFTER)
}

impl CheckKind for Settings {
    const KIND: &'static str = "drbd";

    fn label(&self) -> String {
        match &self.resources {
            None => "drbd all resources".into(),
            Some(r) => format!("drbd {}", r.join(",")),
        }
    }

    fn problems(&self) -> Vec<KeyProblem> {
        let mut out = Vec::new();
        if self.suspended_after.get().is_zero() {
            out.push(KeyProblem::new("suspended-after", "must be longer than 0s"));
        }
        if let Some(resources) = &self.resources {
            if resources.is_empty() {
                out.push(KeyProblem::new(
                    "resources",
                    "empty: list resources (e.g. [r0]), or leave the key out to watch every one",
                ));
            }
            for (i, r) in resources.iter().enumerate() {
                if let Some(why) = drbd::bad_resource_name(r) {
                    out.push(KeyProblem::new(
                        format!("resources[{i}]"),
                        format!(
                            "`{}` {why}: give the name as in drbd.conf (`resource r0 {{ ... }}`)",
                            r.escape_debug()
                        ),
                    ));
                } else if resources[..i].contains(r) {
                    out.push(KeyProblem::new(
                        format!("resources[{i}]"),
                        format!("`{r}` is listed twice"),
                    ));
                }
            }
        }
        out
    }

    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        Ok(Box::new(Drbd {
            root: root.clone(),
            resources: self.resources.clone(),
            suspended_after: self.suspended_after.get(),
            suspended_since: HashMap::new(),
            undecided: None,
        }))
    }

    /// I/O suspension fails only after `suspended-after`.
    fn time_to_see(&self) -> Duration {
        self.suspended_after.get()
    }
}

pub struct Drbd {
    root: Root,
    resources: Option<Vec<String>>,
    suspended_after: Duration,
    /// Per minor: when a run first saw it Primary with I/O suspended.
    suspended_since: HashMap<u32, Duration>,
    /// After a run: how much longer a suspended Primary has until it fails.
    undecided: Option<Duration>,
}

/// One volume as judged: what it is called in evidence, and the volume.
struct Named<'a> {
    name: String,
    volume: &'a Volume,
}

impl Check for Drbd {
    fn settle_time(&self) -> Option<Duration> {
        self.undecided
    }

    fn run(&mut self, now: Duration) -> Verdict {
        self.undecided = None;
        let proc = match drbd::read(&self.root) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.suspended_since.clear();
                return Verdict::unhealthy(format!(
                    "no /proc/drbd: DRBD is not loaded, but this check watches {}",
                    self.watched()
                ));
            }
            Err(e) => return Verdict::unhealthy(e.to_string()),
        };
        let volumes = match self.select(&proc) {
            Ok(v) => v,
            Err(e) => return Verdict::unhealthy(e),
        };
        let seen: Vec<u32> = volumes.iter().map(|n| n.volume.minor).collect();
        self.suspended_since.retain(|m, _| seen.contains(m));
        if volumes.is_empty() {
            return Verdict::healthy("no DRBD device is configured here: none is Primary");
        }
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for n in &volumes {
            let since = self.suspended_since.get(&n.volume.minor).copied();
            let judged = judge(n.volume, since, now, self.suspended_after);
            match judged.suspended_since {
                Some(t) => {
                    self.suspended_since.insert(n.volume.minor, t);
                }
                None => {
                    self.suspended_since.remove(&n.volume.minor);
                }
            }
            if let Some(left) = judged.undecided {
                self.undecided = Some(self.undecided.map_or(left, |u| u.max(left)));
            }
            match judged.verdict {
                Ok(words) => good.push(format!("{}: {words}", n.name)),
                Err(words) => bad.push(format!("{}: {words}", n.name)),
            }
        }
        if bad.is_empty() {
            Verdict::healthy(good.join("; "))
        } else {
            Verdict::unhealthy(bad.join("; "))
        }
    }
}

impl Drbd {
    fn watched(&self) -> String {
        match &self.resources {
            None => "every DRBD resource".into(),
            Some(r) => r.join(", "),
        }
    }

    /// The volumes this check judges, each with its name for evidence.
    fn select<'a>(&self, proc: &'a drbd::ProcDrbd) -> Result<Vec<Named<'a>>, String> {
        let Some(resources) = &self.resources else {
            // Every device; names only dress the evidence, so debugfs may be missing.
            let names = drbd::names(&self.root).unwrap_or_default();
            return Ok(proc
                .volumes
                .iter()
                .map(|v| Named {
                    name: match names.iter().find(|n| n.minor == v.minor) {
                        Some(n) => format!("{}/{} (minor {})", n.resource, n.volume, v.minor),
                        None => format!("minor {}", v.minor),
                    },
                    volume: v,
                })
                .collect());
        };
        let names = drbd::names(&self.root)
            .map_err(|e| format!("cannot tell which minors {} has: {e}", resources.join(", ")))?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for r in resources {
            let minors = drbd::minors_of(&names, r);
            if minors.is_empty() {
                gone.push(format!("{r} is not configured (no DRBD minor of it)"));
            }
            for m in minors {
                match proc.volume(m) {
                    Some(v) => out.push(Named {
                        name: format!("{r} (minor {m})"),
                        volume: v,
                    }),
                    None => gone.push(format!("{r}: minor {m} is not in /proc/drbd")),
                }
            }
        }
        if gone.is_empty() {
            Ok(out)
        } else {
            Err(gone.join("; "))
        }
    }
}

/// What [`judge`] found for one volume.
#[derive(Debug, PartialEq, Eq)]
pub struct Judged {
    /// Evidence words: healthy (`Ok`) or not.
    pub verdict: Result<String, String>,
    /// When a run first saw this volume Primary with I/O suspended (keep it for the next).
    pub suspended_since: Option<Duration>,
    /// How much longer the suspension may last before it fails.
    pub undecided: Option<Duration>,
}

/// Judges one volume at `now`; `since` is when a run first saw it Primary and suspended.
pub fn judge(v: &Volume, since: Option<Duration>, now: Duration, limit: Duration) -> Judged {
    let fine = |words: String| Judged {
        verdict: Ok(words),
        suspended_since: None,
        undecided: None,
    };
    if v.role != Role::Primary {
        return fine(format!("Secondary ({})", v.fields));
    }
    let peer_data = v.peers.iter().any(|p| p.connected && p.disk == "UpToDate");
    if v.disk != "UpToDate" && !peer_data {
        return Judged {
            verdict: Err(format!(
                "Primary without good data: local disk {}, no connected peer with UpToDate \
                 data ({})",
                v.disk, v.fields
            )),
            suspended_since: None,
            undecided: None,
        };
    }
    if !v.suspended {
        return fine(format!("Primary ({})", v.fields));
    }
    let since = since.unwrap_or(now);
    let held = now.saturating_sub(since);
    let secs = held.as_secs_f64();
    if held >= limit {
        Judged {
            verdict: Err(format!(
                "Primary with I/O suspended for {secs:.0} s (suspended-after {}) ({})",
                format_duration(limit),
                v.fields
            )),
            suspended_since: Some(since),
            undecided: None,
        }
    } else {
        Judged {
            verdict: Ok(format!(
                "Primary, I/O suspended for {secs:.0} s (fails at suspended-after {}) ({})",
                format_duration(limit),
                v.fields
            )),
            suspended_since: Some(since),
            undecided: Some(limit - held),
        }
    }
}

#[cfg(test)]
mod tests;
