//! `watchdog.yaml` through the binary: unsafe permissions and their override.

mod util;

use std::os::unix::fs::PermissionsExt;

use util::*;

#[test]
fn a_world_writable_config_is_refused_unless_allowed_by_flag_or_env() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o666)).unwrap();
    let path = cfg.display().to_string();

    let o = run(&["validate", &path]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("writable by every user"),
        "{}",
        stderr(&o)
    );

    let o = run(&["--allow-unsafe-config", "validate", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("allowed by --allow-unsafe-config"), "{all}");

    let o = wdfeed()
        .env("WDFEED_ALLOW_UNSAFE_CONFIG", "1")
        .args(["validate", &path])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn validate_reports_every_bad_entry_with_file_line_column_and_key_in_yaml_words() {
    let fx = FixtureRoot::new();
    let cfg = fx.write(
        "w.yaml",
        "devices:\n  - /dev/watchdog0\n  - path: /dev/watchdog1\n    timeout: soon\ninterval: 5s\ninterval: 5s\nchecks:\n  - kind: writable\n    every: fast\n  - kind: load\n    tolerance: -1\n  - kind: memory\n    bogus: 1\n",
    );
    let path = cfg.display().to_string();
    let o = run(&["validate", &path]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    for want in [
        format!("{path}:2:5: `devices[0]`: a device is a mapping with the keys `path`, `timeout`, `pretimeout`"),
        format!("{path}:4:5: `devices[1].timeout`: `soon` is not a duration"),
        format!("{path}:6:1: `interval`: `interval` is written again in the same mapping (first at line 5)"),
        format!("{path}:9:5: `checks[0].every`: `fast` is not a duration"),
        format!("{path}:11:5: `checks[1].tolerance`: invalid value: integer `-1`, expected a whole number"),
        format!("{path}:13:5: `checks[2].bogus`: unknown field `bogus`"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("Raw") && !err.contains("u32"), "{err}");
}
