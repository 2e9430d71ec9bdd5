//! Where each key of a YAML document stands (line and column), so that every problem found
//! in `watchdog.yaml`, by serde or by the validation rules after it, can name `file:line:col`.
//!
//! serde_yaml keeps positions only for the errors it raises itself; this index is built once
//! from the same text with yaml-rust2's event parser, which reports a mark for every node.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// Key paths (`checks[1].stuck-after`, `devices[0]`) to where they stand in the text.
#[derive(Debug, Default)]
pub struct LocationIndex {
    marks: HashMap<String, Location>,
}

impl LocationIndex {
    /// Indexes `text`; a document that does not parse gives an empty index (serde reports
    /// the syntax error with its own position).
    pub fn build(text: &str) -> Self {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut walker, false).is_err() {
            return LocationIndex::default();
        }
        LocationIndex {
            marks: walker.marks,
        }
    }

    /// Where `path` stands; for a path that is not in the text (a missing key), the nearest
    /// enclosing node that is.
    pub fn find(&self, path: &str) -> Option<Location> {
        let mut p = path;
        loop {
            if let Some(loc) = self.marks.get(p) {
                return Some(*loc);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// serde_path_to_error says `.` for the document itself.
pub fn clean_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_string()
    }
}

enum Frame {
    /// `located` turns true once the mapping's own position is known: that of its first key
    /// (the parser's mark for a block mapping's start is not where a reader would look).
    Map {
        key: Option<String>,
        located: bool,
    },
    Seq {
        index: usize,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    marks: HashMap<String, Location>,
}

impl Walker {
    fn path(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Map { key: Some(k), .. } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Frame::Map { key: None, .. } => {}
                Frame::Seq { index } => out.push_str(&format!("[{index}]")),
            }
        }
        out
    }

    fn record(&mut self, mark: Marker) {
        let path = self.path();
        if !path.is_empty() {
            self.marks.entry(path).or_insert(Location {
                line: mark.line(),
                column: mark.col() + 1,
            });
        }
    }

    /// True when the next node is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    /// A value node has been read completely: the parent moves on.
    fn finish_node(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) if self.expecting_key() => {
                let mut first_key = false;
                if let Some(Frame::Map { located, .. }) = self.stack.last_mut() {
                    first_key = !*located;
                    *located = true;
                }
                if first_key {
                    self.record(mark);
                }
                if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                    *key = Some(text);
                }
                self.record(mark);
            }
            Event::Scalar(..) | Event::Alias(_) => {
                self.record(mark);
                self.finish_node();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) if self.expecting_key() => {
                // A complex key: give it a name no path will ask for and walk on.
                if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                    *key = Some("?".into());
                }
                let frame = if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map {
                        key: None,
                        located: true,
                    }
                } else {
                    Frame::Seq { index: 0 }
                };
                self.stack.push(frame);
            }
            Event::MappingStart(..) => {
                self.stack.push(Frame::Map {
                    key: None,
                    located: false,
                });
            }
            Event::SequenceStart(..) => {
                self.record(mark);
                self.stack.push(Frame::Seq { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                // An empty mapping is located where it ended.
                if let Some(Frame::Map { located: false, .. }) = self.stack.last() {
                    self.record(mark);
                }
                self.stack.pop();
                self.finish_node();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
devices:
  - path: /dev/watchdog0
    timeout: 30s
interval: 5s
fence:
  kill: [heartbeat, corosync]
checks:
  - kind: writable
    mounts: [/]
  - kind: block-io
    stuck-after: 30s
";

    fn at(line: usize, column: usize) -> Option<Location> {
        Some(Location { line, column })
    }

    #[test]
    fn finds_keys_at_every_depth() {
        let idx = LocationIndex::build(DOC);
        assert_eq!(idx.find("devices"), at(1, 1));
        assert_eq!(idx.find("devices[0].timeout"), at(3, 5));
        assert_eq!(idx.find("interval"), at(4, 1));
        assert_eq!(idx.find("fence.kill[1]"), at(6, 21));
        assert_eq!(idx.find("checks[1].stuck-after"), at(11, 5));
        assert_eq!(idx.find("checks[1]"), at(10, 5));
    }

    #[test]
    fn a_missing_key_points_at_its_parent() {
        let idx = LocationIndex::build(DOC);
        assert_eq!(idx.find("checks[1].every"), idx.find("checks[1]"));
        assert_eq!(idx.find("nothing"), None);
    }

    #[test]
    fn broken_yaml_gives_an_empty_index_not_a_panic() {
        let idx = LocationIndex::build("a: [1, 2\nb: {");
        assert_eq!(idx.find("a"), None);
    }
}
