//! The first step of reading `watchdog.yaml`: its text to one YAML tree, with serde_yaml
//! (libyaml), before any key is given a meaning. What stops here is what nothing can be
//! recovered from: control characters (each at its line:column; libyaml says only a byte
//! offset) and a syntax error (at libyaml's line:column). A key written twice in one
//! mapping does not stop it: the first value is kept and each repetition is returned, so
//! that it can be reported at its own position with every other problem.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use serde_yaml::{Mapping, Value};

use super::locate::Location;
use super::wording::MAX_PROBLEMS;
use super::Problem;

/// A key written again in one mapping.
#[derive(Debug, PartialEq, Eq)]
pub struct Repeated {
    /// The path of the mapping (`checks[0]`; empty for the document).
    pub parent: String,
    /// The key as written (a string key), or as YAML (any other key).
    pub key: String,
    /// 0 for the second time the key is written, 1 for the third...
    pub nth: usize,
}

/// The document as one tree (null for an empty one) and the keys written twice; or the
/// problems that stop the reading.
pub fn read(text: &str) -> Result<(Value, Vec<Repeated>), Vec<Problem>> {
    let controls = control_characters(text);
    if !controls.is_empty() {
        return Err(controls);
    }
    let mut repeated = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let mut ctx = Ctx {
        path: String::new(),
        repeated: &mut repeated,
    };
    match (Tree { ctx: &mut ctx }).deserialize(de) {
        Ok(doc) => Ok((doc, repeated)),
        Err(e) => Err(vec![syntax_problem(text, &e)]),
    }
}

/// A YAML syntax error (or a second document): where libyaml saw it, in words.
fn syntax_problem(text: &str, e: &serde_yaml::Error) -> Problem {
    let full = e.to_string();
    let location = e
        .location()
        .filter(|l| l.line() > 1 || l.column() > 1 || l.index() > 0)
        .map(|l| Location {
            line: l.line(),
            column: l.column(),
        })
        .or_else(|| byte_position(&full).map(|at| location_of(text, at)));
    // libyaml writes its positions in the message; the location is printed in front.
    let message = match full.find(" at line ") {
        Some(cut) => {
            let tail = &full[cut + " at line ".len()..];
            let after = tail.find(',').map_or("", |c| &tail[c..]);
            format!("{}{after}", &full[..cut])
        }
        None => full,
    };
    let message = if message.contains("more than one document") {
        "the config holds more than one YAML document (a `---` line after the first): keep one"
            .into()
    } else {
        format!("YAML syntax error: {message} (look at indentation, quotes and brackets here or just before)")
    };
    Problem {
        key: String::new(),
        message,
        location,
    }
}

/// libyaml's "... at position N" (a byte offset), if the message has one.
fn byte_position(message: &str) -> Option<usize> {
    let (_, tail) = message.rsplit_once(" at position ")?;
    tail.trim_end().parse().ok()
}

