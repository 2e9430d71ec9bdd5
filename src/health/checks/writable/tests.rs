use super::*;
use crate::health::checks::{parse_settings, CheckSettings};

fn settings(yaml: &str) -> Settings {
    match parse_settings("writable", serde_yaml::from_str(yaml).unwrap()).unwrap() {
        CheckSettings::Writable(s) => s,
        other => panic!("{other:?}"),
    }
}

fn keys(s: &Settings) -> Vec<String> {
    s.problems().into_iter().map(|p| p.key).collect::<Vec<_>>()
}

#[test]
fn defaults() {
    let s = settings("{}");
    assert_eq!(s, Settings::default());
    assert_eq!(s.probe_path(Path::new("/")), Path::new("/.wdfeed/probe"));
    assert_eq!(
        s.probe_path(Path::new("/srv/nfs")),
        Path::new("/srv/nfs/.wdfeed/probe")
    );
    assert!(s.problems().is_empty());
}

#[test]
fn probe_paths_must_lie_on_their_mount() {
    let s = settings(
        "mounts: [/, /srv, /srv/db]\nprobe-paths:\n  /: /srv/x\n  /srv: /srv/data/.p\n  /srv/db: /srv/.p\n",
    );
    assert_eq!(keys(&s), ["probe-paths./", "probe-paths./srv/db"]);
    let p = s.problems();
    assert!(
        p[0].message.contains("on `/srv`, another listed mount"),
        "{p:?}"
    );
    assert!(p[1].message.contains("not below the mount point"), "{p:?}");

    let s = settings("mounts: [/srv]\nprobe-paths: {/var: /var/.p}\n");
    assert_eq!(keys(&s), ["probe-paths./var"]);
    let s = settings("mounts: [/srv]\nprobe-paths: {/srv: /srv/../etc/passwd}\n");
    assert!(s.problems()[0].message.contains("`..`"));
    let s = settings("mounts: [/srv]\nprobe-paths: {/srv: /srv}\n");
    assert_eq!(keys(&s), ["probe-paths./srv"]);
    let s = settings("mounts: [/srv]\nprobe: false\nprobe-paths: {/srv: /srv/.p}\n");
    assert_eq!(keys(&s), ["probe-paths"]);
}

#[test]
fn mounts_must_be_absolute_listed_once_and_present() {
    assert_eq!(keys(&settings("mounts: []")), ["mounts"]);
    assert_eq!(
        keys(&settings("mounts: [/, srv, /]")),
        ["mounts[1]", "mounts[2]"]
    );
}

/// The `major:minor` of the filesystem `path` is on, as mountinfo would give it.
fn devno_of(path: &Path) -> (u64, u64) {
    let st = nix::sys::stat::stat(path).unwrap();
    (
        nix::sys::stat::major(st.st_dev),
        nix::sys::stat::minor(st.st_dev),
    )
}

/// A fixture node whose `/` is mounted (mountinfo carries the real device of the temporary
/// directory, so the probe's st_dev check holds) with an ext4 record for vda1.
fn node(opts: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    std::fs::create_dir_all(root.proc("1")).unwrap();
    write_mountinfo(dir.path(), 27, opts);
    std::fs::write(root.proc("stat"), "cpu 1 2 3\nbtime 1795551161\n").unwrap();
    let e = root.sys("fs/ext4/vda1");
    std::fs::create_dir_all(&e).unwrap();
    std::fs::write(e.join("errors_count"), "2\n").unwrap();
    std::fs::write(e.join("last_error_time"), "1700000000\n").unwrap();
    dir
}

/// `/` as mount `id` with options `opts`, on the real device of `base`.
fn write_mountinfo(base: &Path, id: u32, opts: &str) {
    let (ma, mi) = devno_of(base);
    std::fs::write(
        base.join("proc/1/mountinfo"),
        format!("22 27 0:21 / /proc rw,relatime - proc proc rw\n{id} 1 {ma}:{mi} / / {opts} - ext4 /dev/vda1 rw,errors=remount-ro\n"),
    )
    .unwrap();
}

