//! `wdfeed run` as an operator runs it: dry runs against fixture roots, their start-up,
//! signals, stops and fences, the feeder against a service manager that stops reading, and
//! `stop --fenced`. No test here opens a real watchdog device.

mod util;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use util::*;

const SIGTERM: i32 = 15;
const SIGHUP: i32 = 1;

#[test]
fn dry_run_pets_then_fences_within_the_bound_when_root_goes_read_only() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, true);
    let armed = d
        .wait_for("would arm", Duration::from_secs(20))
        .expect("arms");
    assert!(armed.contains("fence_bound_s=13.0"), "{armed}");
    d.wait_for("would pet", Duration::from_secs(10))
        .expect("pets");
    let fault = std::time::Instant::now();
    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    let fence = d
        .wait_for("would fence", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    // Detection must fit the check's part of the bound (every 1s + deadline 2s).
    assert!(
        fault.elapsed() < Duration::from_secs(13),
        "fenced after {:?}",
        fault.elapsed()
    );
    assert!(fence.contains("check=writable /"), "{fence}");
    assert!(fence.contains("read-only"), "{fence}");
    // Recovery never reopens the latch.
    fx.write("proc/1/mountinfo", MOUNTINFO_RW);
    std::thread::sleep(Duration::from_secs(3));
    d.stop_cleanly(Duration::from_secs(10));
    let pets_after = d
        .log
        .iter()
        .skip_while(|l| !l.contains("would fence"))
        .filter(|l| l.contains("would pet"))
        .count();
    assert_eq!(pets_after, 0, "{}", d.transcript());
}

#[test]
fn dry_run_waits_for_health_before_arming() {
    let fx = FixtureRoot::new();
    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, true);
    let line = d
        .wait_for("not arming", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(line.contains("read-only"), "{line}");
    assert!(!d.log.iter().any(|l| l.contains("would arm")));
    fx.write("proc/1/mountinfo", MOUNTINFO_RW);
    d.wait_for("would arm", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
}

#[test]
fn sighup_with_a_broken_config_keeps_the_running_one() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, true);
    d.wait_for("would pet", Duration::from_secs(20))
        .expect("pets");
    fx.write("w.yaml", "devices: [{path: /dev/watchdog0, bogus: 1}]\n");
    d.signal(SIGHUP);
    let line = d
        .wait_for("new config rejected", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(line.contains("bogus"), "{line}");
    d.stop_cleanly(Duration::from_secs(10));
    assert!(
        !d.log.iter().any(|l| l.contains("would fence")),
        "{}",
        d.transcript()
    );
}

#[test]
fn sighup_with_the_config_replaced_by_a_fifo_still_obeys_sigterm() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, true);
    d.wait_for("would pet", Duration::from_secs(20))
        .expect("pets");
    std::fs::remove_file(&cfg).unwrap();
    nix::unistd::mkfifo(&cfg, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    d.signal(SIGHUP);
    d.signal(SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    d.stop_cleanly(Duration::from_secs(10));
    assert!(
        !d.log.iter().any(|l| l.contains("would fence")),
        "{}",
        d.transcript()
    );
}

#[test]
fn a_start_up_read_that_hangs_ends_in_an_error_with_nothing_armed() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mountinfo = fx.path().join("proc/1/mountinfo");
    std::fs::remove_file(&mountinfo).unwrap();
    // Opening a FIFO for reading blocks until a writer comes: a read that hangs.
    nix::unistd::mkfifo(&mountinfo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut d = fx.daemon(&cfg, true);
    let code = d.wait(Duration::from_secs(30));
    let t = d.transcript();
    assert!(matches!(code, Some(c) if c != 0), "{code:?}: {t}");
    assert!(
        t.contains("preparing the checks did not end within 10 s"),
        "{t}"
    );
    assert!(!t.contains("would arm"), "{t}");
    assert!(!t.contains("would pet"), "{t}");
}

#[test]
fn run_refuses_a_device_path_that_is_not_a_character_device() {
    let fx = FixtureRoot::new();
    fx.write("dev/watchdog0", "");
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, false);
    assert_eq!(
        d.wait(Duration::from_secs(20)),
        Some(3),
        "{}",
        d.transcript()
    );
    let t = d.transcript();
    assert!(
        t.contains("cannot open watchdog /dev/watchdog0: not a character device"),
        "{t}"
    );
}

#[test]
fn run_without_any_device_says_how_to_get_one() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, false);
    assert_eq!(
        d.wait(Duration::from_secs(20)),
        Some(3),
        "{}",
        d.transcript()
    );
    assert!(
        d.transcript().contains("load a driver (softdog"),
        "{}",
        d.transcript()
    );
}

