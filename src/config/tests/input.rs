//! Values no one means to write: refused with a rule, at their position.

use super::*;

fn check(yaml: &str) -> String {
    format!("{GOOD}{yaml}")
}

#[test]
fn interval_and_every_below_the_floor_are_refused() {
    let p = one_problem(&good_with("interval: 5s", "interval: 1ms"));
    assert_eq!(p.key, "interval");
    assert!(p.message.contains("floor of 10ms"), "{}", p.message);
    assert_eq!(p.location.map(|l| l.line), Some(4));
    let p = one_problem(&good_with("every: 5s", "every: 9ms"));
    assert_eq!(p.key, "checks[0].every");
    assert!(p.message.contains("floor"), "{}", p.message);
    assert!(parse(&good_with("every: 5s", "every: 10ms"), "w").is_ok());
}

#[test]
fn stuck_after_has_a_floor_and_an_upper_bound() {
    for bad in ["1ms", "999ms", "601s", "1h"] {
        let p = one_problem(&check(&format!(
            "  - kind: block-io\n    stuck-after: {bad}\n"
        )));
        assert_eq!(p.key, "checks[1].stuck-after", "{bad}");
        assert!(
            p.message.contains("outside 1s..10m"),
            "{bad}: {}",
            p.message
        );
        assert_eq!(p.location.map(|l| l.line), Some(16), "{bad}");
    }
    for good in ["1s", "30s", "10m"] {
        let text = check(&format!("  - kind: block-io\n    stuck-after: {good}\n"));
        assert!(parse(&text, "w").is_ok(), "{good}");
    }
}

#[test]
fn a_nul_byte_in_any_path_or_name_is_refused() {
    let p = one_problem(&good_with(
        "path: /dev/watchdog0",
        "path: \"/dev/watchdog0\\0x\"",
    ));
    assert_eq!(p.key, "devices[0].path");
    assert!(p.message.contains("NUL byte"), "{}", p.message);
    assert_eq!(p.location.map(|l| l.line), Some(2));
    let p = one_problem(&check("  - kind: process\n    name: \"cor\\0osync\"\n"));
    assert_eq!(p.key, "checks[1].name");
    let p = one_problem(&check("  - kind: writable\n    label: \"a\\0b\"\n"));
    assert_eq!(p.key, "checks[1].label");
    assert!(p.message.contains("NUL byte"), "{}", p.message);
    let p = one_problem(&good_with("kill: [heartbeat]", "kill: [\"heart\\0beat\"]"));
    assert_eq!(p.key, "fence.kill[0]");
}

#[test]
fn dotdot_in_pidfile_and_fresh_file_is_refused() {
    let p = one_problem(&check(
        "  - kind: process\n    pidfile: /run/x/../corosync.pid\n",
    ));
    assert_eq!(p.key, "checks[1].pidfile");
    assert!(p.message.contains("`..`"), "{}", p.message);
    assert!(p.message.contains("/run/corosync.pid"), "{}", p.message);
    let p = one_problem(&check(
        "  - kind: process\n    name: corosync\n    fresh-file: /run/../tmp/beat\n    max-age: 10s\n",
    ));
    assert_eq!(p.key, "checks[1].fresh-file");
}

#[test]
fn one_device_written_two_ways_is_listed_twice() {
    let text = good_with(
        "    timeout: 30s\n",
        "    timeout: 30s\n  - path: /dev/x/../watchdog0\n",
    );
    let p = one_problem(&text);
    assert_eq!(p.key, "devices[1].path");
    assert!(p.message.contains("listed twice"), "{}", p.message);
    let p = one_problem(&good_with(
        "    timeout: 30s\n",
        "    timeout: 30s\n  - path: /dev//watchdog0\n",
    ));
    assert_eq!(p.key, "devices[1].path");
}

#[test]
fn a_command_program_must_be_an_absolute_path() {
    let p = one_problem(&check(
        "  - kind: command\n    argv: [check-san, --quiet]\n",
    ));
    assert_eq!(p.key, "checks[1].argv[0]");
    assert!(p.message.contains("not an absolute path"), "{}", p.message);
    let p = one_problem(&check("  - kind: command\n    argv: [./check-san]\n"));
    assert_eq!(p.key, "checks[1].argv[0]");
}

#[test]
fn a_command_check_with_only_argv_validates() {
    let c = parse(
        "devices: [{path: /dev/watchdog0}]\nchecks:\n  - kind: command\n    argv: [/bin/true]\n",
        "w",
    )
    .unwrap();
    let s = &c.checks[0];
    let Some((_, timeout)) = s.settings.own_time_limit() else {
        panic!("a command has a timeout")
    };
    assert!(
        timeout < s.schedule.deadline,
        "{timeout:?} {:?}",
        s.schedule
    );
    // A short device timeout gives a short deadline: the default timeout follows it.
    let c = parse(
        "devices: [{path: /dev/watchdog0, timeout: 6s}]\nchecks:\n  - kind: command\n    argv: [/bin/true]\n",
        "w",
    )
    .unwrap();
    let s = &c.checks[0];
    assert!(s.settings.own_time_limit().unwrap().1 < s.schedule.deadline);
    // A timeout the operator wrote is kept as written.
    let text = check("  - kind: command\n    argv: [/bin/true]\n    timeout: 3s\n");
    let c = parse(&text, "w").unwrap();
    assert_eq!(
        c.checks[1].settings.own_time_limit().unwrap().1,
        Duration::from_secs(3)
    );
}
