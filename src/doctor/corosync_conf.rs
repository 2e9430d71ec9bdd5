//! `corosync.conf` read the way corosync's own parser reads it (coroparse.c): `name {` opens
//! a section, `}` closes it, `key: value` sets `section.key`, `#` starts a comment line.
//! What the doctor needs from it: `resources.watchdog_device` (corosync's own watchdog),
//! `quorum.two_node`, `quorum.device.*` (qdevice) and `totem.token`.

use crate::system::sysfile::LineError;

/// `quorum.two_node`: `1` at line 12.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub path: String,
    pub value: String,
    pub line: usize,
}

/// Every key of the file, or the first line that corosync would refuse.
pub fn parse(text: &str) -> Result<Vec<Key>, LineError> {
    let mut sections: Vec<(String, usize)> = Vec::new();
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "}" {
            if sections.pop().is_none() {
                return Err(LineError::new(n, "`}` closes no section"));
            }
            continue;
        }
        if let Some(name) = line.strip_suffix('{') {
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(LineError::new(
                    n,
                    format!("`{}` is not a section name", super::printable(line)),
                ));
            }
            sections.push((name.to_string(), n));
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(LineError::new(
                n,
                format!(
                    "`{}` is neither `key: value`, `section {{` nor `}}`",
                    super::printable(line)
                ),
            ));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(LineError::new(
                n,
                format!("`{}` is not a key", super::printable(key)),
            ));
        }
        let mut path: Vec<&str> = sections.iter().map(|(s, _)| s.as_str()).collect();
        path.push(key);
        keys.push(Key {
            path: path.join("."),
            value: value.trim().to_string(),
            line: n,
        });
    }
    if let Some((name, line)) = sections.pop() {
        return Err(LineError::new(
            line,
            format!("section `{name}` is never closed"),
        ));
    }
    Ok(keys)
}

/// The value of `path` (the last one, as corosync keeps the last).
pub fn get<'a>(keys: &'a [Key], path: &str) -> Option<&'a Key> {
    keys.iter().rev().find(|k| k.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_NODE: &str = "\
totem {
\tversion: 2
\tcluster_name: lab
\ttoken: 3000
\tinterface {
\t\tlinknumber: 0
\t}
}
# a comment
quorum {
\tprovider: corosync_votequorum
\ttwo_node: 1
}
resources {
\twatchdog_device: /dev/watchdog0
}
nodelist {
\tnode {
\t\tname: n1
\t\tnodeid: 1
\t\tring0_addr: 10.99.0.1
\t}
}
";

    #[test]
    fn reads_nested_sections() {
        let keys = parse(TWO_NODE).unwrap();
        assert_eq!(get(&keys, "quorum.two_node").unwrap().value, "1");
        let wd = get(&keys, "resources.watchdog_device").unwrap();
        assert_eq!((wd.value.as_str(), wd.line), ("/dev/watchdog0", 15));
        assert_eq!(get(&keys, "totem.interface.linknumber").unwrap().value, "0");
        assert_eq!(
            get(&keys, "nodelist.node.ring0_addr").unwrap().value,
            "10.99.0.1"
        );
        assert!(get(&keys, "quorum.device.model").is_none());
    }

    #[test]
    fn unbalanced_braces_name_the_line() {
        assert_eq!(parse("quorum {\n two_node: 1\n").unwrap_err().line, 1);
        assert_eq!(parse("a: 1\n}\n").unwrap_err().line, 2);
        let e = parse("totem {\n  this is garbage\n}\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
    }

    #[test]
    fn binary_garbage_is_an_error_not_a_panic() {
        let text = String::from_utf8_lossy(&[0xff, 0xfe, b'{', b'{', 0, 1, 2, b'\n']).into_owned();
        assert!(parse(&text).is_err());
    }
}
