//! Accept and reject, by topic: the accepted shape and its defaults here; keys and
//! positions in [`keys`]; the rules in [`rules`]; unlikely input in [`input`]; the file on
//! disk in [`file`].

use super::*;

const GOOD: &str = "\
devices:
  - path: /dev/watchdog0
    timeout: 30s
interval: 5s
on-exit: disarm
fence:
  mode: watchdog
  kill: [heartbeat]
  stall-threshold: 30s
checks:
  - kind: writable
    mounts: [/]
    every: 5s
    deadline: 10s
";

fn problems(text: &str) -> Vec<Problem> {
    parse(text, "w.yaml")
        .expect_err("config should be rejected")
        .problems
}

fn one_problem(text: &str) -> Problem {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.into_iter().next().unwrap()
}

fn good_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replace(from, to)
}

#[test]
fn the_documented_shape_is_accepted_with_its_values() {
    let c = parse(GOOD, "w.yaml").unwrap();
    assert_eq!(c.devices.len(), 1);
    assert_eq!(c.devices[0].path, Path::new("/dev/watchdog0"));
    assert_eq!(c.devices[0].timeout, Duration::from_secs(30));
    assert_eq!(c.interval, Duration::from_secs(5));
    assert_eq!(c.on_exit, OnExit::Disarm);
    assert_eq!(c.fence.mode, FenceMode::Watchdog);
    assert_eq!(
        c.fence.kill,
        vec![KillEntry {
            name: "heartbeat".into(),
            user: None
        }]
    );
    assert_eq!(c.fence.stall_threshold, Duration::from_secs(30));
    assert_eq!(c.checks.len(), 1);
    assert_eq!(c.checks[0].schedule.every, Duration::from_secs(5));
    assert_eq!(c.checks[0].schedule.deadline, Duration::from_secs(10));
    assert_eq!(c.checks[0].schedule.tolerance, 0);
    assert_eq!(c.checks[0].settings.kind(), "writable");
}

#[test]
fn the_embedded_default_is_valid() {
    let c = parse(EMBEDDED_DEFAULT, EMBEDDED_NAME).unwrap();
    assert_eq!(c.devices[0].path, Path::new("/dev/watchdog0"));
    assert!(!c.checks.is_empty());
}

#[test]
fn defaults_fill_what_the_operator_left_out() {
    let c = parse("devices: [{path: /dev/watchdog1}]\n", "w.yaml").unwrap();
    assert_eq!(c.devices[0].timeout, DEFAULT_TIMEOUT);
    assert_eq!(c.interval, Duration::from_secs(5));
    assert_eq!(c.on_exit, OnExit::Disarm);
    assert_eq!(c.fence.mode, FenceMode::Watchdog);
    assert_eq!(c.fence.stall_threshold, DEFAULT_TIMEOUT);
    assert!(c.checks.is_empty());
}

mod file;
mod input;
mod keys;
mod messages;
mod rules;