/// Descriptors of this process open on a path under `dir`.
fn open_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|t| t.starts_with(dir))
        .collect()
}

#[test]
fn healthy_node_probes_and_reports_each_signal() {
    let dir = node("rw,relatime");
    let mut c = Writable::new(
        Settings::default(),
        &Root::at(dir.path()),
        ErrorsSince::Boot,
    )
    .unwrap();
    let v = c.run(Duration::from_secs(7));
    assert!(v.healthy, "{v:?}");
    assert_eq!(
        v.evidence,
        "/ rw in /proc/1/mountinfo, ext4 vda1 errors_count 2, probe /.wdfeed/probe synced"
    );
    let stamp = std::fs::read_to_string(dir.path().join(".wdfeed/probe")).unwrap();
    assert!(stamp.trim_end().ends_with(" 7000"), "{stamp:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(
        mode(".wdfeed"),
        0o700,
        "a directory only wdfeed's user may enter"
    );
    assert_eq!(mode(".wdfeed/probe"), 0o600);
    // Nothing stays open on the filesystem between runs: it is never kept busy.
    assert_eq!(open_under(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_rising_error_count_fails_and_an_old_one_does_not() {
    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    let mut c = Writable::new(Settings::default(), &root, ErrorsSince::Boot).unwrap();
    assert!(c.run(Duration::from_secs(1)).healthy);
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "3\n").unwrap();
    let v = c.run(Duration::from_secs(2));
    assert_eq!(
        v,
        Verdict::unhealthy("/ (vda1): ext4 errors_count 3, was 2 when wdfeed began watching it")
    );
}

#[test]
fn an_error_during_this_boot_fails_even_if_it_came_before_start_up() {
    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    std::fs::write(root.sys("fs/ext4/vda1/last_error_time"), "1795551300\n").unwrap();
    let mut c = Writable::new(Settings::default(), &root, ErrorsSince::Boot).unwrap();
    let v = c.run(Duration::from_secs(1));
    assert!(!v.healthy);
    assert!(v.evidence.contains("ext4 error during this boot"), "{v:?}");
}

/// The survivor of a failover mounts the filesystem the failed node used: DRBD replicated
/// the superblock, and with it the ext4 error the failed node recorded after this node
/// booted. A check whose `when:` just turned true must not fence the survivor for it; a new
/// error after it began watching still fails.
#[test]
fn a_failover_filesystem_carrying_the_other_nodes_error_is_watched_from_first_sight() {
    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    // Recorded by the other node during this node's boot (after btime 1795551161).
    std::fs::write(root.sys("fs/ext4/vda1/last_error_time"), "1795551300\n").unwrap();
    let s = Settings::default();
    let mut at_start = Writable::new(s.clone(), &root, ErrorsSince::Boot).unwrap();
    assert!(
        !at_start.run(Duration::from_secs(1)).healthy,
        "watched since boot: this boot's error counts"
    );
    let mut c = CheckKind::build_on_condition(&s, &root).unwrap();
    let v = c.run(Duration::from_secs(1));
    assert!(v.healthy, "{v:?}");
    // A new error while this node has it: the count and the time both move.
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "3\n").unwrap();
    let v = c.run(Duration::from_secs(2));
    assert!(
        !v.healthy && v.evidence.contains("errors_count 3, was 2"),
        "{v:?}"
    );
    // The time alone moving (the count already high, or reset by a fsck elsewhere) fails too.
    let mut c = CheckKind::build_on_condition(&s, &root).unwrap();
    assert!(c.run(Duration::from_secs(3)).healthy);
    std::fs::write(root.sys("fs/ext4/vda1/last_error_time"), "1795551400\n").unwrap();
    let v = c.run(Duration::from_secs(4));
    assert!(
        !v.healthy
            && v.evidence
                .contains("ext4 error since wdfeed began watching it"),
        "{v:?}"
    );
}

#[test]
fn read_only_mount_or_superblock_fails() {
    let dir = node("ro,relatime");
    let s = Settings {
        probe: false,
        ..Settings::default()
    };
    let v = Writable::new(s.clone(), &Root::at(dir.path()), ErrorsSince::Boot)
        .unwrap()
        .run(Duration::ZERO);
    assert_eq!(v, Verdict::unhealthy("/ read-only in /proc/1/mountinfo"));

    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    let mut c = Writable::new(s, &root, ErrorsSince::Boot).unwrap();
    std::fs::write(
        root.proc("1/mountinfo"),
        "27 1 254:1 / / rw,relatime - ext4 /dev/vda1 ro,errors=remount-ro\n",
    )
    .unwrap();
    let v = c.run(Duration::ZERO);
    assert!(
        v.evidence.contains("filesystem ext4 on /dev/vda1 is ro"),
        "{v:?}"
    );
}

#[test]
fn a_mount_mounted_again_is_watched_again_and_a_vanished_one_fails() {
    let dir = node("rw");
    let root = Root::at(dir.path());
    let mut c = Writable::new(Settings::default(), &root, ErrorsSince::Boot).unwrap();
    assert!(c.run(Duration::from_secs(1)).healthy);
    // Unmounted and mounted again (a new mount id) with more errors recorded meanwhile: the
    // new mount is watched from its own baseline, and its probe written again.
    write_mountinfo(dir.path(), 88, "rw");
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "5\n").unwrap();
    let v = c.run(Duration::from_secs(2));
    assert!(v.healthy, "{v:?}");
    assert!(
        v.evidence
            .contains("errors_count 5, probe /.wdfeed/probe synced"),
        "{v:?}"
    );
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "6\n").unwrap();
    assert!(!c.run(Duration::from_secs(3)).healthy);
    std::fs::write(
        root.proc("1/mountinfo"),
        "22 27 0:21 / /proc rw - proc proc rw\n",
    )
    .unwrap();
    assert!(c.run(Duration::ZERO).evidence.contains("/ is not mounted"));
    std::fs::write(
        root.proc("1/mountinfo"),
        "22 27 0:21 / /proc rw - proc proc",
    )
    .unwrap();
    let v = c.run(Duration::ZERO);
    assert!(
        v.evidence
            .contains("/proc/1/mountinfo line 1: superblock options missing"),
        "{v:?}"
    );
}

