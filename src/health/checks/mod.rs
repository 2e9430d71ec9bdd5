//! The built-in checks, one module each, and the registry that turns a check's keys in
//! `watchdog.yaml` into settings (strict: an unknown key is an error) and settings into a
//! running [`Check`].
//!
//! Every check module has the same shape: a `Settings` struct (serde mirror of its keys, with
//! `label()` and `problems()` for static rules) and a check type built from it at start-up.
//! Adding a check is adding a module and one arm to each match below.
//!
//! The keys every check shares (`kind`, `every`, `deadline`, `tolerance`) are taken out by
//! the config layer before [`parse_settings`] sees the rest.

pub mod block_io;
pub mod command;
pub mod load;
pub mod memory;
pub mod process;
pub mod size;
pub mod writable;

use crate::health::Check;
use crate::system::Root;

/// A problem found in one check's settings: the key (relative to the check) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProblem {
    /// Path of the key inside the check, e.g. `mounts[0]` or `probe`; empty for the check itself.
    pub key: String,
    pub message: String,
}

impl KeyProblem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        KeyProblem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every kind of check `watchdog.yaml` may name.
pub const KINDS: &[&str] = &[
    "writable", "block-io", "process", "load", "memory", "command",
];

/// The validated settings of one check, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckSettings {
    Writable(writable::Settings),
    BlockIo(block_io::Settings),
    Process(process::Settings),
    Load(load::Settings),
    Memory(memory::Settings),
    Command(command::Settings),
}

/// Reads the kind-specific keys of one check. Unknown keys and wrong types are errors that
/// name the key. A check with no keys of its own may come as YAML null.
pub fn parse_settings(kind: &str, keys: serde_yaml::Value) -> Result<CheckSettings, KeyProblem> {
    let keys = match keys {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(serde_yaml::Mapping::new()),
        other => other,
    };
    match kind {
        "writable" => strict(keys).map(CheckSettings::Writable),
        "block-io" => strict(keys).map(CheckSettings::BlockIo),
        "process" => strict(keys).map(CheckSettings::Process),
        "load" => strict(keys).map(CheckSettings::Load),
        "memory" => strict(keys).map(CheckSettings::Memory),
        "command" => strict(keys).map(CheckSettings::Command),
        other => Err(KeyProblem::new(
            "kind",
            format!(
                "unknown check kind `{other}`; known kinds: {}",
                KINDS.join(", ")
            ),
        )),
    }
}

/// Deserializes with the path of the failing key kept, so the config layer can locate it.
fn strict<T: serde::de::DeserializeOwned>(keys: serde_yaml::Value) -> Result<T, KeyProblem> {
    serde_path_to_error::deserialize(keys).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." { String::new() } else { path };
        KeyProblem::new(key, e.into_inner().to_string())
    })
}

