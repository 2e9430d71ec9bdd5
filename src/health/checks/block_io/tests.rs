use super::*;

const S: fn(u64) -> Duration = Duration::from_secs;
const STUCK: Duration = Duration::from_secs(30);

fn sample(completed: u64, in_flight: u64) -> Sample {
    Sample {
        completed,
        in_flight,
    }
}

#[test]
fn idle_and_progressing_disks_are_fine_and_restart_the_clock() {
    let (p, j) = judge(None, sample(10, 0), S(100), STUCK);
    assert_eq!(
        (p, j),
        (
            Progress {
                completed: 10,
                at: S(100)
            },
            Judgement::Idle
        )
    );
    let (p, j) = judge(Some(p), sample(11, 4), S(200), STUCK);
    assert_eq!(
        (p, j),
        (
            Progress {
                completed: 11,
                at: S(200)
            },
            Judgement::Completing
        )
    );
}

#[test]
fn in_flight_without_completions_becomes_stuck_at_stuck_after() {
    let (p, j) = judge(None, sample(10, 3), S(100), STUCK);
    assert_eq!(
        j,
        Judgement::Waiting {
            in_flight: 3,
            for_: S(0)
        }
    );
    let (p, j) = judge(Some(p), sample(10, 3), S(129), STUCK);
    assert_eq!(
        j,
        Judgement::Waiting {
            in_flight: 3,
            for_: S(29)
        }
    );
    assert_eq!(
        p.at,
        S(100),
        "the wait keeps counting from the last progress"
    );
    let (_, j) = judge(Some(p), sample(10, 3), S(147), STUCK);
    assert_eq!(
        j,
        Judgement::Stuck {
            in_flight: 3,
            for_: S(47)
        }
    );
}

#[test]
fn slow_but_progressing_io_is_never_stuck() {
    let mut p = None;
    for i in 0..100u64 {
        // One completion per sample, samples further apart than stuck-after.
        let (keep, j) = judge(p, sample(1000 + i, 64), S(100 + 45 * i), STUCK);
        assert!(!matches!(j, Judgement::Stuck { .. }), "run {i}");
        p = Some(keep);
    }
}

#[test]
fn a_wrapped_counter_is_progress_and_a_clock_going_back_is_no_wait() {
    let last = Progress {
        completed: u64::MAX,
        at: S(100),
    };
    assert_eq!(
        judge(Some(last), sample(0, 1), S(200), STUCK).1,
        Judgement::Completing
    );
    let last = Progress {
        completed: 5,
        at: S(100),
    };
    assert_eq!(
        judge(Some(last), sample(5, 1), S(50), STUCK).1,
        Judgement::Waiting {
            in_flight: 1,
            for_: S(0)
        }
    );
}

#[test]
fn device_names_are_checked_statically() {
    let s = Settings {
        devices: Some(vec![
            "/dev/sda".into(),
            "sda".into(),
            "mapper/x".into(),
            "".into(),
        ]),
        stuck_after: HumanDuration(Duration::ZERO),
    };
    let keys: Vec<String> = s.problems().into_iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        ["stuck-after", "devices[1]", "devices[2]", "devices[3]"]
    );
    assert!(Settings::default().problems().is_empty());
}

fn node() -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    for d in ["vda", "sda", "loop0"] {
        std::fs::create_dir_all(root.sys(format!("block/{d}"))).unwrap();
        std::fs::write(
            root.sys(format!("block/{d}/inflight")),
            "       0        0\n",
        )
        .unwrap();
    }
    std::fs::create_dir_all(root.sys("block/sda/device")).unwrap();
    std::fs::write(root.sys("block/sda/device/state"), "running\n").unwrap();
    std::fs::create_dir_all(root.proc("")).unwrap();
    (dir, root)
}

