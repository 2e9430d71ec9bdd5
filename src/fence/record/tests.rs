//! The fence record against tmpfs directories, every state it can be in.

use super::*;

const BOOT: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
const OTHER: &str = "ffffffff-4f50-6172-8394-a5b6c7d8e9f0";

/// A directory on tmpfs (/dev/shm), as the record demands.
fn shm() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wdfeed-record-")
        .tempdir_in("/dev/shm")
        .unwrap()
}

#[test]
fn a_first_start_finds_nothing_and_leaves_a_clean_record() {
    let dir = shm();
    let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
    assert_eq!(found, Found::Nothing);
    assert!(found.may_arm());
    let (_r, again) = FenceRecord::open(dir.path(), BOOT).unwrap();
    assert_eq!(again, Found::CleanThisBoot);
}

#[test]
fn a_fence_in_this_boot_is_found_by_the_next_start() {
    let dir = shm();
    let (r, _) = FenceRecord::open(dir.path(), BOOT).unwrap();
    r.write_fenced(
        Duration::from_millis(123_456),
        "writable /mnt/data",
        "read-only",
    )
    .unwrap();
    drop(r);
    let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
    match &found {
        Found::FencedThisBoot {
            at_boot_s, reason, ..
        } => {
            assert_eq!(*at_boot_s, 123.456);
            assert_eq!(reason, "writable /mnt/data: read-only");
        }
        other => panic!("expected fenced, got {other:?}"),
    }
    assert!(!found.may_arm());
    assert!(found
        .describe(Path::new("/run/wdfeed/fence"))
        .starts_with("fenced earlier in this boot at 123.5 s after boot"));
    // still fenced: a second restart does not clear it
    let (_r, again) = FenceRecord::open(dir.path(), BOOT).unwrap();
    assert!(matches!(again, Found::FencedThisBoot { .. }));
}

#[test]
fn a_long_reason_in_any_script_is_cut_on_a_character_boundary_and_reads_back() {
    let dir = shm();
    let (r, _) = FenceRecord::open(dir.path(), BOOT).unwrap();
    let evidence = "é".repeat(300);
    r.write_fenced(Duration::from_secs(9), "writable /srvx", &evidence)
        .unwrap();
    drop(r);
    let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
    match &found {
        Found::FencedThisBoot { reason, .. } => {
            assert!(reason.starts_with("writable /srvx: éé"), "{reason}");
            assert!(reason.len() < evidence.len(), "cut to the record's size");
        }
        other => panic!("expected fenced with its reason, got {other:?}"),
    }
}

#[test]
fn a_record_of_another_boot_is_ignored_and_overwritten_as_clean() {
    let dir = shm();
    let (r, _) = FenceRecord::open(dir.path(), OTHER).unwrap();
    r.write_fenced(Duration::from_secs(5), "process fakehb", "gone")
        .unwrap();
    drop(r);
    let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
    assert_eq!(
        found,
        Found::OtherBoot {
            boot: OTHER.to_string()
        }
    );
    assert!(found.may_arm());
    let (_r, again) = FenceRecord::open(dir.path(), BOOT).unwrap();
    assert_eq!(again, Found::CleanThisBoot);
}

#[test]
fn damaged_records_of_this_boot_do_not_arm_and_stay() {
    let dir = shm();
    let path = dir.path().join(FILE_NAME);
    for bad in [
        "garbage".to_string(),
        format!("{MAGIC}\n"),
        format!("{MAGIC}\nboot {BOOT}\n"),
        format!("{MAGIC}\nboot {BOOT}\nstate fenced\n"),
        format!("{MAGIC}\nboot {BOOT}\nstate fenced\nat x 1\n"),
        format!("{MAGIC}\nboot {BOOT}\nstate maybe\n"),
    ] {
        std::fs::write(&path, &bad).unwrap();
        let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
        assert!(matches!(found, Found::Damaged { .. }), "{bad:?}: {found:?}");
        assert!(!found.may_arm());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            bad,
            "left as found"
        );
    }
    std::fs::write(&path, [0xffu8, 0xfe, 0x00]).unwrap();
    let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
    assert!(matches!(found, Found::Damaged { .. }));
}

#[test]
fn a_truncated_record_is_damaged_not_clean() {
    let dir = shm();
    let (r, _) = FenceRecord::open(dir.path(), BOOT).unwrap();
    r.write_fenced(Duration::from_secs(7), "c", "e").unwrap();
    drop(r);
    let path = dir.path().join(FILE_NAME);
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..MAGIC.len() + 10]).unwrap();
    let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
    assert!(matches!(found, Found::Damaged { .. }), "{found:?}");
}

#[test]
fn a_long_reason_is_cut_and_the_record_still_reads() {
    let dir = shm();
    let (r, _) = FenceRecord::open(dir.path(), BOOT).unwrap();
    r.write_fenced(Duration::from_secs(9), "c", &"x\n".repeat(2000))
        .unwrap();
    drop(r);
    assert_eq!(
        std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len(),
        SIZE as u64
    );
    let (_r, found) = FenceRecord::open(dir.path(), BOOT).unwrap();
    assert!(matches!(found, Found::FencedThisBoot { .. }), "{found:?}");
}

#[test]
fn a_disk_backed_directory_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let err = match FenceRecord::open(dir.path(), BOOT) {
        Ok(_) => return, // the build tree itself is on tmpfs: nothing to prove here
        Err(e) => e,
    };
    assert!(err.contains("not memory-backed"), "{err}");
    assert!(err.contains("--runtime-dir"), "{err}");
}

#[test]
fn the_boot_id_is_read_under_the_root_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proc/sys/kernel/random");
    std::fs::create_dir_all(&p).unwrap();
    let root = Root::at(dir.path());
    assert!(read_boot_id(&root).unwrap_err().contains("cannot read"));
    std::fs::write(p.join("boot_id"), format!("{BOOT}\n")).unwrap();
    assert_eq!(read_boot_id(&root).unwrap(), BOOT);
    std::fs::write(p.join("boot_id"), "hello\n").unwrap();
    assert!(read_boot_id(&root)
        .unwrap_err()
        .contains("does not hold a boot id"));
}

#[test]
fn a_boot_id_that_is_a_symlink_is_followed_inside_the_root() {
    // The last component links to an absolute path that only the fixture has.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proc/sys/kernel/random");
    std::fs::create_dir_all(&p).unwrap();
    let target = "/run/wdfeed-fixture-only/boot_id";
    assert!(!std::path::Path::new(target).exists());
    std::fs::create_dir_all(dir.path().join("run/wdfeed-fixture-only")).unwrap();
    std::fs::write(dir.path().join(&target[1..]), format!("{BOOT}\n")).unwrap();
    std::os::unix::fs::symlink(target, p.join("boot_id")).unwrap();
    assert_eq!(read_boot_id(&Root::at(dir.path())).unwrap(), BOOT);
}
