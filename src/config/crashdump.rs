//! `fence.mode: crashdump`: its keys, their rules, and what it adds to the fence bound.
//!
//! The fence pets every device once with `crashdump-timeout` (set and read back) and crashes
//! the kernel into the loaded crash kernel, which saves a dump. The hardware watchdog stays
//! armed through the dump: a dump kernel that hangs is reset `crashdump-timeout` after that
//! pet. That pet comes at the fence, at most one `interval` after the lease that fenced ran
//! out (the feeder's next tick), so
//!
//! ```text
//! B = detection + max(reset, interval + the reset time of crashdump-timeout)
//! ```
//!
//! where the reset time is the device's own (iTCO_wdt's two expiries in 0.6 s ticks). The
//! crashdump term is always the larger one: the timeout must be longer than every device's.
//! softdog is a timer of the kernel that crashes: it does not survive into the dump kernel,
//! so it resets nothing there; only the other devices count for that term.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::bound::{reset_after, Knowledge};
use super::raw::FenceMode;
use super::rules::MAX_TIMEOUT;
use super::Problem;
use crate::units::{format_duration, HumanDuration};

/// Where kdump-tools saves dumps unless its KDUMP_COREDIR says otherwise.
pub const DEFAULT_DUMP_DIR: &str = "/var/crash";

/// The identity softdog gives: a timer of the kernel that the crash ends.
pub const SOFTDOG_IDENTITY: &str = "Software Watchdog";

/// `mode: crashdump`, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CrashdumpConfig {
    /// Every device's timeout from the fence on: the dump kernel's time to save the dump.
    pub timeout: Duration,
    /// Where the dump kernel saves dumps (read at the next boot, never written).
    pub dir: PathBuf,
}

fn push(problems: &mut Vec<Problem>, key: &str, message: String) {
    problems.push(Problem {
        key: key.into(),
        message,
        location: None,
    });
}

/// The crashdump keys against `mode` and the device timeouts; `Some` for `mode: crashdump`.
pub fn rules(
    mode: FenceMode,
    timeout: Option<HumanDuration>,
    dir: Option<PathBuf>,
    device_timeouts: &[Duration],
    problems: &mut Vec<Problem>,
) -> Option<CrashdumpConfig> {
    if mode != FenceMode::Crashdump {
        for (key, given) in [
            ("fence.crashdump-timeout", timeout.is_some()),
            ("fence.crashdump-dir", dir.is_some()),
        ] {
            if given {
                push(
                    problems,
                    key,
                    "is used only with `mode: crashdump`: remove it, or set `mode: crashdump`"
                        .into(),
                );
            }
        }
        return None;
    }
    let Some(timeout) = timeout.map(HumanDuration::get) else {
        push(
            problems,
            "fence.crashdump-timeout",
            "`mode: crashdump` needs it: how long the dump kernel may take to save the dump before the watchdog resets the node, e.g. `crashdump-timeout: 120s` (it adds to the fence bound; docs/DEPLOY.md, Crash dumps)".into(),
        );
        return None;
    };
    let key = "fence.crashdump-timeout";
    if timeout.subsec_nanos() != 0 || timeout < Duration::from_secs(1) {
        push(
            problems,
            key,
            format!(
                "{} is not a whole number of seconds of at least 1s (the kernel API counts whole seconds)",
                format_duration(timeout)
            ),
        );
    } else if timeout > MAX_TIMEOUT {
        push(
            problems,
            key,
            format!(
                "{} is over {}: IPMI BMCs wrap larger values silently",
                format_duration(timeout),
                format_duration(MAX_TIMEOUT)
            ),
        );
    } else if let Some((i, longest)) = device_timeouts
        .iter()
        .enumerate()
        .max_by_key(|(_, t)| **t)
        .filter(|(_, t)| **t >= timeout)
    {
        push(
            problems,
            key,
            format!(
                "{} is not longer than the timeout {} of devices[{i}]: the dump kernel gets the crashdump-timeout in place of the device timeout, so make it longer, by what your dumps take to save (docs/DEPLOY.md, Crash dumps)",
                format_duration(timeout),
                format_duration(*longest)
            ),
        );
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DUMP_DIR));
    if !dir.is_absolute() {
        push(
            problems,
            "fence.crashdump-dir",
            format!(
                "`{}` is not an absolute path; write the directory the dump kernel saves to, e.g. {DEFAULT_DUMP_DIR} (kdump-tools' KDUMP_COREDIR)",
                dir.display()
            ),
        );
    }
    Some(CrashdumpConfig { timeout, dir })
}

