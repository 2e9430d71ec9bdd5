//! The file on disk: who may write it and its directory, a missing file.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn config_in(dir_mode: u32, file_mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("etc");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("watchdog.yaml");
    std::fs::write(&path, GOOD).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file_mode)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
    (top, path)
}

fn am_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

#[test]
fn a_config_only_its_owner_can_write_is_accepted_without_warning() {
    let (_t, path) = config_in(0o755, 0o644);
    assert!(load(Some(&path)).unwrap().warnings.is_empty());
}

#[test]
fn a_config_others_can_write_is_refused_with_the_fix() {
    let (_t, path) = config_in(0o755, 0o666);
    let e = load(Some(&path)).unwrap_err().to_string();
    assert!(e.contains("writable by every user (mode 666)"), "{e}");
    assert!(e.contains("chmod go-w"), "{e}");
    assert!(e.contains("--allow-unsafe-config"), "{e}");
}

#[test]
fn a_directory_others_can_write_is_refused() {
    let (_t, path) = config_in(0o777, 0o644);
    let e = load(Some(&path)).unwrap_err().to_string();
    assert!(e.contains("its directory"), "{e}");
    assert!(e.contains("can replace the config"), "{e}");
}

#[test]
fn group_write_is_refused_unless_the_group_is_roots() {
    if !am_root() {
        return;
    }
    let (_t, path) = config_in(0o755, 0o664);
    std::os::unix::fs::chown(&path, None, Some(0)).unwrap();
    assert!(load(Some(&path)).is_ok());
    std::os::unix::fs::chown(&path, None, Some(65534)).unwrap();
    let e = load(Some(&path)).unwrap_err().to_string();
    assert!(e.contains("writable by its group"), "{e}");
}

#[test]
fn the_owner_of_the_file_and_of_its_directory_count() {
    if !am_root() {
        return;
    }
    let (_t, path) = config_in(0o755, 0o644);
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let w = load(Some(&path)).unwrap().warnings;
    assert!(
        w.iter().any(|w| w.contains("owned by uid 65534, not root")),
        "{w:?}"
    );
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    std::os::unix::fs::chown(path.parent().unwrap(), Some(65534), None).unwrap();
    let e = load(Some(&path)).unwrap_err().to_string();
    assert!(e.contains("owned by uid 65534, who can replace"), "{e}");
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let err = load(Some(Path::new("/nonexistent/w.yaml"))).unwrap_err();
    assert!(err.to_string().contains("cannot read the config"), "{err}");
}
