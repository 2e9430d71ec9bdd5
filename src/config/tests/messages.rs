//! Problems the parser recovers from are all reported, each at its line:column and key, in
//! words an operator knows: never a Rust type name.

use super::*;
use crate::config::wording::RUST_WORDS;

/// Every key at every level, each with a valid value.
const EVERY_KEY: &str = "\
devices:
  - path: /dev/watchdog0
    timeout: 30s
    pretimeout: 10s
interval: 5s
on-exit: disarm
rejoin-delay: 1m
fence:
  mode: watchdog
  kill: [heartbeat]
  stall-threshold: 30s
  isolate: [eth0]
  handover-file: /run/wdfeed/handover
metrics:
  textfile: /var/lib/node-exporter/wdfeed.prom
checks:
  - kind: writable
    label: root
    mounts: [/]
    probe: true
    probe-paths: {/: /var/lib/wdfeed/probe}
    ext4-errors: true
    every: 5s
    deadline: 10s
    tolerance: 1
  - kind: block-io
    devices: [sda]
    stuck-after: 30s
  - kind: process
    name: heartbeat
    user: root
    exe: /usr/sbin/heartbeat
    max-uninterruptible: 30s
    fresh-file: /var/lib/heartbeat/beat
    max-age: 2m
    when: {address: 192.0.2.10}
  - kind: load
    max-load-1: 20
    max-load-5: 15.5
    max-load-15: 10
  - kind: memory
    min-available: 64MiB
  - kind: command
    argv: [/usr/local/sbin/check-san, --quiet]
    timeout: 3s
  - kind: drbd
    resources: [r0]
    suspended-after: 20s
    when: {drbd-primary: r0}
  - kind: writable
    mounts: [/srv/nfs]
    when: {mounted: /srv/nfs}
";

/// Values of every YAML type, for any key.
const WRONG: &[&str] = &[
    "[]",
    "[1, [2]]",
    "{}",
    "{x: 1}",
    "just-text",
    "1",
    "-1",
    "1.5",
    "true",
    "!tag x",
];

/// Every node's path in `v`, parents first.
fn paths(v: &serde_yaml::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, item) in m {
                let key = k.as_str().unwrap().to_string();
                let p = if at.is_empty() {
                    key
                } else {
                    format!("{at}.{key}")
                };
                out.push(p.clone());
                paths(item, p, out);
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{at}[{i}]");
                out.push(p.clone());
                paths(item, p, out);
            }
        }
        _ => {}
    }
}

/// `v` with the node at `path` replaced by `with`.
fn replace(v: &mut serde_yaml::Value, path: &str, with: serde_yaml::Value) {
    let mut node = v;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix('[') {
            let close = tail.find(']').unwrap();
            let i: usize = tail[..close].parse().unwrap();
            node = &mut node[i];
            rest = &tail[close + 1..];
        } else {
            let rest2 = rest.strip_prefix('.').unwrap_or(rest);
            let cut = rest2.find(['.', '[']).unwrap_or(rest2.len());
            node = &mut node[&rest2[..cut]];
            rest = &rest2[cut..];
        }
    }
    *node = with;
}

#[test]
fn every_key_has_a_valid_value_in_the_test_config() {
    parse(EVERY_KEY, "w.yaml").unwrap();
}

#[test]
fn wrong_types_at_every_level_are_told_in_yaml_words_at_their_line_and_key() {
    let base: serde_yaml::Value = serde_yaml::from_str(EVERY_KEY).unwrap();
    let mut all = Vec::new();
    paths(&base, String::new(), &mut all);
    let mut refused = 0;
    for path in &all {
        for wrong in WRONG {
            let mut doc = base.clone();
            replace(&mut doc, path, serde_yaml::from_str(wrong).unwrap());
            let text = serde_yaml::to_string(&doc).unwrap();
            let Err(err) = parse(&text, "/etc/wdfeed/watchdog.yaml") else {
                continue;
            };
            refused += 1;
            let shown = err.to_string();
            for word in RUST_WORDS {
                assert!(
                    !shown.contains(word),
                    "{path} = {wrong}: `{word}` in:\n{shown}"
                );
            }
            for (p, line) in err.problems.iter().zip(shown.lines()) {
                assert!(p.location.is_some(), "{path} = {wrong}: no line:\n{shown}");
                assert!(!p.key.is_empty(), "{path} = {wrong}: no key:\n{shown}");
                assert!(line.starts_with("/etc/wdfeed/watchdog.yaml:"), "{line}");
            }
            let parent = |k: &str| path.starts_with(k) || k.starts_with(path.as_str());
            assert!(
                err.problems.iter().any(|p| parent(&p.key)),
                "{path} = {wrong}: the key is not named:\n{shown}"
            );
        }
    }
    // Most wrong values are refused (a string is a fine label, a number a fine load limit).
    assert!(
        refused > all.len() * WRONG.len() / 2,
        "{refused} of {}",
        all.len() * WRONG.len()
    );
}

