//! A check's entry in `watchdog.yaml`, split in two: the keys every check shares (read here
//! into [`RawCommon`]) and the kind's own keys, handed to the check registry. The one place
//! in the config layer that reads a check's raw YAML.

use super::locate::clean_path;
use super::raw::{self, RawCommon};
use super::wording::humanize;
use super::Problem;
use crate::health::checks::{self, CheckSettings};

/// Reads one check's common keys and its kind-specific settings; problems carry paths
/// relative to the document (`checks[2].every`).
pub(super) fn parse_check(
    i: usize,
    value: serde_yaml::Value,
    problems: &mut Vec<Problem>,
) -> Option<(RawCommon, CheckSettings)> {
    let at = |key: &str| {
        if key.is_empty() {
            format!("checks[{i}]")
        } else {
            format!("checks[{i}].{key}")
        }
    };
    let mut push = |key: &str, message: String| {
        problems.push(Problem {
            key: at(key),
            message,
            location: None,
        })
    };
    let serde_yaml::Value::Mapping(mut map) = value else {
        push(
            "",
            "a check is a mapping with at least `kind:`, e.g. `- kind: writable`".into(),
        );
        return None;
    };
    let kind = match map.remove("kind") {
        Some(serde_yaml::Value::String(k)) => k,
        Some(_) => {
            push(
                "kind",
                format!("`kind` is a name, one of: {}", checks::KINDS.join(", ")),
            );
            return None;
        }
        None => {
            push(
                "",
                format!(
                    "a check needs `kind:`, one of: {}",
                    checks::KINDS.join(", ")
                ),
            );
            return None;
        }
    };
    let mut common_map = serde_yaml::Mapping::new();
    for key in raw::COMMON_KEYS {
        if let Some(v) = map.remove(*key) {
            common_map.insert((*key).into(), v);
        }
    }
    let common = match serde_path_to_error::deserialize::<_, RawCommon>(serde_yaml::Value::Mapping(
        common_map,
    )) {
        Ok(c) => Some(c),
        Err(e) => {
            let key = clean_path(&e.path().to_string());
            push(&key, humanize(&e.into_inner().to_string()));
            None
        }
    };
    let settings = match checks::parse_settings(&kind, serde_yaml::Value::Mapping(map)) {
        Ok(s) => Some(s),
        Err(p) => {
            push(&p.key, humanize(&p.message));
            None
        }
    };
    Some((common?, settings?))
}
