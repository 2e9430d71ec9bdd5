//! The file on disk: permissions, a missing file.

use super::*;

#[test]
fn a_world_writable_config_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchdog.yaml");
    std::fs::write(&path, GOOD).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(load(Some(&path)).unwrap().warnings.is_empty());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let w = load(Some(&path)).unwrap().warnings;
    assert!(w.iter().any(|w| w.contains("chmod go-w")), "{w:?}");
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let err = load(Some(Path::new("/nonexistent/w.yaml"))).unwrap_err();
    assert!(err.to_string().contains("cannot read the config"), "{err}");
}
