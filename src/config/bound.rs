//! The fence bound B: from the moment a fault appears, the node is reset within B, even if
//! the kernel and every disk are wedged (README.md, "The fence bound").
//!
//! ```text
//! B = worst detection of the slowest check:
//!     time for the fault to become visible (block-io's stuck-after, process's
//!     max-uninterruptible or max-age; 0 for the others), in whole periods of `every`
//!     + (every + deadline) × (tolerance + 1)
//!   + the time the device really takes to reset after its last pet
//!     (`mode: crashdump`: one interval + the reset time of the crashdump timeout, see
//!     [`super::crashdump`])
//! ```
//!
//! The second term is driver-specific. Measured in QEMU on Linux 6.1: iTCO_wdt resets only
//! after its second expiry, counted in 0.6 s ticks (2 × floor(T / 0.6) × 0.6 s after the
//! last pet); i6300esb, softdog and ipmi_watchdog reset one timeout after it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::crashdump::CrashdumpBound;
use crate::config::Config;
use crate::units::format_duration;

/// How sure the bound is about a device's reset time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Knowledge {
    /// A driver whose behaviour was measured.
    Known,
    /// The driver is not known, or not identified: one timeout is assumed.
    Assumed,
}

/// When one device resets the node after its last pet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceReset {
    pub path: PathBuf,
    pub identity: Option<String>,
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    #[serde(serialize_with = "secs")]
    pub reset_after: Duration,
    pub knowledge: Knowledge,
    pub how: String,
}

/// The bound and what it is made of.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bound {
    #[serde(serialize_with = "secs")]
    pub total: Duration,
    #[serde(serialize_with = "secs")]
    pub detection: Duration,
    pub slowest_check: Option<String>,
    #[serde(serialize_with = "secs")]
    pub reset: Duration,
    pub devices: Vec<DeviceReset>,
    /// `mode: crashdump`: what the dump adds.
    pub crashdump: Option<CrashdumpBound>,
}

pub(super) fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// The reset time of a device with this identity and timeout.
pub fn reset_after(identity: Option<&str>, timeout: Duration) -> (Duration, Knowledge, String) {
    match identity.map(str::trim) {
        Some("iTCO_wdt") => {
            let ticks = (timeout.as_secs_f64() / 0.6).floor();
            let after = Duration::from_secs_f64(2.0 * ticks * 0.6);
            (
                after,
                Knowledge::Known,
                "iTCO_wdt: two expiries of floor(T/0.6) ticks of 0.6 s".into(),
            )
        }
        Some(id @ ("i6300ESB timer" | "Software Watchdog" | "IPMI")) => {
            (timeout, Knowledge::Known, format!("{id}: one timeout"))
        }
        Some(id) => (
            timeout,
            Knowledge::Assumed,
            format!("{id}: not a driver wdfeed knows; one timeout assumed"),
        ),
        None => (
            timeout,
            Knowledge::Assumed,
            "driver not identified: one timeout assumed".into(),
        ),
    }
}

/// B for `config`, given each device's identity (None where unknown) and, once the devices
/// are programmed, the timeouts the drivers really granted.
pub fn compute(
    config: &Config,
    identities: &[Option<String>],
    granted: Option<&[Duration]>,
) -> Bound {
    let (detection, slowest_check) = config
        .checks
        .iter()
        .map(|c| (c.worst_detection(), Some(c.name.clone())))
        .max_by_key(|(d, _)| *d)
        .unwrap_or((Duration::ZERO, None));
    let devices: Vec<DeviceReset> = config
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let identity = identities.get(i).cloned().flatten();
            let timeout = granted.and_then(|g| g.get(i).copied()).unwrap_or(d.timeout);
            let (after, knowledge, how) = reset_after(identity.as_deref(), timeout);
            DeviceReset {
                path: d.path.clone(),
                identity,
                timeout,
                reset_after: after,
                knowledge,
                how,
            }
        })
        .collect();
    // Every device is petted together; the promise holds even if only the slowest one acts.
    let reset = devices
        .iter()
        .map(|d| d.reset_after)
        .max()
        .unwrap_or(Duration::ZERO);
    let crashdump = config.fence.crashdump.as_ref().map(|c| {
        let seen: Vec<_> = devices
            .iter()
            .map(|d| (d.path.clone(), d.identity.clone()))
            .collect();
        CrashdumpBound::compute(c, config.interval, &seen)
    });
    let after_detection = crashdump
        .as_ref()
        .map_or(reset, |c| reset.max(c.after_detection()));
    Bound {
        total: detection + after_detection,
        detection,
        slowest_check,
        reset,
        devices,
        crashdump,
    }
}

