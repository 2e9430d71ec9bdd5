//! The built-in checks, one module each, and the registry that turns a check's keys in
//! `watchdog.yaml` into settings (strict: an unknown key is an error) and settings into a
//! running [`Check`].
//!
//! The keys every check shares (`kind`, `every`, `deadline`, `tolerance`) are taken out by
//! the config layer before [`parse_settings`] sees the rest.

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
pub const KINDS: &[&str] = &["writable"];

/// The validated settings of one check, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckSettings {
    Writable(writable::Settings),
}

/// Reads the kind-specific keys of one check. Unknown keys and wrong types are errors that
/// name the key.
pub fn parse_settings(kind: &str, keys: serde_yaml::Value) -> Result<CheckSettings, KeyProblem> {
    match kind {
        "writable" => strict(keys).map(CheckSettings::Writable),
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
        }
    }

    /// Consecutive failures tolerated before the lease is withheld, when the config says none.
    pub fn default_tolerance(&self) -> u32 {
        match self {
            CheckSettings::Writable(_) => 0,
        }
    }

    /// A short name for tables and logs, e.g. `writable /,/var`.
    pub fn label(&self) -> String {
        match self {
            CheckSettings::Writable(s) => s.label(),
        }
    }

    /// Rules that need no running system (paths absolute, values in range). Never touches a device.
    pub fn problems(&self) -> Vec<KeyProblem> {
        match self {
            CheckSettings::Writable(s) => s.problems(),
        }
    }

    /// Prepares the check to run on the node seen through `root`: opens what it must open at
    /// start-up (probe files, pidfds), so that a run later needs no new file.
    pub fn build(&self, root: &Root) -> Result<Box<dyn Check>, String> {
        match self {
            CheckSettings::Writable(s) => Ok(Box::new(writable::Writable::new(s.clone(), root)?)),
        }
    }
}
