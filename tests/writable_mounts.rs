//! `writable` with `when: {mounted: ...}` against real mounts of this machine: a tmpfs the
//! test mounts and unmounts in the init mount namespace (where wdfeed reads
//! /proc/1/mountinfo), under `wdfeed run --dry-run` with the host's root. The check is idle
//! while the tmpfs is absent, watches it once mounted, lets `umount` and
//! `mount -o remount,ro` succeed while it runs, and fails (would fence) on the read-only one.
//!
//! The mount point lives in the target directory (root's all the way: wdfeed keeps no probe
//! under a world-writable /tmp) and is unmounted and removed afterwards, whatever happens.
//! Needs root (mount) in the init mount namespace; otherwise it says why and skips.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use util::*;

fn cannot_run() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root: mounting a tmpfs needs CAP_SYS_ADMIN".into());
    }
    None
}

/// The tmpfs mount point: unmounted (lazily, if it must) and removed when dropped.
struct Mount(PathBuf);

impl Mount {
    fn sh(&self, args: &[&str]) -> std::process::Output {
        Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn mount(&self, opts: &str) {
        let o = self.sh(&["mount", "-t", "tmpfs", "-o", opts, "wdfeedtest", self.arg()]);
        assert!(o.status.success(), "mount: {}", stderr(&o));
    }

    /// Runs `args` as a cluster agent would: once more 0.1 s later if the first attempt met
    /// a probe run (EBUSY, "target is busy"). A filesystem wdfeed held open would refuse both.
    fn sh_retrying_busy(&self, args: &[&str]) -> std::process::Output {
        let o = self.sh(args);
        if o.status.success() || !stderr(&o).contains("busy") {
            return o;
        }
        println!("{args:?} met a probe run; again in 0.1 s");
        std::thread::sleep(Duration::from_millis(100));
        self.sh(args)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn mounted(&self) -> bool {
        std::fs::read_to_string("/proc/1/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(self.arg()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        while self.mounted() {
            if !self.sh(&["umount", "-l", self.arg()]).status.success() {
                break;
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `wdfeed status --json`, once the status file says something about check 0 that `ok`
/// accepts.
fn status_until(
    file: &Path,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(20);
    let mut last = serde_json::Value::Null;
    while Instant::now() < end {
        let o = run(&["status", "--json", "--status-file", file.to_str().unwrap()]);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) {
            if ok(&v["checks"][0]) {
                return v;
            }
            last = v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("status never showed {what}: {last:#}");
}

#[test]
fn a_conditional_writable_check_follows_a_real_tmpfs_and_never_holds_it() {
    if let Some(why) = cannot_run() {
        println!("SKIPPED writable_mounts: {why}");
        return;
    }
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let runtime = tempfile::Builder::new()
        .prefix("wdfeed-test-run-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let mnt = Mount(base.path().canonicalize().unwrap().join("srv"));
    std::fs::create_dir(&mnt.0).unwrap();
    // A mount of this process must show in init's table (/proc/1/ns/mnt may not be readable
    // to compare namespaces).
    mnt.mount("size=1m,mode=0755");
    let seen = mnt.mounted();
    assert!(mnt.sh(&["umount", mnt.arg()]).status.success());
    if !seen {
        println!(
            "SKIPPED writable_mounts: not in the init mount namespace (a tmpfs mounted here \
             does not show in /proc/1/mountinfo, which wdfeed reads)"
        );
        return;
    }
    let status = base.path().join("status.json");
    let cfg = base.path().join("watchdog.yaml");
    std::fs::write(
        &cfg,
        format!(
            "devices:\n  - path: /dev/watchdog0\n    timeout: 10s\ninterval: 1s\nfence:\n  \
             stall-threshold: 5s\nchecks:\n  - kind: writable\n    label: data\n    \
             mounts: [{m}]\n    every: 1s\n    deadline: 2s\n    when: {{mounted: {m}}}\n",
            m = mnt.arg()
        ),
    )
    .unwrap();
    let mut d = Daemon::start(&[
        "run",
        "--dry-run",
        "-c",
        cfg.to_str().unwrap(),
        "--status-file",
        status.to_str().unwrap(),
        "--runtime-dir",
        runtime.path().to_str().unwrap(),
        "--state-dir",
        base.path().join("state").to_str().unwrap(),
    ]);

    // Absent: idle, and armed all the same.
    let idle = d
        .wait_for("check idle", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(idle.contains("is not mounted"), "{idle}");
    d.wait_for("would arm", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    let v = status_until(&status, "idle", |c| c["idle"] == true);
    let c = &v["checks"][0];
    assert_eq!(c["healthy"], true);
    assert_eq!(c["when"], format!("mounted {}", mnt.arg()));
    assert_eq!(
        c["evidence"],
        format!("{} is not mounted", mnt.arg()),
        "{v:#}"
    );

    // Mounted: watched, the probe in a directory of its own on the tmpfs.
    mnt.mount("size=1m,mode=0755");
    d.wait_for("check active", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    let v = status_until(&status, "active and synced", |c| {
        c["idle"] == false && c["evidence"].as_str().is_some_and(|e| e.contains("synced"))
    });
    assert_eq!(v["checks"][0]["healthy"], true, "{v:#}");
    assert!(mnt.0.join(".wdfeed/probe").is_file());

    // umount succeeds while wdfeed runs (the probe is held open only within a run), and
    // the check turns idle, not failed.
    let t = Instant::now();
    let o = mnt.sh_retrying_busy(&["umount", mnt.arg()]);
    assert!(
        o.status.success(),
        "umount while wdfeed runs: {}",
        stderr(&o)
    );
    d.wait_for("check idle", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    println!("umount succeeded, idle {:?} later", t.elapsed());

    // Mounted again: watched again without a restart. remount,ro succeeds too, and fails
    // the check: wdfeed would fence.
    mnt.mount("size=1m,mode=0755");
    d.wait_for("check active", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    status_until(&status, "active again", |c| {
        c["idle"] == false && c["evidence"].as_str().is_some_and(|e| e.contains("synced"))
    });
    let t = Instant::now();
    let o = mnt.sh_retrying_busy(&["mount", "-o", "remount,ro", mnt.arg()]);
    assert!(
        o.status.success(),
        "remount,ro while wdfeed runs: {}",
        stderr(&o)
    );
    let fence = d
        .wait_for("would fence", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    println!(
        "remount,ro succeeded, would fence {:?} later: {fence}",
        t.elapsed()
    );
    assert!(fence.contains("check=data"), "{fence}");
    assert!(fence.contains("read-only"), "{fence}");
    assert!(
        !d.log
            .iter()
            .any(|l| l.contains("check failed") && l.contains("is not mounted")),
        "an unmount is never a failure:\n{}",
        d.transcript()
    );
    drop(d);
    drop(mnt);
    assert!(
        !base.path().join("srv").exists(),
        "the mount point is removed"
    );
}

/// As a new user would meet it: a separate 1777 tmpfs, and uid
/// 65534 planting a FIFO, a symlink or a directory at the probe's place before the check.
/// `wdfeed check` must never hang and never write through; the mount is refused with the
/// reason (no other user may write where the probe goes), and a root-only directory on it
/// given as `probe-paths` works whatever was planted beside it.
#[test]
fn things_another_user_plants_in_a_sticky_tmpfs_never_hang_or_fool_the_check() {
    if let Some(why) = cannot_run() {
        println!("SKIPPED writable_mounts: {why}");
        return;
    }
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mnt = Mount(base.path().canonicalize().unwrap().join("tmp"));
    std::fs::create_dir(&mnt.0).unwrap();
    mnt.mount("size=1m,mode=1777");
    if !mnt.mounted() {
        println!("SKIPPED writable_mounts: not in the init mount namespace");
        return;
    }
    let nobody = |args: &[&str]| {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        std::os::unix::process::CommandExt::uid(&mut c, 65534);
        std::os::unix::process::CommandExt::gid(&mut c, 65534);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    let victim = mnt.0.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let cfg = base.path().join("watchdog.yaml");
    let config = |probe: Option<&str>| {
        let paths = probe
            .map(|p| format!("    probe-paths: {{{m}: {m}/{p}}}\n", m = mnt.arg()))
            .unwrap_or_default();
        std::fs::write(
            &cfg,
            format!(
                "devices:\n  - path: /dev/watchdog0\n    timeout: 10s\ninterval: 1s\nchecks:\n  \
                 - kind: writable\n    label: tmp\n    mounts: [{}]\n{paths}    every: 1s\n    \
                 deadline: 2s\n",
                mnt.arg()
            ),
        )
        .unwrap();
    };
    let check = || {
        let t = Instant::now();
        let o = run(&["check", "-c", cfg.to_str().unwrap()]);
        assert!(t.elapsed() < Duration::from_secs(10), "wdfeed check hung");
        stdout(&o)
    };
    config(None);
    for plant in [
        vec!["mkfifo", ".wdfeed"],
        vec!["ln", "-s", victim.to_str().unwrap(), ".wdfeed"],
        vec!["mkdir", ".wdfeed"],
    ] {
        let _ = std::fs::remove_file(mnt.0.join(".wdfeed"));
        let _ = std::fs::remove_dir_all(mnt.0.join(".wdfeed"));
        let mut args = plant.clone();
        let last = args.pop().unwrap();
        let target = mnt.0.join(last);
        args.push(target.to_str().unwrap());
        nobody(&args);
        let out = check();
        assert!(
            out.contains(&format!(
                "{} is writable by every user (mode 1777)",
                mnt.arg()
            )),
            "{plant:?}: {out}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    }
    // A root-only directory on that tmpfs: fine, whatever uid 65534 puts beside it.
    std::fs::create_dir(mnt.0.join("admin")).unwrap();
    std::fs::set_permissions(
        mnt.0.join("admin"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    config(Some("admin/wdfeed/probe"));
    let out = check();
    assert!(out.contains("healthy: 1 of 1 checks passed"), "{out}");
    assert!(out.contains("probe"), "{out}");
    drop(mnt);
}