#[test]
fn status_shows_the_running_daemon_and_its_checks() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, true);
    d.wait_for("would pet", Duration::from_secs(20))
        .expect("pets");
    // The status thread writes once per interval (1 s here).
    let mut out = String::new();
    for _ in 0..50 {
        let o = run(&["status", "--status-file", &fx.status_arg()]);
        out = stdout(&o);
        if o.status.code() == Some(0) && out.contains("last pet") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        out.contains("dry-run: 1/1 checks healthy, last pet"),
        "{out}"
    );
    assert!(out.contains("writable /"), "{out}");
    let o = run(&["status", "--json", "--status-file", &fx.status_arg()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["checks"][0]["healthy"], true);
    assert_eq!(v["bound_s"], 13.0);
    d.stop_cleanly(Duration::from_secs(10));
    let o = run(&["status", "--status-file", &fx.status_arg()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a stopped daemon leaves no status"
    );
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
}

#[test]
fn dry_run_fence_says_it_would_isolate_and_touches_no_interface() {
    let fx = FixtureRoot::new();
    let cfg = fx.write(
        "w.yaml",
        &fast_config("").replace("fence:\n", "fence:\n  isolate: [lo]\n"),
    );
    let mut d = fx.daemon(&cfg, true);
    d.wait_for("would arm", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    d.wait_for("would fence", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    let line = d
        .wait_for("would isolate lo", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(line.contains("take it down"), "{line}");
    d.stop_cleanly(Duration::from_secs(10));
}

#[test]
fn run_refuses_to_start_when_an_interface_to_isolate_does_not_exist() {
    let fx = FixtureRoot::new();
    let cfg = fx.write(
        "w.yaml",
        &fast_config("").replace("fence:\n", "fence:\n  isolate: [lo, wdft-none7]\n"),
    );
    let root = fx.root_arg();
    let status = fx.status_arg();
    let cfg = cfg.display().to_string();
    let o = run(&[
        "--root",
        &root,
        "run",
        "--dry-run",
        "--status-file",
        &status,
        "-c",
        &cfg,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("fence.isolate[1]: interface `wdft-none7` does not exist on this node"),
        "{err}"
    );
    assert!(!err.contains("would arm"), "nothing armed: {err}");
}

#[test]
fn a_start_in_a_fenced_boot_arms_nothing_ignores_sigterm_and_leaves_on_stop_fenced() {
    let fx = FixtureRoot::new();
    let record = "wdfeed fence record 1\nboot 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\nstate fenced\nat 42.500 1700000000\nreason writable /: read-only\n";
    std::fs::write(fx.runtime_path().join("fence"), record).unwrap();
    let cfg = fx.write("w.yaml", &fast_config(""));
    // Not a dry run, and no device in the fixture: opening one would fail with exit 3.
    let mut d = fx.daemon(&cfg, false);
    let line = d
        .wait_for(
            "fenced earlier in this boot at 42.5 s",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(
        line.contains("(writable /: read-only): waiting for the reset"),
        "{line}"
    );
    let mut out = String::new();
    for _ in 0..50 {
        let o = run(&["status", "--status-file", &fx.status_arg()]);
        out = stdout(&o);
        if out.contains("fenced earlier") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        out.contains("FENCED by fence record: fenced earlier in this boot"),
        "{out}"
    );
    d.signal(SIGTERM);
    d.wait_for("fenced: not stopping", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    let o = run(&["stop", "--status-file", &fx.status_arg()]);
    assert_eq!(o.status.code(), Some(1), "stop without --fenced refuses");
    let o = run(&["stop", "--fenced", "--status-file", &fx.status_arg()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        d.transcript()
    );
    assert!(!d.transcript().contains("armed"), "{}", d.transcript());
    assert_eq!(
        std::fs::read_to_string(fx.runtime_path().join("fence")).unwrap(),
        record,
        "the record stays"
    );
}

#[test]
fn run_refuses_a_runtime_dir_that_is_not_memory_backed() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let o = run(&[
        "--root",
        &fx.root_arg(),
        "run",
        "--runtime-dir",
        disk.path().to_str().unwrap(),
        "--status-file",
        &fx.status_arg(),
        "-c",
        cfg.to_str().unwrap(),
    ]);
    if stat_is_tmpfs(disk.path()) {
        return; // the build tree is on tmpfs here: nothing to refuse
    }
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not memory-backed"), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was armed"), "{}", stderr(&o));
}

fn stat_is_tmpfs(p: &std::path::Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        .unwrap_or(false)
}

/// A fast config: pets every 250 ms, a freeze is a gap over 1 s.
const FAST: &str = "devices:\n  - path: /dev/watchdog0\n    timeout: 2s\ninterval: 250ms\nfence:\n  stall-threshold: 1s\nchecks:\n  - kind: writable\n    mounts: [/]\n    probe: false\n    every: 250ms\n    deadline: 500ms\n";

/// Reads every datagram waiting on `sock`; how many.
fn drain(sock: &UnixDatagram) -> usize {
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while sock.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

#[test]
fn a_notify_socket_nobody_reads_neither_stalls_the_feeder_nor_delays_a_stop() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", FAST);
    let sock_path = fx.path().join("notify.sock");
    let manager = UnixDatagram::bind(&sock_path).unwrap();
    let root = fx.root_arg();
    let status = fx.status_arg();
    let runtime = fx.runtime_path().display().to_string();
    let cfg = cfg.display().to_string();
    let mut child = util::wdfeed();
    child.env("NOTIFY_SOCKET", &sock_path);
    let mut d = util::Daemon::spawn(
        child,
        &[
            "--root",
            &root,
            "run",
            "--dry-run",
            "--status-file",
            &status,
            "--runtime-dir",
            &runtime,
            "-c",
            &cfg,
        ],
    );
    d.wait_for("would pet", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    // The manager stops reading for 6 s: its queue (10 datagrams by default) fills within
    // about 2.5 s of WATCHDOG=1 every 250 ms.
    std::thread::sleep(Duration::from_secs(6));
    assert!(drain(&manager) > 0, "the feeder notified");
    // Reading again: a feeder that had slept in send(2) would now see a gap of seconds and
    // fence a node that never froze.
    let quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet_until {
        drain(&manager);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        d.wait_for("would fence", Duration::from_millis(500))
            .is_none(),
        "{}",
        d.transcript()
    );
    assert!(
        d.log
            .iter()
            .any(|l| l.contains("notifications are dropped")),
        "{}",
        d.transcript()
    );
    // Unread again, and SIGTERM once the queue is full: the stop is obeyed at once.
    std::thread::sleep(Duration::from_secs(4));
    let asked = Instant::now();
    d.signal(SIGTERM);
    assert_eq!(
        d.wait(Duration::from_secs(5)),
        Some(0),
        "still running {:?} after SIGTERM: {}",
        asked.elapsed(),
        d.transcript()
    );
    assert!(
        !d.transcript().contains("would fence"),
        "{}",
        d.transcript()
    );
}

#[test]
fn a_stop_right_after_a_check_failed_fences_before_it_exits() {
    let fx = FixtureRoot::new();
    // The feeder ticks every 10 s, the check every 1 s: the stop lands between the failure
    // (which revokes the lease) and the feeder's next tick.
    let cfg = fx.write(
        "w.yaml",
        "devices:\n  - path: /dev/watchdog0\n    timeout: 30s\ninterval: 10s\nfence:\n  stall-threshold: 20s\nchecks:\n  - kind: writable\n    mounts: [/]\n    probe: false\n    every: 1s\n    deadline: 2s\n",
    );
    let mut d = fx.daemon(&cfg, true);
    d.wait_for("would pet", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    d.wait_for("check failed", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    d.stop_cleanly(Duration::from_secs(10));
    let t = d.transcript();
    assert!(
        t.contains("a check failed while stopping: fencing instead of disarming"),
        "{t}"
    );
    assert!(
        t.contains("would fence") && t.contains("check=writable /"),
        "{t}"
    );
}

#[test]
fn stop_fenced_refuses_a_device_without_magic_close_and_signals_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status.json");
    // A fenced daemon's status whose device stops on close; the pid is our own child, which
    // must not get SIGUSR1.
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/status-stuck-io-fenced.json"),
    )
    .unwrap();
    let mut s: serde_json::Value = serde_json::from_str(&fixture).unwrap();
    s["pid"] = victim.id().into();
    s["devices"][0]["stays_armed_on_close"] = false.into();
    std::fs::write(&status, s.to_string()).unwrap();
    let o = util::run(&[
        "stop",
        "--fenced",
        "--status-file",
        status.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", util::stderr(&o));
    let e = util::stderr(&o);
    assert!(
        e.contains("/dev/watchdog0 has no magic close") && e.contains("never reset"),
        "{e}"
    );
    assert!(victim.try_wait().unwrap().is_none(), "no signal was sent");
    victim.kill().unwrap();
    victim.wait().unwrap();
}
