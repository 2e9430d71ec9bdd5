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
    assert_eq!(s.probe_path(Path::new("/")), Path::new("/.wdfeed-probe"));
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

/// A fixture node whose `/` is a tmpfs-like directory with an ext4 record for vda1.
fn node(opts: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    std::fs::create_dir_all(root.proc("1")).unwrap();
    std::fs::write(
        root.proc("1/mountinfo"),
        format!("22 27 0:21 / /proc rw,relatime - proc proc rw\n27 1 254:1 / / {opts} - ext4 /dev/vda1 rw,errors=remount-ro\n"),
    )
    .unwrap();
    std::fs::write(root.proc("stat"), "cpu 1 2 3\nbtime 1795551161\n").unwrap();
    let e = root.sys("fs/ext4/vda1");
    std::fs::create_dir_all(&e).unwrap();
    std::fs::write(e.join("errors_count"), "2\n").unwrap();
    std::fs::write(e.join("last_error_time"), "1700000000\n").unwrap();
    dir
}

#[test]
fn healthy_node_probes_and_reports_each_signal() {
    let dir = node("rw,relatime");
    let mut c = Writable::new(Settings::default(), &Root::at(dir.path())).unwrap();
    let v = c.run(Duration::from_secs(7));
    assert!(v.healthy, "{v:?}");
    assert_eq!(
        v.evidence,
        "/ rw in /proc/1/mountinfo, ext4 vda1 errors_count 2, probe /.wdfeed-probe synced"
    );
    let stamp = std::fs::read_to_string(dir.path().join(PROBE_NAME)).unwrap();
    assert!(stamp.trim_end().ends_with(" 7000"), "{stamp:?}");
}

#[test]
fn a_rising_error_count_fails_and_an_old_one_does_not() {
    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    let mut c = Writable::new(Settings::default(), &root).unwrap();
    assert!(c.run(Duration::from_secs(1)).healthy);
    std::fs::write(root.sys("fs/ext4/vda1/errors_count"), "3\n").unwrap();
    let v = c.run(Duration::from_secs(2));
    assert_eq!(
        v,
        Verdict::unhealthy("/ (vda1): ext4 errors_count 3, was 2 at start-up")
    );
}

#[test]
fn an_error_during_this_boot_fails_even_if_it_came_before_start_up() {
    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    std::fs::write(root.sys("fs/ext4/vda1/last_error_time"), "1795551300\n").unwrap();
    let mut c = Writable::new(Settings::default(), &root).unwrap();
    let v = c.run(Duration::from_secs(1));
    assert!(!v.healthy);
    assert!(v.evidence.contains("ext4 error during this boot"), "{v:?}");
}

#[test]
fn read_only_mount_or_superblock_fails() {
    let dir = node("ro,relatime");
    let s = Settings {
        probe: false,
        ..Settings::default()
    };
    let v = Writable::new(s.clone(), &Root::at(dir.path()))
        .unwrap()
        .run(Duration::ZERO);
    assert_eq!(v, Verdict::unhealthy("/ read-only in /proc/1/mountinfo"));

    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    let mut c = Writable::new(s, &root).unwrap();
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
fn a_vanished_or_replaced_mount_fails() {
    let dir = node("rw");
    let root = Root::at(dir.path());
    let s = Settings {
        probe: false,
        ..Settings::default()
    };
    let mut c = Writable::new(s, &root).unwrap();
    std::fs::write(
        root.proc("1/mountinfo"),
        "27 1 254:2 / / rw - ext4 /dev/vda2 rw\n",
    )
    .unwrap();
    assert!(c
        .run(Duration::ZERO)
        .evidence
        .contains("is now 254:2, was 254:1"));
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
fn start_up_refuses_unmounted_mounts_and_unsafe_probes() {
    let dir = node("rw");
    let root = Root::at(dir.path());
    let s = Settings {
        mounts: vec!["/srv".into()],
        ..Settings::default()
    };
    let e = Writable::new(s, &root).err().unwrap();
    assert!(e.contains("/srv is not mounted"), "{e}");

    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
    let mut s = Settings::default();
    s.probe_paths.insert("/".into(), "/link".into());
    let e = Writable::new(s, &root).err().unwrap();
    assert!(e.starts_with("probe /link: cannot open"), "{e}");

    let mut s = Settings::default();
    s.probe_paths.insert("/".into(), "/missing/dir/.p".into());
    assert!(Writable::new(s, &root).is_err());
}

#[test]
fn probe_on_another_filesystem_is_refused_at_start_up() {
    // /dev/shm is a tmpfs on every Linux box; the temp dir usually is not. Skip if it is.
    let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
        return;
    };
    let dir = node("rw");
    if std::fs::metadata(shm.path()).unwrap().dev() == std::fs::metadata(dir.path()).unwrap().dev()
    {
        return;
    }
    // Symlinks of a fixture root stay inside it, so the other filesystem is this machine's.
    let e = open_probe(&Root::host(), Path::new("/"), &shm.path().join(".p"))
        .err()
        .unwrap();
    assert!(e.contains("is not on the filesystem mounted at /"), "{e}");
}

#[test]
fn an_unreadable_or_garbled_ext4_error_record_fails() {
    let dir = node("rw,relatime");
    let root = Root::at(dir.path());
    let mut c = Writable::new(Settings::default(), &root).unwrap();
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
    let mut c = Writable::new(Settings::default(), &root).unwrap();
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
    let mut c = Writable::new(Settings::default(), &root).unwrap();
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
        let mut c = Writable::new(Settings::default(), &root).unwrap();
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
