//! The feeder and the stop path against the built binary (dry runs on fixture roots): a
//! service manager that stops reading its notify socket never holds the feeder up, and a
//! stop that comes right after a check failed fences instead of disarming.

mod util;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use nix::libc::SIGTERM;
use util::{FixtureRoot, MOUNTINFO_RO};

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
    d.signal(SIGTERM);
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        d.transcript()
    );
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