#[test]
fn bad_conditions_are_refused_at_their_line_and_column_and_arm_nothing() {
    let text = good_with(
        "    deadline: 10s\n",
        "    deadline: 10s\n    when: {mounted: /srv, address: 192.0.2.10}\n  - kind: memory\n    min-available: 64MiB\n    when:\n      mountd: /srv\n  - kind: drbd\n    when: {mounted: srv/nfs}\n  - kind: drbd\n    label: two\n    when: {address: 192.0.2.300}\n  - kind: drbd\n    label: three\n    when: {drbd-primary: r/0}\n",
    );
    let err = parse(&text, "/etc/wdfeed/watchdog.yaml").unwrap_err();
    let got: Vec<_> = err
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.location.map(|l| (l.line, l.column))))
        .collect();
    assert_eq!(
        got,
        [
            ("checks[0].when", Some((15, 5))),
            ("checks[1].when.mountd", Some((19, 7))),
            ("checks[2].when.mounted", Some((21, 12))),
            ("checks[3].when.address", Some((24, 12))),
            ("checks[4].when.drbd-primary", Some((27, 12))),
        ],
        "{err}"
    );
    let shown = err.to_string();
    for want in [
        "/etc/wdfeed/watchdog.yaml:15:5: `checks[0].when`: `when` takes one condition, not 2 (mounted, address)",
        "unknown condition `mountd`",
        "`srv/nfs` is not an absolute path",
        "`192.0.2.300` is not an IPv4 or IPv6 address",
        "`r/0` holds a character other than letters",
    ] {
        assert!(shown.contains(want), "{want}:\n{shown}");
    }
}

#[test]
fn a_check_with_a_condition_keeps_it_and_an_empty_when_is_none() {
    let c = parse(
        &good_with(
            "    deadline: 10s\n",
            "    deadline: 10s\n    when: {mounted: /srv/nfs/}\n  - kind: drbd\n    when:\n",
        ),
        "w.yaml",
    )
    .unwrap();
    assert_eq!(
        c.checks[0].when,
        Some(crate::health::condition::Condition::Mounted(
            "/srv/nfs".into()
        ))
    );
    assert_eq!(c.checks[1].when, None);
}

#[test]
fn three_bad_check_entries_give_three_problems_with_every_rule_violation() {
    let text = good_with(
        "    deadline: 10s\n",
        "    deadline: 10s\n  - kind: load\n    every: soon\n  - kind: process\n    name: [x]\n  - kind: memory\n    min-available: 64MiB\n    tolerance: many\n",
    )
    .replace("interval: 5s", "interval: 11s");
    let got: Vec<_> = problems(&text)
        .into_iter()
        .map(|p| (p.key, p.location.map(|l| l.line)))
        .collect();
    assert_eq!(
        got,
        [
            ("interval".to_string(), Some(4)),
            ("checks[1].every".to_string(), Some(16)),
            ("checks[2].name".to_string(), Some(18)),
            ("checks[3].tolerance".to_string(), Some(21)),
        ]
    );
}

#[test]
fn bad_devices_fence_keys_and_top_level_keys_are_each_reported() {
    let text = "\
devices:
  - /dev/watchdog0
  - path: /dev/watchdog1
    timeout: soon
  - path: /dev/watchdog2
    timeut: 30s
  - path: dev/watchdog3
interval: 5
on-exit: maybe
fence:
  mode: sometimes
  kill: heartbeat
  stall-threshold: 1
metrics: /x.prom
intervall: 5s
";
    let got: Vec<_> = problems(text)
        .into_iter()
        .map(|p| (p.key, p.location.map(|l| (l.line, l.column))))
        .collect();
    let want = [
        ("devices[0]", (2, 5)),
        ("devices[1].timeout", (4, 5)),
        ("devices[2].timeut", (6, 5)),
        ("devices[3].path", (7, 5)),
        ("interval", (8, 11)),
        ("on-exit", (9, 10)),
        ("fence.mode", (11, 9)),
        ("fence.kill", (12, 9)),
        ("fence.stall-threshold", (13, 20)),
        ("metrics", (14, 10)),
        ("intervall", (15, 1)),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(k, l)| (k.to_string(), Some(*l)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_key_written_twice_is_reported_where_it_is_written_again() {
    let text = good_with("    every: 5s\n", "    every: 5s\n    every: 6s\n") + "interval: 5s\n";
    let got: Vec<_> = problems(&text)
        .into_iter()
        .map(|p| (p.key, p.location.map(|l| (l.line, l.column)), p.message))
        .collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].0, "checks[0].every");
    assert_eq!(got[0].1, Some((14, 5)));
    assert!(got[0].2.contains("first at line 13"), "{}", got[0].2);
    assert_eq!(got[1].0, "interval");
    assert_eq!(got[1].1, Some((16, 1)));
}

#[test]
fn control_characters_are_reported_at_their_line_and_column() {
    let text = good_with("kill: [heartbeat]", "kill: [heart\u{1}beat]");
    let p = one_problem(&text);
    assert_eq!(p.location.map(|l| (l.line, l.column)), Some((8, 15)));
    assert!(p.message.contains("U+0001"), "{}", p.message);
}

#[test]
fn a_syntax_error_stops_at_its_line_and_column() {
    let p = one_problem("devices:\n  - path: /dev/watchdog0\n   timeout: [30s\n");
    assert_eq!(p.location.map(|l| (l.line, l.column)), Some((3, 4)));
    assert!(
        p.message.starts_with("YAML syntax error: "),
        "{}",
        p.message
    );
}

#[test]
fn a_document_that_is_not_a_mapping_lists_the_keys() {
    let p = one_problem("[1, 2]\n");
    assert!(p.message.contains("`devices`, `interval`"), "{}", p.message);
    assert_eq!(p.location.map(|l| l.line), Some(1));
}

#[test]
fn a_flood_of_problems_is_cut_with_a_count() {
    let mut text = String::from("devices: [{path: /dev/watchdog0}]\nchecks:\n");
    for _ in 0..150 {
        text.push_str("  - kind: nothing\n");
    }
    let p = problems(&text);
    assert_eq!(p.len(), 101);
    assert!(
        p[100].message.contains("50 more problems"),
        "{}",
        p[100].message
    );
}
