//! Unknown keys, wrong types, syntax errors: each with its key and position.

use super::*;

#[test]
fn unknown_keys_are_rejected_at_every_level_with_their_position() {
    let p = one_problem(&good_with(
        "interval: 5s\n",
        "interval: 5s\nintervall: 3s\n",
    ));
    assert_eq!(p.key, "intervall");
    assert!(
        p.message.contains("unknown field `intervall`"),
        "{}",
        p.message
    );
    assert_eq!(p.location.map(|l| l.line), Some(5));

    let p = one_problem(&good_with(
        "    timeout: 30s\n",
        "    timeout: 30s\n    nowayout: true\n",
    ));
    assert_eq!(p.key, "devices[0].nowayout");
    assert!(
        p.message.contains("unknown field `nowayout`"),
        "{}",
        p.message
    );
    assert_eq!(p.location.map(|l| l.line), Some(4));

    let p = one_problem(&good_with(
        "  mode: watchdog\n",
        "  mode: watchdog\n  sync: true\n",
    ));
    assert_eq!(p.key, "fence.sync");
    assert!(p.message.contains("unknown field `sync`"), "{}", p.message);
    assert_eq!(p.location.map(|l| l.line), Some(8));
}

#[test]
fn an_unknown_key_inside_a_check_names_the_check_and_key() {
    let p = one_problem(&good_with(
        "    mounts: [/]\n",
        "    mounts: [/]\n    mount: /var\n",
    ));
    assert_eq!(p.key, "checks[0].mount");
    assert!(p.message.contains("unknown field `mount`"), "{}", p.message);
    assert_eq!(p.location.map(|l| (l.line, l.column)), Some((13, 5)));
}

#[test]
fn an_unknown_check_kind_lists_the_known_ones() {
    let p = one_problem(&good_with("kind: writable", "kind: writeable"));
    assert_eq!(p.key, "checks[0].kind");
    assert!(
        p.message.contains("unknown check kind `writeable`"),
        "{}",
        p.message
    );
    assert!(p.message.contains("writable"));
    let p = one_problem(&good_with("  - kind: writable\n", "  - mounts2: 1\n"));
    assert!(p.message.contains("needs `kind:`"), "{}", p.message);
}

#[test]
fn wrong_types_and_bad_durations_name_key_and_position() {
    let p = one_problem(&good_with("interval: 5s", "interval: 5"));
    assert_eq!(p.key, "interval");
    assert!(p.message.contains("write `5s`"), "{}", p.message);
    assert_eq!(p.location.map(|l| (l.line, l.column)), Some((4, 11)));

    let p = one_problem(&good_with("    every: 5s", "    every: fast"));
    assert_eq!(p.key, "checks[0].every");
    assert_eq!(p.location.map(|l| l.line), Some(13));

    let p = one_problem(&good_with("  kill: [heartbeat]", "  kill: heartbeat"));
    assert_eq!(p.key, "fence.kill");
    assert!(p.message.contains("expected a list"), "{}", p.message);
}

#[test]
fn yaml_syntax_errors_carry_their_position() {
    let p = one_problem("devices:\n  - path: /dev/watchdog0\n   timeout: [30s\n");
    assert!(p.location.is_some(), "{p:?}");
}

#[test]
fn an_empty_file_says_how_to_start() {
    assert!(one_problem("  \n").message.contains("--print-default"));
}

#[test]
fn the_error_prints_file_line_column_and_key() {
    let err = parse(
        &good_with("interval: 5s", "interval: 11s"),
        "/etc/wdfeed/watchdog.yaml",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("/etc/wdfeed/watchdog.yaml:4:1: `interval`: "),
        "{text}"
    );
}