fn diskstats(root: &Root, vda_writes: u64, vda_in_flight: u64) {
    std::fs::write(
        root.proc("diskstats"),
        format!(
            "   7       0 loop0 0 0 0 0 0 0 0 0 9 0 0 0 0 0 0 0 0\n 254       0 vda 34545 6727 4157314 14251 {vda_writes} 10917 2270712 3632 {vda_in_flight} 4124 18197 4508 53 251872 293 716 20\n   8       0 sda 10931 2385 771730 6120 4419 6563 166648 9088 0 10196 12440\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_stuck_disk_in_a_fixture_tree_with_mixed_layouts() {
    let (_dir, root) = node();
    diskstats(&root, 5460, 3);
    let mut c = BlockIo::new(Settings::default(), &root).unwrap();
    let v = c.run(S(100));
    assert!(v.healthy, "{v:?}");
    assert_eq!(
        v.evidence,
        "vda: 3 requests in flight, none completed for 0 s (stuck after 30s); sda: idle or completing"
    );
    let v = c.run(S(147));
    assert_eq!(
        v,
        Verdict::unhealthy("vda: 3 requests in flight, none completed for 47 s")
    );
    diskstats(&root, 5461, 3);
    assert!(c.run(S(150)).healthy);
}

#[test]
fn settle_time_asks_for_a_second_sample_only_while_a_disk_waits() {
    let (_dir, root) = node();
    diskstats(&root, 5460, 0);
    let mut c = BlockIo::new(Settings::default(), &root).unwrap();
    assert_eq!(c.settle_time(), Some(S(30)));
    c.run(S(100));
    assert_eq!(c.settle_time(), None);
    diskstats(&root, 5461, 3);
    c.run(S(110));
    assert_eq!(c.settle_time(), None, "completing: progress seen");
    c.run(S(120));
    assert_eq!(c.settle_time(), Some(S(20)));
    c.run(S(140));
    assert_eq!(c.settle_time(), None, "stuck now: nothing left to wait for");
}

#[test]
fn inflight_in_sysfs_counts_when_diskstats_says_zero() {
    let (_dir, root) = node();
    diskstats(&root, 5460, 0);
    std::fs::write(root.sys("block/vda/inflight"), "       1        0\n").unwrap();
    let mut c = BlockIo::new(Settings::default(), &root).unwrap();
    c.run(S(0));
    assert_eq!(
        c.run(S(31)).evidence,
        "vda: 1 request in flight, none completed for 31 s"
    );
}

#[test]
fn scsi_state_listed_disks_and_broken_diskstats() {
    let (_dir, root) = node();
    diskstats(&root, 5460, 0);
    std::fs::write(root.sys("block/sda/device/state"), "transport-offline\n").unwrap();
    let mut c = BlockIo::new(Settings::default(), &root).unwrap();
    assert_eq!(
        c.run(S(0)),
        Verdict::unhealthy("sda: device state `transport-offline`, not running")
    );

    let s = Settings {
        devices: Some(vec!["/dev/vdb".into()]),
        ..Settings::default()
    };
    let mut c = BlockIo::new(s, &root).unwrap();
    assert_eq!(
        c.run(S(0)),
        Verdict::unhealthy("vdb: not in /proc/diskstats")
    );

    std::fs::write(root.proc("diskstats"), " 254 0 vda 1 2 3").unwrap();
    let v = c.run(S(0));
    assert!(
        v.evidence
            .starts_with("/proc/diskstats line 1: vda: 6 fields"),
        "{v:?}"
    );
    std::fs::remove_file(root.proc("diskstats")).unwrap();
    assert!(!c.run(S(0)).healthy);
}

#[test]
fn a_huge_diskstats_is_an_error_not_an_allocation() {
    let (_dir, root) = node();
    let line = " 254 0 vda 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0\n";
    let huge = line.repeat(5 * 1024 * 1024 / line.len() + 1);
    std::fs::write(root.proc("diskstats"), huge).unwrap();
    let v = BlockIo::new(Settings::default(), &root).unwrap().run(S(0));
    assert!(!v.healthy);
    assert!(
        v.evidence.starts_with("/proc/diskstats: larger than"),
        "{v:?}"
    );
}

#[test]
fn nvme_controllers_are_live_not_running() {
    let (_dir, root) = node();
    std::fs::create_dir_all(root.sys("block/nvme0n1/device")).unwrap();
    std::fs::write(root.sys("block/nvme0n1/device/state"), "live\n").unwrap();
    std::fs::write(root.sys("block/nvme0n1/inflight"), "0 0\n").unwrap();
    std::fs::write(
        root.proc("diskstats"),
        " 259 0 nvme0n1 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0\n",
    )
    .unwrap();
    let s = Settings {
        devices: Some(vec!["nvme0n1".into()]),
        ..Settings::default()
    };
    let mut c = BlockIo::new(s.clone(), &root).unwrap();
    assert!(c.run(S(0)).healthy);
    std::fs::write(root.sys("block/nvme0n1/device/state"), "dead\n").unwrap();
    assert!(!c.run(S(1)).healthy);
}

#[test]
fn a_disk_missing_from_diskstats_fails_and_its_scsi_state_is_still_checked() {
    let (_dir, root) = node();
    // vda and loop0 only: sda is in /sys/block but not in /proc/diskstats.
    std::fs::write(
        root.proc("diskstats"),
        " 254 0 vda 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0\n   7 0 loop0 0 0 0 0 0 0 0 0 0 0 0\n",
    )
    .unwrap();
    std::fs::write(root.sys("block/sda/device/state"), "offline\n").unwrap();
    let mut c = BlockIo::new(Settings::default(), &root).unwrap();
    assert_eq!(
        c.run(S(0)),
        Verdict::unhealthy(
            "sda: in /sys/block but not in /proc/diskstats, its I/O cannot be watched; \
             sda: device state `offline`, not running"
        )
    );
    std::fs::write(root.sys("block/sda/device/state"), "running\n").unwrap();
    assert_eq!(
        c.run(S(1)),
        Verdict::unhealthy(
            "sda: in /sys/block but not in /proc/diskstats, its I/O cannot be watched"
        )
    );
}

#[test]
fn an_empty_diskstats_fails() {
    let (_dir, root) = node();
    let mut c = BlockIo::new(Settings::default(), &root).unwrap();
    for empty in ["", "\n", "   \n\n"] {
        std::fs::write(root.proc("diskstats"), empty).unwrap();
        assert_eq!(
            c.run(S(0)),
            Verdict::unhealthy("/proc/diskstats lists no block devices"),
            "{empty:?}"
        );
    }
}

#[test]
fn an_unreadable_or_garbled_inflight_fails() {
    let (_dir, root) = node();
    diskstats(&root, 5460, 0);
    let mut c = BlockIo::new(Settings::default(), &root).unwrap();
    assert!(c.run(S(0)).healthy);
    std::fs::write(root.sys("block/vda/inflight"), "garbage\n").unwrap();
    let v = c.run(S(1));
    assert!(!v.healthy, "{v:?}");
    assert!(
        v.evidence
            .starts_with("vda: cannot read its requests in flight: /sys/block/vda/inflight"),
        "{v:?}"
    );
    std::fs::remove_file(root.sys("block/vda/inflight")).unwrap();
    assert!(!c.run(S(2)).healthy);
}

#[test]
fn by_default_drbd_nbd_and_what_is_stacked_on_them_are_left_out_and_listed_ones_watched() {
    let (_dir, root) = node();
    for d in ["drbd0", "nbd0", "dm-0", "dm-1"] {
        std::fs::create_dir_all(root.sys(format!("block/{d}/slaves"))).unwrap();
        std::fs::write(root.sys(format!("block/{d}/inflight")), "0 2\n").unwrap();
    }
    std::fs::write(root.sys("block/dm-0/slaves/drbd0"), "").unwrap(); // LVM on DRBD
    std::fs::write(root.sys("block/dm-1/slaves/sda"), "").unwrap(); // LVM on a disk
                                                                    // drbd0 and dm-0 wait on a frozen peer: requests in flight, nothing completes.
    let stats = |n: u64| {
        format!(
            " 254 0 vda {n} 0 0 0 1 0 0 0 0 0 0\n   8 0 sda 1 0 0 0 1 0 0 0 0 0 0\n 147 0 drbd0 5 0 0 0 9 0 0 0 2 0 0\n  43 0 nbd0 0 0 0 0 0 0 0 0 0 0 0\n 253 0 dm-0 5 0 0 0 9 0 0 0 2 0 0\n 253 1 dm-1 {n} 0 0 0 1 0 0 0 0 0 0\n   7 0 loop0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    };
    std::fs::write(root.proc("diskstats"), stats(1)).unwrap();
    let mut c = BlockIo::new(Settings::default(), &root).unwrap();
    assert!(c.run(S(100)).healthy);
    std::fs::write(root.proc("diskstats"), stats(2)).unwrap();
    let v = c.run(S(200));
    assert_eq!(v, Verdict::healthy("dm-1, sda, vda: idle or completing"));
    // Listed, drbd0 is watched (with the warning validate prints) and its stall seen.
    let listed = Settings {
        devices: Some(vec!["vda".into(), "/dev/drbd0".into()]),
        ..Settings::default()
    };
    let mut c = BlockIo::new(listed, &root).unwrap();
    assert!(c.run(S(100)).healthy);
    let v = c.run(S(200));
    assert_eq!(
        v,
        Verdict::unhealthy("drbd0: 2 requests in flight, none completed for 100 s")
    );
}