/// The 1-based line and column (in characters) of byte `at`.
fn location_of(text: &str, at: usize) -> Location {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    Location {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// Whether YAML allows `c` in a document (what libyaml's reader refuses, it refuses first).
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Every control character in the text, each at its line:column (the first
/// [`MAX_PROBLEMS`], then how many more).
fn control_characters(text: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut more = 0usize;
    let (mut line, mut column) = (1, 1);
    for c in text.chars() {
        if !printable(c) {
            if out.len() < MAX_PROBLEMS {
                out.push(Problem {
                    key: String::new(),
                    message: format!(
                        "control character U+{0:04X} is not allowed in YAML: delete it, or write it as an escape inside double quotes (`\\u{0:04X}`)",
                        u32::from(c)
                    ),
                    location: Some(Location { line, column }),
                });
            } else {
                more += 1;
            }
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    if more > 0 {
        out.push(Problem {
            key: String::new(),
            message: format!("and {more} more control characters"),
            location: None,
        });
    }
    out
}

struct Ctx<'a> {
    /// The path of the node being read, grown and cut as the reading goes down and up.
    path: String,
    repeated: &'a mut Vec<Repeated>,
}

/// serde_yaml's own `Value`, built the same way, except that a repeated key is recorded
/// instead of ending the reading.
struct Tree<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
}

impl<'de> DeserializeSeed<'de> for Tree<'_, '_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

/// How a key appears in a path.
pub fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

impl<'de> Visitor<'de> for Tree<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Number(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Number(u.into()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Number(f.into()))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        self.deserialize(de)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let len = self.ctx.path.len();
            self.ctx.path.push_str(&format!("[{}]", out.len()));
            let item = items.next_element_seed(Tree {
                ctx: &mut *self.ctx,
            });
            self.ctx.path.truncate(len);
            match item? {
                Some(v) => out.push(v),
                None => return Ok(Value::Sequence(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        let mut seen_again: std::collections::HashMap<Value, usize> = Default::default();
        while let Some(key) = entries.next_key::<Value>()? {
            let len = self.ctx.path.len();
            let text = key_text(&key);
            if len > 0 {
                self.ctx.path.push('.');
            }
            self.ctx.path.push_str(&text);
            let value = entries.next_value_seed(Tree {
                ctx: &mut *self.ctx,
            });
            self.ctx.path.truncate(len);
            let value = value?;
            if out.contains_key(&key) {
                let nth = seen_again.entry(key).or_insert(0);
                if self.ctx.repeated.len() < MAX_PROBLEMS {
                    self.ctx.repeated.push(Repeated {
                        parent: self.ctx.path.clone(),
                        key: text,
                        nth: *nth,
                    });
                }
                *nth += 1;
            } else {
                out.insert(key, value);
            }
        }
        Ok(Value::Mapping(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use serde::Deserialize;
        let de = serde::de::value::EnumAccessDeserializer::new(data);
        Ok(Value::Tagged(Box::new(
            serde_yaml::value::TaggedValue::deserialize(de)?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_kept_once_and_listed() {
        let (doc, rep) = read("a: 1\nb:\n  c: 2\n  c: 3\n  c: 4\na: 5\n").unwrap();
        assert_eq!(doc["a"], Value::from(1));
        assert_eq!(doc["b"]["c"], Value::from(2));
        let got: Vec<_> = rep
            .iter()
            .map(|r| (r.parent.as_str(), r.key.as_str(), r.nth))
            .collect();
        assert_eq!(got, [("b", "c", 0), ("b", "c", 1), ("", "a", 0)]);
    }

    #[test]
    fn control_characters_are_each_placed_at_their_line_and_column() {
        let p = read("a: 1\nb: x\u{1}y\u{7f}\n# \u{0}\n").unwrap_err();
        let at: Vec<_> = p
            .iter()
            .map(|p| p.location.map(|l| (l.line, l.column)))
            .collect();
        assert_eq!(at, [Some((2, 5)), Some((2, 7)), Some((3, 3))]);
        assert!(p[0].message.contains("U+0001"), "{}", p[0].message);
        assert!(read("a: \"tab\there é ✓\"\r\n").is_ok());
    }

    #[test]
    fn a_syntax_error_says_where_without_repeating_it() {
        let p = read("devices:\n  - path: /dev/watchdog0\n   timeout: [30s\n").unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].location.map(|l| l.line), Some(3), "{p:?}");
        assert!(!p[0].message.contains(" at line 3"), "{}", p[0].message);
        let p = read("a: 1\n---\na: 2\n").unwrap_err();
        assert!(p[0].message.contains("more than one"), "{}", p[0].message);
    }

    #[test]
    fn a_byte_offset_becomes_a_line_and_column() {
        assert_eq!(location_of("ab\ncé\nx", 6), Location { line: 2, column: 3 });
        assert_eq!(byte_position("bad at position 105"), Some(105));
    }
}