#[test]
fn a_probe_never_writes_to_a_filesystem_other_than_the_one_mounted_there_now() {
    let dir = node("rw");
    let root = Root::at(dir.path());
    let mut c = Writable::new(Settings::default(), &root, ErrorsSince::Boot).unwrap();
    // mountinfo names another device at / (the old one was unmounted meanwhile).
    std::fs::write(
        root.proc("1/mountinfo"),
        "27 1 254:77 / / rw - ext4 /dev/vda1 rw\n",
    )
    .unwrap();
    let v = c.run(Duration::from_secs(1));
    assert!(!v.healthy, "{v:?}");
    assert!(
        v.evidence
            .contains("not 254:77, the filesystem mountinfo says is mounted there now"),
        "{v:?}"
    );
}

#[test]
fn start_up_refuses_unmounted_mounts_and_unsafe_probes() {
    let dir = node("rw");
    let root = Root::at(dir.path());
    let s = Settings {
        mounts: vec!["/srv".into()],
        ..Settings::default()
    };
    let e = Writable::new(s, &root, ErrorsSince::Boot).err().unwrap();
    assert!(e.contains("/srv is not mounted"), "{e}");
    assert!(e.contains("`when: {mounted: /srv}`"), "{e}");

    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
    let mut s = Settings::default();
    s.probe_paths.insert("/".into(), "/link".into());
    let e = Writable::new(s, &root, ErrorsSince::Boot).err().unwrap();
    assert_eq!(e, "probe /link: cannot open: is a symlink: not followed");

    let mut s = Settings::default();
    s.probe_paths.insert("/".into(), "/missing/dir/.p".into());
    let e = Writable::new(s, &root, ErrorsSince::Boot).err().unwrap();
    assert!(e.contains("/missing: does not exist"), "{e}");
}