impl Bound {
    /// B in seconds with one decimal, as logs and tests read it.
    pub fn seconds(&self) -> String {
        format!("{:.1}", self.total.as_secs_f64())
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fence bound: {} s", self.seconds())?;
        match &self.slowest_check {
            Some(name) => writeln!(
                f,
                "  detection: {} (slowest check: {name})",
                format_duration(self.detection)
            )?,
            None => writeln!(
                f,
                "  detection: none (no checks: only the freeze guard fences)"
            )?,
        }
        for d in &self.devices {
            writeln!(
                f,
                "  reset: {} after the last pet by {} ({}{})",
                format_duration(d.reset_after),
                d.path.display(),
                d.how,
                if d.knowledge == Knowledge::Assumed {
                    ""
                } else {
                    ", measured"
                }
            )?;
        }
        if let Some(c) = &self.crashdump {
            writeln!(f, "  {}", c.line())?;
        }
        write!(
            f,
            "  {}",
            crate::config::advice::pacemaker(self.total).line()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn itco_resets_after_two_expiries_in_0_6_s_ticks() {
        assert_eq!(
            reset_after(Some("iTCO_wdt"), S(10)).0,
            Duration::from_millis(19_200)
        );
        assert_eq!(
            reset_after(Some("iTCO_wdt"), S(5)).0,
            Duration::from_millis(9_600)
        );
    }

    #[test]
    fn one_stage_drivers_reset_after_one_timeout() {
        for id in ["i6300ESB timer", "Software Watchdog", "IPMI"] {
            let (after, k, _) = reset_after(Some(id), S(10));
            assert_eq!((after, k), (S(10), Knowledge::Known), "{id}");
        }
        assert_eq!(
            reset_after(Some("Mystery WDT"), S(10)).1,
            Knowledge::Assumed
        );
        assert_eq!(reset_after(None, S(10)).1, Knowledge::Assumed);
    }

    #[test]
    fn the_bound_adds_the_slowest_detection_and_the_slowest_reset() {
        let c = parse(
            "devices:\n  - {path: /dev/watchdog0, timeout: 10s}\n  - {path: /dev/watchdog1, timeout: 10s}\ninterval: 1s\n\
             checks:\n  - {kind: writable, every: 1s, deadline: 2s}\n  - {kind: writable, label: two, every: 2s, deadline: 3s, tolerance: 1}\n",
            "t",
        )
        .unwrap();
        let b = compute(
            &c,
            &[Some("Software Watchdog".into()), Some("iTCO_wdt".into())],
            None,
        );
        assert_eq!(b.detection, S(10), "(2s + 3s) x 2");
        assert_eq!(b.slowest_check.as_deref(), Some("two"));
        assert_eq!(b.reset, Duration::from_millis(19_200));
        assert_eq!(b.total, Duration::from_millis(29_200));
        assert_eq!(b.seconds(), "29.2");
        assert!(b.to_string().starts_with("fence bound: 29.2 s\n"), "{b}");
    }

    #[test]
    fn a_fault_that_needs_time_to_show_counts_that_time() {
        // block-io sees a stuck disk only after stuck-after without completions; a process
        // in D state only after max-uninterruptible.
        let c = parse(
            "devices: [{path: /dev/watchdog0, timeout: 6s}]\ninterval: 1s\n\
             checks:\n  - {kind: block-io, stuck-after: 10s, every: 1s, deadline: 2s}\n  - {kind: process, name: hb, max-uninterruptible: 20s, every: 1s, deadline: 2s}\n",
            "t",
        )
        .unwrap();
        let b = compute(&c, &[Some("Software Watchdog".into())], None);
        assert_eq!(
            c.checks[0].worst_detection(),
            S(16),
            "10s + (1s + 2s) x 2 (tolerance 1)"
        );
        assert_eq!(c.checks[1].worst_detection(), S(23), "20s + (1s + 2s) x 1");
        assert_eq!(b.total, S(29));
    }

    #[test]
    fn a_time_to_show_counts_in_whole_periods_of_the_check() {
        // A D state is timed from the first run that saw it: with runs every 5 s, 7 s of it
        // fail the second run after that one, 10 s later, not 7 s later.
        let c = parse(
            "devices: [{path: /dev/watchdog0, timeout: 6s}]\ninterval: 1s\n\
             checks:\n  - {kind: process, name: hb, max-uninterruptible: 7s, every: 5s, deadline: 2s}\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            c.checks[0].worst_detection(),
            S(17),
            "ceil(7s / 5s) x 5s + (5s + 2s)"
        );
    }

    #[test]
    fn granted_timeouts_replace_the_requested_ones() {
        let c = parse("devices: [{path: /dev/watchdog0, timeout: 30s}]\n", "t").unwrap();
        let b = compute(&c, &[None], Some(&[S(20)]));
        assert_eq!(b.reset, S(20));
        assert_eq!(b.devices[0].knowledge, Knowledge::Assumed);
    }
}
