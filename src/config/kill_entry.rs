//! One `fence.kill` entry: a process name (owner root), or `{name: corosync, user: hacluster}`
//! for a process of another owner (Pacemaker's daemons run as hacluster). The user is a
//! name or a numeric uid, resolved at start-up like the `process` check's `user` key.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::system::users;

/// A process the fence SIGKILLs: its name, and its owner as written (`None`: root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillEntry {
    pub name: String,
    pub user: Option<String>,
}

impl KillEntry {
    /// The key path of this entry's name in the config: `fence.kill[1]` for a plain name,
    /// `fence.kill[1].name` for a mapping.
    fn name_key(&self, i: usize) -> String {
        if self.user.is_some() {
            format!("fence.kill[{i}].name")
        } else {
            format!("fence.kill[{i}]")
        }
    }
}

/// What is wrong with entry `i`, one problem per field.
pub(super) fn problems(i: usize, entry: &KillEntry, problem: &mut impl FnMut(String, String)) {
    let name = &entry.name;
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        problem(
            entry.name_key(i),
            format!(
                "`{}` is not a process name: give the name as `ps -o comm` shows it (no path)",
                name.escape_debug()
            ),
        );
    }
    if let Some(why) = entry.user.as_deref().and_then(users::bad_user_key) {
        problem(format!("fence.kill[{i}].user"), why);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Owned {
    name: String,
    user: Option<UserKey>,
}

/// A user as a name or a bare number (`user: 189` and `user: '189'` alike).
struct UserKey(String);

impl<'de> Deserialize<'de> for UserKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UserKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a user name (e.g. hacluster) or a numeric uid")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<UserKey, E> {
                Ok(UserKey(s.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<UserKey, E> {
                Ok(UserKey(n.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for KillEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KillEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a process name, or a mapping with the owner, e.g. `{name: pacemaker-based, user: hacluster}`",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KillEntry, E> {
                Ok(KillEntry {
                    name: s.to_string(),
                    user: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KillEntry, A::Error> {
                let o = Owned::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let user = o.user.ok_or_else(|| {
                    de::Error::custom(
                        "`user` is missing: write the owner (`user: hacluster` or a uid), or give the plain name for root's processes",
                    )
                })?;
                Ok(KillEntry {
                    name: o.name,
                    user: Some(user.0),
                })
            }
        }
        d.deserialize_any(V)
    }
}