#[test]
fn the_probe_lives_only_where_no_other_user_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = node("rw");
    let root = Root::at(dir.path());
    let set_mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    // A sticky world-writable mount root (a separate /tmp): wdfeed creates nothing there.
    set_mode(dir.path(), 0o1777);
    let e = Writable::new(Settings::default(), &root, ErrorsSince::Boot)
        .err()
        .unwrap();
    assert!(
        e.starts_with("probe /.wdfeed/probe: / is writable by every user (mode 1777)"),
        "{e}"
    );
    assert!(e.contains("set probe-paths"), "{e}");
    assert!(
        !dir.path().join(".wdfeed").exists(),
        "nothing created there"
    );
    // A directory of root's made there beforehand cannot be moved or removed by others
    // (sticky): the probe may live below it, in a directory wdfeed makes.
    std::fs::create_dir(dir.path().join("admin")).unwrap();
    set_mode(&dir.path().join("admin"), 0o755);
    let mut s = Settings::default();
    s.probe_paths
        .insert("/".into(), "/admin/wdfeed/probe".into());
    let mut c = Writable::new(s.clone(), &root, ErrorsSince::Boot).unwrap();
    assert!(c.run(Duration::from_secs(1)).healthy);
    // Without the sticky bit, others could rename `admin` away: refused.
    set_mode(dir.path(), 0o777);
    let v = c.run(Duration::from_secs(2));
    assert!(
        v.evidence
            .contains("/ is writable by every user (mode 777)"),
        "{v:?}"
    );
    set_mode(dir.path(), 0o755);
    assert!(c.run(Duration::from_secs(3)).healthy);
    // A directory on the way that a group other than root's may write.
    let gid = nix::sys::stat::stat(&dir.path().join("admin"))
        .unwrap()
        .st_gid;
    if gid != 0 {
        set_mode(&dir.path().join("admin"), 0o775);
        let v = c.run(Duration::from_secs(4));
        assert!(v.evidence.contains("/admin is writable by group"), "{v:?}");
    }
}

#[test]
fn a_fifo_a_symlink_or_a_directory_at_the_probe_path_never_hangs_and_is_never_written_through() {
    let dir = node("rw");
    let root = Root::at(dir.path());
    let mut c = Writable::new(Settings::default(), &root, ErrorsSince::Boot).unwrap();
    let probe = dir.path().join(".wdfeed/probe");
    std::fs::remove_file(&probe).unwrap();
    let target = dir.path().join("victim");
    std::fs::write(&target, "precious\n").unwrap();
    nix::unistd::mkfifo(&probe, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let v = c.run(Duration::from_secs(1));
    assert_eq!(
        v,
        Verdict::unhealthy("probe /.wdfeed/probe: cannot open: is a FIFO: not opened")
    );
    std::fs::remove_file(&probe).unwrap();
    std::os::unix::fs::symlink(&target, &probe).unwrap();
    let v = c.run(Duration::from_secs(2));
    assert!(v.evidence.ends_with("is a symlink: not followed"), "{v:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    std::fs::remove_file(&probe).unwrap();
    std::fs::create_dir(&probe).unwrap();
    let v = c.run(Duration::from_secs(3));
    assert!(v.evidence.ends_with("is a directory: not written"), "{v:?}");
    std::fs::remove_dir(&probe).unwrap();
    // Replaced by a symlink, the probe's directory itself is not followed either.
    let wd = dir.path().join(".wdfeed");
    std::fs::remove_dir(&wd).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &wd).unwrap();
    let v = c.run(Duration::from_secs(4));
    assert!(
        v.evidence.contains("/.wdfeed: is a symlink: not followed"),
        "{v:?}"
    );
    std::fs::remove_file(&wd).unwrap();
    assert!(c.run(Duration::from_secs(5)).healthy, "recreated");
}

#[test]
fn probe_on_another_filesystem_is_refused() {
    // /dev/shm is a tmpfs on every Linux box; / usually is not. Skip if it is.
    let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
        return;
    };
    let (ma, mi) = devno_of(Path::new("/"));
    if (ma, mi) == devno_of(shm.path()) {
        return;
    }
    let devno = (u32::try_from(ma).unwrap(), u32::try_from(mi).unwrap());
    let e = probe::write(
        &Root::host(),
        Path::new("/"),
        devno,
        &shm.path().join("d/.p"),
        Duration::ZERO,
    )
    .err()
    .unwrap();
    assert!(e.contains("/dev is on another filesystem than /"), "{e}");
}