impl CheckSettings {
    /// The kind as written in `watchdog.yaml`.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSettings::Writable(_) => "writable",
            CheckSettings::BlockIo(_) => "block-io",
            CheckSettings::Process(_) => "process",
            CheckSettings::Load(_) => "load",
            CheckSettings::Memory(_) => "memory",
            CheckSettings::Command(_) => "command",
        }
    }

    /// Consecutive failures tolerated before the lease is withheld, when the config says none.
    /// `block-io` tolerates one: a disk may pass a single sample mid-failover of its path.
    pub fn default_tolerance(&self) -> u32 {
        match self {
            CheckSettings::BlockIo(_) => 1,
            CheckSettings::Writable(_)
            | CheckSettings::Process(_)
            | CheckSettings::Load(_)
            | CheckSettings::Memory(_)
            | CheckSettings::Command(_) => 0,
        }
    }

    /// A short name for tables and logs, e.g. `writable /,/var`.
    pub fn label(&self) -> String {
        match self {
            CheckSettings::Writable(s) => s.label(),
            CheckSettings::BlockIo(s) => s.label(),
            CheckSettings::Process(s) => s.label(),
            CheckSettings::Load(s) => s.label(),
            CheckSettings::Memory(s) => s.label(),
            CheckSettings::Command(s) => s.label(),
        }
    }

    /// Rules that need no running system (paths absolute, values in range). Never touches a device.
    pub fn problems(&self) -> Vec<KeyProblem> {
        match self {
            CheckSettings::Writable(s) => s.problems(),
            CheckSettings::BlockIo(s) => s.problems(),
            CheckSettings::Process(s) => s.problems(),
            CheckSettings::Load(s) => s.problems(),
            CheckSettings::Memory(s) => s.problems(),
            CheckSettings::Command(s) => s.problems(),
        }
    }

    /// A time limit the check enforces itself and that must fit within the check's
    /// `deadline` (the config layer should require `limit < deadline`): `command`'s `timeout`.
    /// How long a fault can exist before a run of this check can see it at all: a disk is
    /// stuck only after `stuck-after` without completions, a process in D state fails only
    /// after `max-uninterruptible`, a stale file only after `max-age`. Part of the fence bound.
    pub fn time_to_see(&self) -> std::time::Duration {
        match self {
            CheckSettings::BlockIo(s) => s.stuck_after.get(),
            CheckSettings::Process(s) => {
                let d_state = s.max_uninterruptible.get();
                s.max_age.map_or(d_state, |a| d_state.max(a.get()))
            }
            _ => std::time::Duration::ZERO,
        }
    }

    pub fn own_time_limit(&self) -> Option<std::time::Duration> {
        match self {
            CheckSettings::Command(s) => Some(s.timeout.get()),
            _ => None,
        }
    }

    /// Prepares the check to run on the node seen through `root`: opens what it must open at
    /// start-up (probe files), so that a run later needs no new file.
    pub fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        Ok(match self {
            CheckSettings::Writable(s) => Box::new(writable::Writable::new(s.clone(), root)?),
            CheckSettings::BlockIo(s) => Box::new(block_io::BlockIo::new(s.clone(), root)?),
            CheckSettings::Process(s) => Box::new(process::Process::new(s.clone(), root)?),
            CheckSettings::Load(s) => Box::new(load::Load::new(s.clone(), root)?),
            CheckSettings::Memory(s) => Box::new(memory::Memory::new(s.clone(), root)?),
            // Runs on this machine whatever the root: a command is not a file to read.
            CheckSettings::Command(s) => Box::new(command::CommandCheck::new(s.clone())?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: &str, yaml: &str) -> Result<CheckSettings, KeyProblem> {
        parse_settings(kind, serde_yaml::from_str(yaml).unwrap())
    }

    /// The smallest valid keys for each kind.
    const MINIMAL: [(&str, &str); 6] = [
        ("writable", "{}"),
        ("block-io", "{}"),
        ("process", "name: corosync"),
        ("load", "max-load-1: 24"),
        ("memory", "min-available: 256MiB"),
        ("command", "argv: [/bin/true]"),
    ];

    #[test]
    fn every_kind_is_registered_with_its_minimal_keys() {
        assert_eq!(KINDS.len(), MINIMAL.len());
        for (kind, yaml) in MINIMAL {
            assert!(KINDS.contains(&kind));
            let s = parse(kind, yaml).unwrap_or_else(|e| panic!("{kind}: {e:?}"));
            assert_eq!(s.kind(), kind);
            assert!(s.problems().is_empty(), "{kind}: {:?}", s.problems());
            assert!(s.label().starts_with(kind), "{}", s.label());
        }
    }

    #[test]
    fn an_unknown_key_is_rejected_and_named_for_every_kind() {
        for (kind, yaml) in MINIMAL {
            let with_typo = format!("{yaml}\n")
                .replace("{}\n", "")
                .trim_end()
                .to_string()
                + "\nstuck_after: 3s\n";
            let e = parse(kind, &with_typo).unwrap_err();
            assert_eq!(e.key, "stuck_after", "{kind}: {e:?}");
            assert!(
                e.message.contains("unknown field `stuck_after`"),
                "{kind}: {e:?}"
            );
        }
    }

    #[test]
    fn nested_and_typed_errors_carry_their_key_path() {
        let e = parse("writable", "mounts: [/, 3]").unwrap_err();
        assert_eq!(e.key, "mounts[1]", "{e:?}");
        let e = parse("block-io", "stuck-after: 30").unwrap_err();
        assert_eq!(e.key, "stuck-after");
        assert!(e.message.contains("write `30s`"), "{e:?}");
        let e = parse("memory", "min-available: 256").unwrap_err();
        assert_eq!(e.key, "min-available");
        let e = parse("memory", "{}").unwrap_err();
        assert!(e.message.contains("min-available"), "{e:?}");
        let e = parse("frobnicate", "{}").unwrap_err();
        assert_eq!(e.key, "kind");
    }

    #[test]
    fn a_check_without_keys_may_be_null() {
        assert!(parse_settings("writable", serde_yaml::Value::Null).is_ok());
        assert!(parse_settings("block-io", serde_yaml::Value::Null).is_ok());
    }

    #[test]
    fn default_tolerances() {
        for (kind, yaml) in MINIMAL {
            let want = if kind == "block-io" { 1 } else { 0 };
            assert_eq!(
                parse(kind, yaml).unwrap().default_tolerance(),
                want,
                "{kind}"
            );
        }
    }
}
