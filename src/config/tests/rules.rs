//! One test per rule a config must meet.

use super::*;

#[test]
fn interval_must_allow_three_pets_per_timeout() {
    let p = one_problem(&good_with("interval: 5s", "interval: 11s"));
    assert_eq!(p.key, "interval");
    assert!(p.message.contains("at most 10s"), "{}", p.message);
    assert_eq!(p.location.map(|l| l.line), Some(4));
    assert_eq!(
        one_problem(&good_with("interval: 5s", "interval: 0s")).key,
        "interval"
    );
}

#[test]
fn every_and_deadline_must_be_positive_and_below_the_timeout() {
    assert_eq!(
        one_problem(&good_with("every: 5s", "every: 0s")).key,
        "checks[0].every"
    );
    assert_eq!(
        one_problem(&good_with("every: 5s", "every: 30s")).key,
        "checks[0].every"
    );
    let p = one_problem(&good_with("deadline: 10s", "deadline: 31s"));
    assert_eq!(p.key, "checks[0].deadline");
    assert_eq!(p.location.map(|l| l.line), Some(14));
}

#[test]
fn tolerance_is_bounded() {
    let p = one_problem(&good_with(
        "deadline: 10s\n",
        "deadline: 10s\n    tolerance: 11\n",
    ));
    assert_eq!(p.key, "checks[0].tolerance");
}

#[test]
fn devices_rules() {
    let p = one_problem(&good_with("path: /dev/watchdog0", "path: dev/watchdog0"));
    assert_eq!(p.key, "devices[0].path");
    assert!(p.message.contains("absolute"));

    let twice = good_with(
        "    timeout: 30s\n",
        "    timeout: 30s\n  - path: /dev/watchdog0\n    timeout: 30s\n",
    );
    let p = one_problem(&twice);
    assert_eq!(p.key, "devices[1].path");
    assert!(p.message.contains("twice"));

    let p = problems(&good_with("timeout: 30s", "timeout: 1.5s"));
    assert!(
        p.iter()
            .any(|p| p.key == "devices[0].timeout" && p.message.contains("whole")),
        "{p:?}"
    );
    assert_eq!(
        one_problem(&good_with(
            "timeout: 30s\n",
            "timeout: 30s\n    pretimeout: 30s\n"
        ))
        .key,
        "devices[0].pretimeout"
    );
    let p = problems(&good_with("timeout: 30s", "timeout: 6554s"));
    assert!(
        p.iter()
            .any(|p| p.key == "devices[0].timeout" && p.message.contains("wrap")),
        "{p:?}"
    );
    assert_eq!(one_problem("devices: []\n").key, "devices");
}

#[test]
fn stall_threshold_must_exceed_scheduling_delay() {
    let p = one_problem(&good_with("stall-threshold: 30s", "stall-threshold: 6s"));
    assert_eq!(p.key, "fence.stall-threshold");
}

#[test]
fn kill_names_are_process_names() {
    let p = one_problem(&good_with(
        "kill: [heartbeat]",
        "kill: [/usr/sbin/heartbeat]",
    ));
    assert_eq!(p.key, "fence.kill[0]");
    assert_eq!(p.location.map(|l| l.line), Some(8));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = good_with("interval: 5s", "interval: 20s")
        .replace("stall-threshold: 30s", "stall-threshold: 1s")
        .replace("every: 5s", "every: 0s");
    let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        vec!["interval", "fence.stall-threshold", "checks[0].every"]
    );
}

#[test]
fn duplicate_check_names_are_rejected() {
    let text = format!("{GOOD}  - kind: writable\n    mounts: [/]\n");
    assert_eq!(one_problem(&text).key, "checks[1].label");
}

#[test]
fn a_command_timeout_must_be_below_its_deadline() {
    let text = format!(
        "{GOOD}  - kind: command\n    argv: [/bin/true]\n    timeout: 10s\n    deadline: 5s\n"
    );
    let p = one_problem(&text);
    assert_eq!(p.key, "checks[1].timeout");
    assert!(
        p.message.contains("below the check's deadline"),
        "{}",
        p.message
    );
    let ok = format!(
        "{GOOD}  - kind: command\n    argv: [/bin/true]\n    timeout: 4s\n    deadline: 5s\n"
    );
    assert!(parse(&ok, "w").is_ok());
}

#[test]
fn every_check_kind_rejects_an_unknown_key_with_its_path() {
    for kind in crate::health::checks::KINDS {
        let text = format!("{GOOD}  - kind: {kind}\n    bogus-key: 1\n");
        let p = problems(&text);
        assert!(
            p.iter()
                .any(|p| p.key == "checks[1].bogus-key" && p.message.contains("unknown field")),
            "{kind}: {p:?}"
        );
    }
}