#[test]
fn an_unreadable_or_garbled_ext4_error_record_fails() {
    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    let mut c = Writable::new(Settings::default(), &root, ErrorsSince::Boot).unwrap();
    assert!(c.run(Duration::from_secs(1)).healthy);
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "lots\n").unwrap();
    assert_eq!(
        c.run(Duration::from_secs(2)),
        Verdict::unhealthy(
            "/: cannot read its ext4 error record: /sys/fs/ext4/vda1/errors_count: \
             errors_count `lots` is not a counter"
        )
    );
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "2\n").unwrap();
    std::fs::remove_file(root.sys("fs/ext4/vda1/last_error_time")).unwrap();
    let v = c.run(Duration::from_secs(3));
    assert!(!v.healthy, "{v:?}");
    assert!(
        v.evidence
            .starts_with("/: cannot read its ext4 error record: /sys/fs/ext4/vda1/last_error_time"),
        "{v:?}"
    );
}

#[test]
fn an_error_record_unreadable_at_start_up_fails_until_it_can_be_read() {
    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "\n").unwrap();
    let mut c = Writable::new(Settings::default(), &root, ErrorsSince::Boot).unwrap();
    let v = c.run(Duration::from_secs(1));
    assert!(!v.healthy, "{v:?}");
    assert!(v.evidence.contains("errors_count"), "{v:?}");
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "2\n").unwrap();
    assert!(c.run(Duration::from_secs(2)).healthy);
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "3\n").unwrap();
    assert!(!c.run(Duration::from_secs(3)).healthy);
}

#[test]
fn an_ext4_mount_without_an_error_record_fails() {
    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    std::fs::remove_dir_all(root.sys("fs/ext4/vda1")).unwrap();
    let mut c = Writable::new(Settings::default(), &root, ErrorsSince::Boot).unwrap();
    let v = c.run(Duration::from_secs(1));
    assert!(!v.healthy, "{v:?}");
    assert!(
        v.evidence
            .starts_with("/: cannot read its ext4 error record: /sys/fs/ext4/vda1/errors_count"),
        "{v:?}"
    );
}

#[test]
fn an_unreadable_or_garbled_boot_time_fails() {
    for stat in [None, Some("cpu 1 2 3\n"), Some("btime soon\n")] {
        let dir = node("rw,relatime");
        let root = Root::at(dir.path());
        match stat {
            None => std::fs::remove_file(root.proc("stat")).unwrap(),
            Some(s) => std::fs::write(root.proc("stat"), s).unwrap(),
        }
        let mut c = Writable::new(Settings::default(), &root, ErrorsSince::Boot).unwrap();
        let v = c.run(Duration::from_secs(1));
        assert!(!v.healthy, "{stat:?}: {v:?}");
        assert!(
            v.evidence.starts_with(
                "/ (vda1): cannot tell this boot's ext4 errors from older ones: /proc/stat"
            ),
            "{stat:?}: {v:?}"
        );
        std::fs::write(root.proc("stat"), "cpu 1 2 3\nbtime 1795551161\n").unwrap();
        assert!(c.run(Duration::from_secs(2)).healthy, "{stat:?}: recovers");
    }
}
