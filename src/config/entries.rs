//! The YAML tree to the raw mirror, one piece at a time, so that one wrong value costs only
//! its own piece: every top-level key, every key of `fence` and `metrics`, and every device
//! entry is read on its own (check entries are read by [`super::check_keys`]). A key left
//! empty (`timeout:`) is a key not given. Problems carry the key's full path; the caller
//! adds the location.

use serde::de::{DeserializeOwned, Deserializer, Error as _, Visitor};
use serde_yaml::{Mapping, Value};

use super::locate::clean_path;
use super::raw::{RawConfig, RawDevice, RawFence, RawMetrics};
use super::wording::humanize;
use super::Problem;

/// `at.path`, `at[0]`, or whichever of the two is not empty.
pub fn join(at: &str, path: &str) -> String {
    match (at.is_empty(), path.is_empty()) {
        (_, true) => at.to_string(),
        (true, false) => path.to_string(),
        _ if path.starts_with('[') => format!("{at}{path}"),
        _ => format!("{at}.{path}"),
    }
}

fn push(problems: &mut Vec<Problem>, key: String, message: String) {
    problems.push(Problem {
        key,
        message,
        location: None,
    });
}

/// The raw config, or `None` when the document is not a mapping at all.
pub fn raw_config(doc: Value, problems: &mut Vec<Problem>) -> Option<RawConfig> {
    let mut map = match doc {
        Value::Null => Mapping::new(),
        Value::Mapping(m) => m,
        other => {
            push(
                problems,
                String::new(),
                format!(
                    "the config is a mapping with the keys {}, but this is {}",
                    keys::<RawConfig>(),
                    what(&other)
                ),
            );
            return None;
        }
    };
    map.retain(|_, v| !v.is_null());
    let devices = list(map.remove("devices"), "devices", problems);
    let checks = list(map.remove("checks"), "checks", problems);
    let fence = map
        .remove("fence")
        .map(|v| section::<RawFence>(v, "fence", problems))
        .unwrap_or_default();
    let metrics = map
        .remove("metrics")
        .map(|v| section::<RawMetrics>(v, "metrics", problems))
        .unwrap_or_default();
    Some(RawConfig {
        devices,
        checks,
        fence,
        metrics,
        ..fieldwise::<RawConfig>(map, "", problems)
    })
}

/// One device entry (`devices[i]`), or `None` with its problem.
pub fn device(i: usize, value: Value, problems: &mut Vec<Problem>) -> Option<RawDevice> {
    let at = format!("devices[{i}]");
    let Value::Mapping(mut map) = value else {
        push(
            problems,
            at,
            format!(
                "a device is a mapping with the keys {}, e.g. `- path: /dev/watchdog0`, but this is {}",
                keys::<RawDevice>(),
                what(&value)
            ),
        );
        return None;
    };
    map.retain(|_, v| !v.is_null());
    read(&Value::Mapping(map), &at, problems)
}

/// A key whose value is a list of entries (`devices`, `checks`), each read later.
fn list(value: Option<Value>, key: &str, problems: &mut Vec<Problem>) -> Vec<Value> {
    match value {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            let example = if key == "devices" {
                "`devices: [{path: /dev/watchdog0, timeout: 30s}]`"
            } else {
                "`checks: [{kind: writable, mounts: [/]}]`"
            };
            push(
                problems,
                key.to_string(),
                format!(
                    "`{key}` is a list (one `- ` entry per line, or {example}), but this is {}",
                    what(&other)
                ),
            );
            Vec::new()
        }
    }
}

/// A mapping whose every key is read on its own (`fence`, `metrics`).
fn section<T: DeserializeOwned + Default>(
    value: Value,
    key: &str,
    problems: &mut Vec<Problem>,
) -> T {
    match value {
        Value::Mapping(mut map) => {
            map.retain(|_, v| !v.is_null());
            fieldwise(map, key, problems)
        }
        other => {
            push(
                problems,
                key.to_string(),
                format!(
                    "`{key}` is a mapping with the keys {}, but this is {}",
                    keys::<T>(),
                    what(&other)
                ),
            );
            T::default()
        }
    }
}

