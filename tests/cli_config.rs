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
