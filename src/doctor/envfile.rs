//! An environment file as systemd's `EnvironmentFile=` reads it (sbd's /etc/default/sbd,
//! /etc/sysconfig/sbd): `KEY=VALUE` lines, `#` and `;` comments, one pair of quotes
//! around a value removed. Lines that are none of these are reported with their number,
//! not guessed at.

use crate::system::sysfile::LineError;

/// One `KEY=VALUE` and the line it stands on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// The entries of a file, and the lines that could not be read as one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvFile {
    pub entries: Vec<Entry>,
    pub bad_lines: Vec<LineError>,
}

impl EnvFile {
    /// The last assignment of `key` (a later line overrides an earlier one).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

pub fn parse(text: &str) -> EnvFile {
    let mut out = EnvFile::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if valid_key(key.trim()) => out.entries.push(Entry {
                key: key.trim().to_string(),
                value: unquote(value.trim()).to_string(),
                line: i + 1,
            }),
            _ => out.bad_lines.push(LineError::new(
                i + 1,
                format!(
                    "`{}` is not KEY=VALUE (systemd ignores the line)",
                    super::printable(line)
                ),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debians_default_file() {
        let f = parse(
            "## Type: string\n#SBD_DEVICE=\"\"\n\nSBD_PACEMAKER=yes\nSBD_WATCHDOG_DEV=/dev/watchdog\n\
             SBD_WATCHDOG_TIMEOUT=5\nSBD_OPTS=\n",
        );
        assert!(f.bad_lines.is_empty(), "{:?}", f.bad_lines);
        assert_eq!(f.get("SBD_WATCHDOG_DEV").unwrap().value, "/dev/watchdog");
        assert_eq!(f.get("SBD_WATCHDOG_TIMEOUT").unwrap().line, 6);
        assert_eq!(f.get("SBD_OPTS").unwrap().value, "");
        assert!(f.get("SBD_DEVICE").is_none(), "commented out");
    }

    #[test]
    fn quotes_are_removed_and_the_last_assignment_wins() {
        let f = parse("A=\"x y\"\nB='z'\nA=2\n; comment\n");
        assert_eq!(f.get("A").unwrap().value, "2");
        assert_eq!(f.get("B").unwrap().value, "z");
    }

    #[test]
    fn garbage_lines_are_reported_with_their_number() {
        let f = parse("SBD_PACEMAKER=yes\nthis is not an assignment\n9X=1\n");
        assert_eq!(f.entries.len(), 1);
        let lines: Vec<usize> = f.bad_lines.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3]);
    }
}