/// Reads each key of `map` into `T` on its own, then the keys that were good together; a
/// key that is wrong is reported and left out (its default is used). A list that is wrong
/// is read one entry at a time so that each wrong entry is reported; it is still left out
/// whole, so that the rules never speak of its entries under shifted numbers.
fn fieldwise<T: DeserializeOwned + Default>(
    map: Mapping,
    at: &str,
    problems: &mut Vec<Problem>,
) -> T {
    let mut good = Mapping::new();
    for (k, v) in map {
        let Err((path, message)) = try_read::<T>(&single(k.clone(), v.clone())) else {
            good.insert(k, v);
            continue;
        };
        let Value::Sequence(items) = v else {
            push(problems, join(at, &path), message);
            continue;
        };
        let name = k.as_str().unwrap_or_default().to_string();
        let before = problems.len();
        for (i, item) in items.into_iter().enumerate() {
            if let Err((path, message)) =
                try_read::<T>(&single(k.clone(), Value::Sequence(vec![item])))
            {
                let path = path.replacen(&format!("{name}[0]"), &format!("{name}[{i}]"), 1);
                push(problems, join(at, &path), message);
            }
        }
        if problems.len() == before {
            // each entry is fine alone: the list as a whole is what is wrong
            push(problems, join(at, &path), message);
        }
    }
    read(&Value::Mapping(good), at, problems).unwrap_or_default()
}

/// A mapping of one key.
fn single(k: Value, v: Value) -> Value {
    let mut one = Mapping::new();
    one.insert(k, v);
    Value::Mapping(one)
}

/// `value` read as a `T`; a problem at `at` plus serde's path otherwise.
fn read<T: DeserializeOwned>(value: &Value, at: &str, problems: &mut Vec<Problem>) -> Option<T> {
    match try_read(value) {
        Ok(t) => Some(t),
        Err((path, message)) => {
            push(problems, join(at, &path), message);
            None
        }
    }
}

/// `value` read as a `T`, or serde's path to the problem and the problem in YAML's words.
fn try_read<T: DeserializeOwned>(value: &Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        (
            clean_path(&e.path().to_string()),
            humanize(&e.into_inner().to_string()),
        )
    })
}

/// What a value is, in YAML's words.
pub fn what(v: &Value) -> String {
    match v {
        Value::Null => "empty".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string `{}`", excerpt(s)),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged `{}`", excerpt(&t.tag.to_string())),
    }
}

fn excerpt(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    let more = if short.len() < s.len() { "..." } else { "" };
    format!("{}{more}", short.escape_debug())
}

/// The keys of a mapping type, as the operator writes them: `path`, `timeout`, ...
pub fn keys<T: DeserializeOwned>() -> String {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A deserializer that only notes the field names a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(Self::Error::custom("only field names"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(Self::Error::custom("only field names"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_of_a_mapping_come_from_its_type() {
        assert_eq!(keys::<RawDevice>(), "`path`, `timeout`, `pretimeout`");
        assert!(keys::<RawConfig>().starts_with("`devices`, `interval`"));
    }

    #[test]
    fn each_key_of_a_section_is_read_on_its_own() {
        let v: Value = serde_yaml::from_str(
            "mode: sometimes\nstall-threshold: 7\nisolate: [eth0]\nbogus: 1\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let f: RawFence = section(v, "fence", &mut problems);
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["fence.mode", "fence.stall-threshold", "fence.bogus"]);
        assert_eq!(f.isolate, ["eth0"]);
    }

    #[test]
    fn each_wrong_entry_of_a_list_is_reported() {
        let v: Value = serde_yaml::from_str(
            "kill: [corosync, 1234, {name: pacemaker-based, user: hacluster}, {name: x, usr: y}, [a]]\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let f: RawFence = section(v, "fence", &mut problems);
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["fence.kill[1]", "fence.kill[3].usr", "fence.kill[4]"]
        );
        assert!(f.kill.is_empty(), "a wrong list is left out whole");
    }

    #[test]
    fn join_writes_paths_as_serde_does() {
        assert_eq!(join("devices[0]", "timeout"), "devices[0].timeout");
        assert_eq!(join("fence", "kill[2]"), "fence.kill[2]");
        assert_eq!(join("fence.kill", "[2]"), "fence.kill[2]");
        assert_eq!(join("", "interval"), "interval");
        assert_eq!(join("devices[1]", ""), "devices[1]");
    }
}
