//! The serde mirror of `watchdog.yaml`: exactly what the operator wrote, strict (an unknown
//! key at any level is an error), before any rule is applied. [`super::Config`] is the
//! checked plan built from it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::units::HumanDuration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    /// Each device is kept as YAML and read on its own (`entries::device`), so that one
    /// wrong entry does not hide the others.
    #[serde(default)]
    pub devices: Vec<serde_yaml::Value>,
    pub interval: Option<HumanDuration>,
    pub on_exit: Option<OnExit>,
    /// How long READY=1 waits on a boot after one that ended armed (absent: the recorded B).
    pub rejoin_delay: Option<HumanDuration>,
    /// The longest `wdfeed pause` (absent: 1h).
    pub max_pause: Option<HumanDuration>,
    /// Boots in a row that ended armed before READY=1 waits for an operator.
    pub rejoin_budget: Option<RawBudget>,
    #[serde(default)]
    pub fence: RawFence,
    /// Each check is kept as YAML until its `kind` is known: every kind has a strict settings
    /// struct of its own (serde cannot enforce unknown keys through an internally tagged enum
    /// and keep the key's path).
    #[serde(default)]
    pub checks: Vec<serde_yaml::Value>,
    #[serde(default)]
    pub metrics: RawMetrics,
}

/// `rejoin-budget:`: `{fences: 3, within: 1h}` (absent keys: those).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawBudget {
    pub fences: Option<u32>,
    pub within: Option<HumanDuration>,
}

/// `metrics:`: the node_exporter textfile-collector file (absent: none).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawMetrics {
    pub textfile: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDevice {
    pub path: PathBuf,
    pub timeout: Option<HumanDuration>,
    pub pretimeout: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFence {
    pub mode: Option<FenceMode>,
    /// A name (owner root) or `{name, user}` per entry.
    #[serde(default)]
    pub kill: Vec<super::kill_entry::KillEntry>,
    pub stall_threshold: Option<HumanDuration>,
    #[serde(default)]
    pub isolate: Vec<String>,
    pub handover_file: Option<PathBuf>,
    /// `mode: crashdump`: the device timeout while the dump kernel saves the dump.
    pub crashdump_timeout: Option<HumanDuration>,
    /// `mode: crashdump`: where the dump kernel saves dumps (kdump-tools' KDUMP_COREDIR).
    pub crashdump_dir: Option<PathBuf>,
}

/// The keys every check has, whatever its kind.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RawCommon {
    /// How logs and tables call the check (default: its own label, e.g. `writable /`).
    pub label: Option<String>,
    pub every: Option<HumanDuration>,
    pub deadline: Option<HumanDuration>,
    pub tolerance: Option<u32>,
    /// `when:`: the one condition the check follows, read by [`crate::health::condition::parse`].
    pub when: Option<serde_yaml::Value>,
}

/// The common keys of a check, taken out before its kind-specific keys are read.
pub const COMMON_KEYS: &[&str] = &["kind", "label", "every", "deadline", "tolerance", "when"];

/// What a clean exit (SIGTERM, SIGINT) does with the devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnExit {
    /// Write the magic 'V' and close: the watchdog stops (unless the driver has nowayout).
    Disarm,
    /// Close without 'V': the hardware resets the node unless something reopens it in time.
    KeepArmed,
}

/// How the node is fenced once a check fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FenceMode {
    /// Stop petting: the hardware resets the node within its timeout.
    Watchdog,
    /// reboot(2) at once, without sync.
    Reboot,
    /// A longer device timeout, one pet, then a kernel crash into the loaded crash kernel,
    /// which saves a dump; the hardware resets a dump kernel that takes too long.
    Crashdump,
}