/// What `mode: crashdump` adds to the bound.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrashdumpBound {
    #[serde(serialize_with = "super::bound::secs")]
    pub timeout: Duration,
    /// The feeder's interval: the fence's pet comes at most this long after the lease ran out.
    #[serde(serialize_with = "super::bound::secs")]
    pub interval: Duration,
    /// When the slowest device that survives the crash resets a dump kernel, after the pet.
    #[serde(serialize_with = "super::bound::secs")]
    pub reset_after: Duration,
    /// That device, and how its reset time is known; `None` when every device is softdog
    /// (nothing resets a dump kernel that hangs: `run` refuses such a node).
    pub reset_by: Option<(PathBuf, String)>,
    pub knowledge: Knowledge,
}

impl CrashdumpBound {
    /// The term for `config` on devices with these identities (`None`: unknown).
    pub fn compute(
        config: &CrashdumpConfig,
        interval: Duration,
        devices: &[(PathBuf, Option<String>)],
    ) -> CrashdumpBound {
        let survivors = devices
            .iter()
            .filter(|(_, id)| id.as_deref().map(str::trim) != Some(SOFTDOG_IDENTITY));
        let slowest = survivors
            .map(|(path, id)| (path, reset_after(id.as_deref(), config.timeout)))
            .max_by_key(|(_, (after, _, _))| *after);
        let (reset_after, reset_by, knowledge) = match slowest {
            Some((path, (after, knowledge, how))) => (after, Some((path.clone(), how)), knowledge),
            None => (config.timeout, None, Knowledge::Assumed),
        };
        CrashdumpBound {
            timeout: config.timeout,
            interval,
            reset_after,
            reset_by,
            knowledge,
        }
    }

    /// The time from the lease running out to the reset of a dump kernel that hangs.
    pub fn after_detection(&self) -> Duration {
        self.interval + self.reset_after
    }

