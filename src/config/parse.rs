//! Config text to a checked [`Config`], every problem found on the way: the text is read
//! into one YAML tree ([`tree`]; control characters and syntax errors stop there), each
//! piece of it into the raw mirror ([`entries`], [`super::check_keys`]), then the rules;
//! each problem is placed at its line:column ([`LocationIndex`]).

use std::collections::HashSet;

use super::locate::{Location, LocationIndex};
use super::wording::MAX_PROBLEMS;
use super::{depth, entries, input_rules, rules, tree, Config, ConfigError, Problem};

/// Parses and checks config text; `source` names it in problems.
pub fn parse(text: &str, source: &str) -> Result<Config, ConfigError> {
    let fail = |problems: Vec<Problem>| ConfigError {
        source: source.to_string(),
        problems,
    };
    if let Some((line, column)) = depth::too_deep(text) {
        return Err(fail(vec![Problem {
            key: String::new(),
            message: format!(
                "the config is nested deeper than {} levels here: a watchdog.yaml needs a few; look for an unclosed `[` or `{{`",
                depth::MAX_DEPTH
            ),
            location: Some(Location { line, column }),
        }]));
    }
    if text.trim().is_empty() {
        return Err(fail(vec![Problem {
            key: String::new(),
            message: "the config is empty: start from `wdfeed validate --print-default`".into(),
            location: None,
        }]));
    }
    let (doc, repeated) = tree::read(text).map_err(fail)?;
    // Built (a second parse of the text) only when a problem needs a position: a good config,
    // the daemon's start-up, never pays for it.
    let index = std::cell::OnceCell::new();
    let index = || index.get_or_init(|| LocationIndex::build(text));
    let mut problems: Vec<Problem> = repeated
        .iter()
        .map(|r| {
            let key = entries::join(&r.parent, &r.key);
            let first = index()
                .find(&key)
                .map_or(String::new(), |l| format!(" (first at line {})", l.line));
            Problem {
                message: format!(
                    "`{}` is written again in the same mapping{first}: keep one",
                    r.key
                ),
                location: index().find_repeated(&r.parent, &r.key, r.nth),
                key,
            }
        })
        .collect();
    let mut nul = Vec::new();
    input_rules::nul_bytes(&doc, &mut nul);
    let raw = entries::raw_config(doc, &mut problems);
    for p in &mut problems {
        p.location = p.location.or_else(|| read_location(index(), p));
    }
    let config = raw.map(|raw| {
        let mut by_rule = Vec::new();
        let config = rules::build(raw, &mut by_rule);
        // Problems of reading come first: a value that could not be read is not judged
        // again by a rule (its default was used).
        let read: HashSet<String> = problems.iter().map(|p| p.key.clone()).collect();
        problems.extend(by_rule.into_iter().filter(|p| !read.contains(&p.key)));
        config
    });
    let seen: HashSet<String> = problems.iter().map(|p| p.key.clone()).collect();
    problems.extend(nul.into_iter().filter(|p| !seen.contains(&p.key)));
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => {
            for p in &mut problems {
                p.location = p.location.or_else(|| index().find(&p.key));
            }
            // In the order of the file; problems of the whole file last.
            problems.sort_by_key(|p| p.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
            if problems.len() > MAX_PROBLEMS {
                let more = problems.len() - MAX_PROBLEMS;
                problems.truncate(MAX_PROBLEMS);
                problems.push(Problem {
                    key: String::new(),
                    message: format!("and {more} more problems: fix these first"),
                    location: None,
                });
            }
            Err(fail(problems))
        }
    }
}

/// A key that is not known or a key missing is shown at the key (or its mapping); a value
/// that could not be read, where the value is written.
fn read_location(index: &LocationIndex, p: &Problem) -> Option<Location> {
    if p.message.starts_with("unknown field") || p.message.starts_with("missing field") {
        index.find(&p.key)
    } else {
        index.find_value(&p.key)
    }
}