#[test]
fn isolate_names_are_interface_names_listed_once_with_their_position() {
    let dup = problems(&good_with(
        "kill: [heartbeat]",
        "kill: [heartbeat]\n  isolate: [eth0, eth1, eth0]",
    ));
    assert_eq!(dup.len(), 1, "{dup:#?}");
    assert_eq!(dup[0].key, "fence.isolate[2]");
    assert!(
        dup[0].message.contains("listed twice"),
        "{}",
        dup[0].message
    );
    assert_eq!(dup[0].location.map(|l| (l.line, l.column)), Some((9, 25)));
    for (bad, why) in [
        ("abcdefghijklmnop", "longer than 15 bytes"),
        ("\"eth0/1\"", "`/`"),
        ("\"eth0:1\"", "`:`"),
        ("\"a b\"", "whitespace"),
        ("\"e\\0\"", "NUL"),
        ("\"..\"", "`..`"),
        ("\"\"", "empty"),
    ] {
        let p = one_problem(&good_with(
            "kill: [heartbeat]",
            &format!("kill: [heartbeat]\n  isolate: [{bad}]"),
        ));
        assert_eq!(p.key, "fence.isolate[0]", "{bad}");
        assert!(p.message.contains(why), "{bad}: {}", p.message);
        assert_eq!(p.location.map(|l| l.line), Some(9), "{bad}");
    }
    let ok = parse(
        &good_with(
            "kill: [heartbeat]",
            "kill: [heartbeat]\n  isolate: [eth0, bond0.100]",
        ),
        "w.yaml",
    )
    .unwrap();
    assert_eq!(ok.fence.isolate, ["eth0", "bond0.100"]);
}

#[test]
fn the_handover_file_is_an_absolute_path_without_nul() {
    for (bad, why) in [
        ("run/handover", "not an absolute path"),
        ("\"/run/a\\0b\"", "NUL"),
    ] {
        let p = one_problem(&good_with(
            "kill: [heartbeat]",
            &format!("kill: [heartbeat]\n  handover-file: {bad}"),
        ));
        assert_eq!(p.key, "fence.handover-file", "{bad}");
        assert!(p.message.contains(why), "{bad}: {}", p.message);
        assert_eq!(
            p.location.map(|l| (l.line, l.column)),
            Some((9, 3)),
            "{bad}"
        );
    }
    let ok = parse(
        &good_with(
            "kill: [heartbeat]",
            "kill: [heartbeat]\n  handover-file: /run/wdfeed/handover",
        ),
        "w.yaml",
    )
    .unwrap();
    assert_eq!(
        ok.fence.handover_file.as_deref(),
        Some(std::path::Path::new("/run/wdfeed/handover"))
    );
}

#[test]
fn kill_entries_take_an_owner_by_name_or_uid() {
    let c = parse(
        &good_with(
            "kill: [heartbeat]",
            "kill: [sbd, {name: pacemaker-based, user: hacluster}, {name: pacemaker-fenced, user: 189}, {user: '0', name: corosync}]",
        ),
        "w.yaml",
    )
    .unwrap();
    let owners: Vec<(&str, Option<&str>)> = c
        .fence
        .kill
        .iter()
        .map(|k| (k.name.as_str(), k.user.as_deref()))
        .collect();
    assert_eq!(
        owners,
        [
            ("sbd", None),
            ("pacemaker-based", Some("hacluster")),
            ("pacemaker-fenced", Some("189")),
            ("corosync", Some("0")),
        ]
    );
}

#[test]
fn a_bad_kill_entry_names_its_field() {
    let p = one_problem(&good_with(
        "kill: [heartbeat]",
        "kill: [sbd, {name: pacemaker-based, user: 'hac:luster'}]",
    ));
    assert_eq!(p.key, "fence.kill[1].user");
    assert!(p.message.contains("numeric uid"), "{}", p.message);
    assert_eq!(p.location.map(|l| l.line), Some(8));

    let p = one_problem(&good_with(
        "kill: [heartbeat]",
        "kill: [sbd, {name: /usr/sbin/pacemaker-based, user: hacluster}]",
    ));
    assert_eq!(p.key, "fence.kill[1].name");
    assert!(p.message.contains("ps -o comm"), "{}", p.message);

    let p = one_problem(&good_with(
        "kill: [heartbeat]",
        "kill: [sbd, {name: pacemaker-based, owner: hacluster}]",
    ));
    assert!(p.key.starts_with("fence.kill[1]"), "{p:?}");
    assert!(
        p.message.contains("unknown field `owner`") && p.message.contains("user"),
        "{}",
        p.message
    );

    let p = one_problem(&good_with(
        "kill: [heartbeat]",
        "kill: [sbd, {name: pacemaker-based}]",
    ));
    assert!(p.key.starts_with("fence.kill[1]"), "{p:?}");
    assert!(
        p.message.contains("`user` is missing") && p.message.contains("plain name"),
        "{}",
        p.message
    );

    let p = one_problem(&good_with("kill: [heartbeat]", "kill: [sbd, [corosync]]"));
    assert_eq!(p.key, "fence.kill[1]");
    assert!(p.message.contains("user: hacluster"), "{}", p.message);
}