    /// The line `validate`, `info` and `run` print.
    pub fn line(&self) -> String {
        match &self.reset_by {
            Some((path, how)) => format!(
                "crashdump: the fence pets once with crashdump-timeout {} at most one interval ({}) after the lease ran out, then crashes into the dump kernel; {} resets a dump kernel that hangs {} after that pet ({how}{}): B counts {} from the end of detection",
                format_duration(self.timeout),
                format_duration(self.interval),
                path.display(),
                format_duration(self.reset_after),
                if self.knowledge == Knowledge::Known { ", measured" } else { "" },
                format_duration(self.after_detection()),
            ),
            None => format!(
                "crashdump: NO device resets a dump kernel that hangs: softdog is a timer of the kernel that the crash ends; `wdfeed run` refuses crashdump with softdog alone (add a hardware watchdog); {} assumed",
                format_duration(self.after_detection())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{bound, parse};

    const S: fn(u64) -> Duration = Duration::from_secs;

    const BASE: &str = "devices:\n  - path: /dev/watchdog0\n    timeout: 10s\ninterval: 2s\nfence:\n  mode: crashdump\n  crashdump-timeout: 60s\n";

    fn problems(text: &str) -> Vec<crate::config::Problem> {
        parse(text, "w.yaml").expect_err("rejected").problems
    }

    #[test]
    fn crashdump_is_accepted_with_its_timeout_and_the_default_dump_directory() {
        let c = parse(BASE, "w.yaml").unwrap();
        assert_eq!(c.fence.mode, FenceMode::Crashdump);
        let d = c.fence.crashdump.unwrap();
        assert_eq!(d.timeout, S(60));
        assert_eq!(d.dir, PathBuf::from("/var/crash"));
        let c = parse(&format!("{BASE}  crashdump-dir: /srv/dumps\n"), "w.yaml").unwrap();
        assert_eq!(c.fence.crashdump.unwrap().dir, PathBuf::from("/srv/dumps"));
    }

    #[test]
    fn a_timeout_not_longer_than_a_device_timeout_is_refused_where_it_is_written() {
        for short in ["5s", "10s"] {
            let p = problems(&BASE.replace(
                "crashdump-timeout: 60s",
                &format!("crashdump-timeout: {short}"),
            ));
            assert_eq!(p.len(), 1, "{p:#?}");
            assert_eq!(p[0].key, "fence.crashdump-timeout");
            assert!(
                p[0].message
                    .contains("not longer than the timeout 10s of devices[0]"),
                "{}",
                p[0].message
            );
            let at = p[0].location.unwrap();
            assert_eq!((at.line, at.column), (7, 3), "{at:?}");
        }
    }

    #[test]
    fn a_timeout_without_a_unit_over_the_maximum_or_in_fractions_is_refused() {
        let p = problems(&BASE.replace("60s", "60"));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].key, "fence.crashdump-timeout");
        assert!(
            p[0].message.contains("has no unit: write `60s`"),
            "{}",
            p[0].message
        );
        assert_eq!(p[0].location.map(|l| (l.line, l.column)), Some((7, 22)));
        let p = problems(&BASE.replace("60s", "6554s"));
        assert!(
            p[0].message.contains("6554s is over 6553s"),
            "{}",
            p[0].message
        );
        let p = problems(&BASE.replace("60s", "60.5s"));
        assert!(
            p[0].message.contains("whole number of seconds"),
            "{}",
            p[0].message
        );
    }

    #[test]
    fn crashdump_without_its_timeout_names_the_missing_key_at_its_section() {
        let p = problems(&BASE.replace("  crashdump-timeout: 60s\n", ""));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].key, "fence.crashdump-timeout");
        assert!(
            p[0].message.contains("`mode: crashdump` needs it"),
            "{}",
            p[0].message
        );
        assert_eq!(p[0].location.map(|l| l.line), Some(5), "at `fence:`");
    }

    #[test]
    fn the_crashdump_keys_need_the_crashdump_mode() {
        let p = problems(&format!(
            "{}  crashdump-dir: /var/crash\n",
            BASE.replace("mode: crashdump", "mode: watchdog")
        ));
        let keys: Vec<_> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["fence.crashdump-timeout", "fence.crashdump-dir"]);
        assert!(p[0].message.contains("only with `mode: crashdump`"));
        let p = problems(&format!("{BASE}  crashdump-dir: crash\n"));
        assert_eq!(p[0].key, "fence.crashdump-dir");
        assert!(p[0].message.contains("not an absolute path"));
    }

    #[test]
    fn the_bound_counts_one_interval_and_the_dump_reset_in_place_of_the_reset() {
        let c = parse(BASE, "w.yaml").unwrap();
        let b = bound::compute(&c, &[Some("i6300ESB timer".into())], None);
        assert_eq!(b.detection, S(0));
        assert_eq!(b.reset, S(10));
        let d = b.crashdump.as_ref().unwrap();
        assert_eq!((d.interval, d.reset_after), (S(2), S(60)));
        assert_eq!(
            b.total,
            S(62),
            "interval + crashdump-timeout, not + the reset too"
        );
        let text = b.to_string();
        assert!(text.starts_with("fence bound: 62.0 s\n"), "{text}");
        assert!(
            text.contains("crashdump: the fence pets once with crashdump-timeout 1m"),
            "{text}"
        );
        assert!(
            text.contains("fencing-watchdog-timeout=62s"),
            "the advice uses the larger B: {text}"
        );
        // iTCO_wdt resets after two expiries of the crashdump timeout, in 0.6 s ticks.
        let b = bound::compute(&c, &[Some("iTCO_wdt".into())], None);
        assert_eq!(
            b.crashdump.unwrap().reset_after,
            Duration::from_millis(120_000)
        );
    }

    #[test]
    fn softdog_resets_no_dump_kernel() {
        let two = BASE.replace(
            "    timeout: 10s\n",
            "    timeout: 10s\n  - path: /dev/watchdog1\n    timeout: 10s\n",
        );
        let c = parse(&two, "w.yaml").unwrap();
        let soft = Some(SOFTDOG_IDENTITY.to_string());
        let b = bound::compute(&c, &[soft.clone(), Some("iTCO_wdt".into())], None);
        let d = b.crashdump.unwrap();
        assert_eq!(d.reset_by.unwrap().0, PathBuf::from("/dev/watchdog1"));
        let b = bound::compute(&c, &[soft.clone(), soft], None);
        let d = b.crashdump.as_ref().unwrap();
        assert_eq!(d.reset_by, None);
        assert!(
            b.to_string().contains("NO device resets a dump kernel"),
            "{b}"
        );
    }
}
