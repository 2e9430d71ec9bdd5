//! The built-in checks, one module each, and the registry that turns a check's keys in
//! `watchdog.yaml` into settings (strict: an unknown key is an error) and settings into a
//! running [`Check`].
//!
//! Every check module has the same shape: a `Settings` struct (the serde mirror of its keys)
//! that implements [`CheckKind`], and a check type built from it at start-up. Adding a check
//! kind is adding a module and one line to the registry at the foot of this file.
//!
//! The keys every check shares (`kind`, `label`, `every`, `deadline`, `tolerance`) are taken
//! out by the config layer before [`parse_settings`] sees the rest. This is the one place
//! that reads a check's raw YAML: each kind only ever sees its own typed `Settings`.

pub mod block_io;
pub mod command;
pub mod drbd;
pub mod load;
pub mod memory;
pub mod process;
pub mod writable;

use std::fmt::Debug;
use std::time::Duration;

use serde::de::DeserializeOwned;

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

/// One kind of check, as its settings know it.
pub trait CheckKind: DeserializeOwned + Clone + Debug + PartialEq {
    /// The kind as written in `watchdog.yaml`.
    const KIND: &'static str;

    /// A short name for tables and logs, e.g. `writable /,/var`.
    fn label(&self) -> String;

    /// Rules that need no running system (paths absolute, values in range). Never touches a
    /// device.
    fn problems(&self) -> Vec<KeyProblem>;

    /// Prepares the check to run on the node seen through `root`: opens what it must open at
    /// start-up (probe files), so that a run later needs no new file.
    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String>;

    /// Prepares the check when its `when:` condition turns true after start-up: it starts
    /// on what is there now, and what the node's record held before that moment is not held
    /// against it (an ext4 error that another node recorded on a filesystem this one just
    /// took over). By default the same as [`CheckKind::build`].
    fn build_on_condition(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        self.build(root)
    }

    /// Consecutive failures tolerated before the lease is withheld, when the config says none.
    fn default_tolerance(&self) -> u32 {
        0
    }

    /// How long a fault can exist before a run of this check can see it at all (a disk is
    /// stuck only after `stuck-after` without completions). Part of the fence bound.
    fn time_to_see(&self) -> Duration {
        Duration::ZERO
    }

    /// A time limit the check enforces itself, with its key: it must fit within the check's
    /// `deadline` (`command`'s `timeout`).
    fn own_time_limit(&self) -> Option<(&'static str, Duration)> {
        None
    }

    /// Fills in what defaults to a share of the check's schedule (`command`'s `timeout`,
    /// from its `deadline`), once the schedule is known.
    fn settle_defaults(&mut self, schedule: &crate::health::Schedule) {
        let _ = schedule;
    }
}

