//! Where each node of a YAML document stands (line and column), so that every problem found
//! in `watchdog.yaml`, by serde or by the validation rules after it, can name `file:line:col`.
//!
//! serde_yaml keeps positions only for the syntax errors it raises itself; this index is
//! built once from the same text with yaml-rust2's event parser, which reports a mark for
//! every node. It is a tree (each key stored once, children found by key or index), so it
//! takes memory and time linear in the text however long the keys or deep the paths; a
//! path is resolved only when a problem asks for it.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    fn of(mark: Marker) -> Self {
        Location {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }
}

/// Key paths (`checks[1].stuck-after`, `devices[0]`) to where they stand in the text.
#[derive(Debug, Default)]
pub struct LocationIndex {
    /// The nodes; the first is the document itself.
    nodes: Vec<Node>,
    /// A key written again in the same mapping: (mapping, key) to each later occurrence.
    repeated: HashMap<(usize, String), Vec<Location>>,
}

#[derive(Debug)]
struct Node {
    /// Where a reader looks for it: its key in a mapping, itself in a sequence.
    at: Option<Location>,
    /// Where its value starts (a mapping: its first key); `None` until known.
    value_at: Option<Location>,
    kids: Kids,
}

#[derive(Debug)]
enum Kids {
    Leaf,
    Map(HashMap<String, usize>),
    Seq(Vec<usize>),
}

/// How many `.` or `[` a key itself may hold and still be found by its path: a path is cut
/// at those characters, and each cut is one lookup.
const MAX_CUTS_PER_KEY: usize = 8;

impl LocationIndex {
    /// Indexes `text`; a document that does not parse gives an empty index (serde reports
    /// the syntax error with its own position).
    pub fn build(text: &str) -> Self {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut walker, false).is_err() || walker.index.nodes.is_empty() {
            return LocationIndex::default();
        }
        walker.index
    }

    /// Where `path` stands; for a path that is not in the text (a missing key), the nearest
    /// enclosing node that is.
    pub fn find(&self, path: &str) -> Option<Location> {
        let (trail, _) = self.resolve(path);
        trail.iter().rev().find_map(|&n| self.nodes[n].at)
    }

    /// Where the value at `path` starts, when the path is in the text; else [`Self::find`].
    /// A wrong value is shown where it is written, not where its key is.
    pub fn find_value(&self, path: &str) -> Option<Location> {
        match self.resolve(path) {
            (trail, true) => trail
                .last()
                .and_then(|&n| self.nodes[n].value_at.or(self.nodes[n].at)),
            _ => None,
        }
        .or_else(|| self.find(path))
    }

    /// Where `key` is written for the `nth` time (0: the first repetition) in the mapping
    /// at `parent`.
    pub fn find_repeated(&self, parent: &str, key: &str, nth: usize) -> Option<Location> {
        let (trail, exact) = self.resolve(parent);
        let node = *trail.last()?;
        exact
            .then(|| self.repeated.get(&(node, key.to_string())))
            .flatten()
            .and_then(|v| v.get(nth).copied())
    }

    /// The nodes from the document down to the deepest one `path` reaches, and whether it
    /// reached the end of the path.
    fn resolve(&self, path: &str) -> (Vec<usize>, bool) {
        let mut trail = Vec::new();
        if self.nodes.is_empty() {
            return (trail, false);
        }
        let mut node = 0;
        trail.push(node);
        let mut rest = path;
        while !rest.is_empty() {
            let next = match &self.nodes[node].kids {
                Kids::Seq(items) => seq_step(rest).and_then(|(i, tail)| {
                    let kid = *items.get(i)?;
                    Some((kid, tail))
                }),
                Kids::Map(keys) => map_step(keys, rest.strip_prefix('.').unwrap_or(rest)),
                Kids::Leaf => None,
            };
            let Some((kid, tail)) = next else {
                return (trail, false);
            };
            node = kid;
            trail.push(node);
            rest = tail;
        }
        (trail, true)
    }
}

/// `[3]...` to 3 and what follows.
fn seq_step(rest: &str) -> Option<(usize, &str)> {
    let inner = rest.strip_prefix('[')?;
    let close = inner.find(']')?;
    Some((inner[..close].parse().ok()?, &inner[close + 1..]))
}