/// `path` with `.` and `..` worked out and repeated slashes gone, without touching the
/// filesystem: two spellings of one path compare equal.
pub fn normalize(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::{Component, Path, PathBuf};
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                if out.as_os_str().is_empty() || out.ends_with("..") {
                    out.push("..");
                } else if out != Path::new("/") {
                    out.pop();
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The problem with a path key that holds a `..` component (the file it names may not be
/// the one meant), if it does.
pub fn dotdot_problem(key: &str, path: &std::path::Path) -> Option<KeyProblem> {
    path.components()
        .any(|c| c == std::path::Component::ParentDir)
        .then(|| {
            KeyProblem::new(
                key,
                format!(
                    "`{}` holds a `..` component: write the path without it, e.g. `{}`",
                    path.display(),
                    normalize(path).display()
                ),
            )
        })
}

/// Deserializes with the path of the failing key kept, so the config layer can locate it.
fn strict<T: DeserializeOwned>(keys: serde_yaml::Value) -> Result<T, KeyProblem> {
    serde_path_to_error::deserialize(keys).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." { String::new() } else { path };
        KeyProblem::new(key, e.into_inner().to_string())
    })
}

/// Builds [`CheckSettings`], [`KINDS`] and [`parse_settings`] from one line per kind.
macro_rules! registry {
    ($($variant:ident => $settings:ty),+ $(,)?) => {
        /// The validated settings of one check, by kind.
        #[derive(Clone, Debug, PartialEq)]
        pub enum CheckSettings {
            $($variant($settings),)+
        }

        /// Every kind of check `watchdog.yaml` may name.
        pub const KINDS: &[&str] = &[$(<$settings as CheckKind>::KIND,)+];

        /// Reads the kind-specific keys of one check. Unknown keys and wrong types are errors
        /// that name the key. A check with no keys of its own may come as YAML null.
        pub fn parse_settings(
            kind: &str,
            keys: serde_yaml::Value,
        ) -> Result<CheckSettings, KeyProblem> {
            let keys = match keys {
                serde_yaml::Value::Null => serde_yaml::Value::Mapping(serde_yaml::Mapping::new()),
                other => other,
            };
            $(
                if kind == <$settings as CheckKind>::KIND {
                    return strict(keys).map(CheckSettings::$variant);
                }
            )+
            Err(KeyProblem::new(
                "kind",
                format!("unknown check kind `{kind}`; known kinds: {}", KINDS.join(", ")),
            ))
        }

        impl CheckSettings {
            /// The settings of whichever kind this is.
            fn kind_settings(&self) -> &dyn DynKind {
                match self {
                    $(CheckSettings::$variant(s) => s,)+
                }
            }

            fn kind_settings_mut(&mut self) -> &mut dyn DynKind {
                match self {
                    $(CheckSettings::$variant(s) => s,)+
                }
            }
        }
    };
}

/// [`CheckKind`] as a trait object, for dispatch over [`CheckSettings`].
trait DynKind {
    fn kind(&self) -> &'static str;
    fn label(&self) -> String;
    fn problems(&self) -> Vec<KeyProblem>;
    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String>;
    fn build_on_condition(&self, root: &Root) -> Result<Box<dyn Check>, String>;
    fn default_tolerance(&self) -> u32;
    fn time_to_see(&self) -> Duration;
    fn own_time_limit(&self) -> Option<(&'static str, Duration)>;
    fn settle_defaults(&mut self, schedule: &crate::health::Schedule);
}

impl<K: CheckKind> DynKind for K {
    fn kind(&self) -> &'static str {
        K::KIND
    }
    fn label(&self) -> String {
        CheckKind::label(self)
    }
    fn problems(&self) -> Vec<KeyProblem> {
        CheckKind::problems(self)
    }
    fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        CheckKind::build(self, root)
    }
    fn build_on_condition(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        CheckKind::build_on_condition(self, root)
    }
    fn default_tolerance(&self) -> u32 {
        CheckKind::default_tolerance(self)
    }
    fn time_to_see(&self) -> Duration {
        CheckKind::time_to_see(self)
    }
    fn own_time_limit(&self) -> Option<(&'static str, Duration)> {
        CheckKind::own_time_limit(self)
    }
    fn settle_defaults(&mut self, schedule: &crate::health::Schedule) {
        CheckKind::settle_defaults(self, schedule)
    }
}

impl CheckSettings {
    /// The kind as written in `watchdog.yaml`.
    pub fn kind(&self) -> &'static str {
        self.kind_settings().kind()
    }

    /// Consecutive failures tolerated before the lease is withheld, when the config says none.
    pub fn default_tolerance(&self) -> u32 {
        self.kind_settings().default_tolerance()
    }

    /// A short name for tables and logs, e.g. `writable /,/var`.
    pub fn label(&self) -> String {
        self.kind_settings().label()
    }

    /// Rules that need no running system (paths absolute, values in range).
    pub fn problems(&self) -> Vec<KeyProblem> {
        self.kind_settings().problems()
    }

    /// How long a fault can exist before a run of this check can see it at all.
    pub fn time_to_see(&self) -> Duration {
        self.kind_settings().time_to_see()
    }

    /// A time limit the check enforces itself, with the key that sets it.
    pub fn own_time_limit(&self) -> Option<(&'static str, Duration)> {
        self.kind_settings().own_time_limit()
    }

    /// Fills in the defaults that depend on the check's schedule.
    pub fn settle_defaults(&mut self, schedule: &crate::health::Schedule) {
        self.kind_settings_mut().settle_defaults(schedule)
    }

    /// Prepares the check when its `when:` condition turns true after start-up.
    pub fn build_on_condition(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        self.kind_settings().build_on_condition(root)
    }

    /// Prepares the check to run on the node seen through `root`.
    pub fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        self.kind_settings().build(root)
    }
}

// The registry: one line per kind.
registry! {
    Writable => writable::Settings,
    BlockIo => block_io::Settings,
    Process => process::Settings,
    Load => load::Settings,
    Memory => memory::Settings,
    Command => command::Settings,
    Drbd => drbd::Settings,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: &str, yaml: &str) -> Result<CheckSettings, KeyProblem> {
        parse_settings(kind, serde_yaml::from_str(yaml).unwrap())
    }

    /// The smallest valid keys for each kind.
    const MINIMAL: [(&str, &str); 7] = [
        ("writable", "{}"),
        ("block-io", "{}"),
        ("process", "name: corosync"),
        ("load", "max-load-1: 24"),
        ("memory", "min-available: 256MiB"),
        ("command", "argv: [/bin/true]"),
        ("drbd", "{}"),
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