/// The shortest key of `keys` that `rest` starts with, ending at a `.`, a `[` or the end.
fn map_step<'p>(keys: &HashMap<String, usize>, rest: &'p str) -> Option<(usize, &'p str)> {
    rest.match_indices(['.', '['])
        .map(|(cut, _)| cut)
        .take(MAX_CUTS_PER_KEY)
        .chain(std::iter::once(rest.len()))
        .find_map(|cut| keys.get(&rest[..cut]).map(|&kid| (kid, &rest[cut..])))
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
    Map {
        node: usize,
        /// The key read, waiting for its value; `None` while a key is expected.
        key: Option<(String, Location)>,
        /// Whether the mapping's own position is known: that of its first key (the
        /// parser's mark for a block mapping's start is not where a reader would look).
        located: bool,
    },
    Seq {
        node: usize,
    },
    /// A complex key (a mapping or sequence used as a key): skipped, nesting counted.
    Skip {
        depth: usize,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    index: LocationIndex,
}

impl Walker {
    /// A value node starts at `mark`: adds it under its parent, returns its number.
    fn add(&mut self, mark: Marker, kids: Kids) -> usize {
        let id = self.index.nodes.len();
        let here = Location::of(mark);
        let mut at = Some(here);
        match self.stack.last_mut() {
            Some(Frame::Map {
                node,
                key: Some((k, key_at)),
                ..
            }) => {
                at = Some(*key_at);
                let parent = *node;
                let k = std::mem::take(k);
                if let Kids::Map(keys) = &mut self.index.nodes[parent].kids {
                    match keys.entry(k) {
                        std::collections::hash_map::Entry::Occupied(e) => self
                            .index
                            .repeated
                            .entry((parent, e.key().clone()))
                            .or_default()
                            .push(*key_at),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(id);
                        }
                    }
                }
            }
            Some(Frame::Seq { node }) => {
                // A mapping in a list stands where its first key is.
                if matches!(kids, Kids::Map(_)) {
                    at = None;
                }
                let parent = *node;
                if let Kids::Seq(items) = &mut self.index.nodes[parent].kids {
                    items.push(id);
                }
            }
            None => at = None,
            _ => {}
        }
        let value_at = (!matches!(kids, Kids::Map(_))).then_some(here);
        self.index.nodes.push(Node { at, value_at, kids });
        id
    }

    /// A value has been read completely: its mapping expects a key again.
    /// A mapping's value is where its first key is (or, empty, where it ends); the root's
    /// own position stays the document's start.
    fn locate_mapping(&mut self, n: usize, mark: Marker) {
        let here = Some(Location::of(mark));
        let node = &mut self.index.nodes[n];
        node.value_at = here;
        if n != 0 {
            node.at = node.at.or(here);
        }
    }

    fn finish_node(&mut self) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = None;
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if let Some(Frame::Skip { depth }) = self.stack.last_mut() {
            match ev {
                Event::MappingStart(..) | Event::SequenceStart(..) => *depth += 1,
                Event::MappingEnd | Event::SequenceEnd => *depth -= 1,
                _ => {}
            }
            if *depth == 0 {
                self.stack.pop();
                if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                    *key = Some(("?".into(), Location::of(mark)));
                }
            }
            return;
        }
        let expecting_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
        match ev {
            Event::Scalar(text, ..) if expecting_key => {
                if let Some(Frame::Map {
                    node, key, located, ..
                }) = self.stack.last_mut()
                {
                    let n = *node;
                    *key = Some((text, Location::of(mark)));
                    if !*located {
                        *located = true;
                        self.locate_mapping(n, mark);
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) if expecting_key => {
                self.stack.push(Frame::Skip { depth: 1 });
            }
            Event::Scalar(..) | Event::Alias(_) => {
                self.add(mark, Kids::Leaf);
                self.finish_node();
            }
            Event::MappingStart(..) => {
                let node = self.add(mark, Kids::Map(HashMap::new()));
                self.stack.push(Frame::Map {
                    node,
                    key: None,
                    located: false,
                });
            }
            Event::SequenceStart(..) => {
                let node = self.add(mark, Kids::Seq(Vec::new()));
                self.stack.push(Frame::Seq { node });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                // An empty mapping is located where it ended.
                if let Some(Frame::Map {
                    node,
                    located: false,
                    ..
                }) = self.stack.last()
                {
                    let n = *node;
                    self.locate_mapping(n, mark);
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
