//! The doctor's tests' node: a fixture root with two watchdogs (an i6300ESB that wdfeed pets,
//! a softdog for sbd), wdfeed's config, and the engines a test adds.

use std::os::unix::fs::symlink;
use std::process::Output;

use super::{run, stderr, stdout, FixtureRoot};

/// wdfeed pets /dev/watchdog0 (i6300ESB, T = 10 s); B = (1 s + 2 s) x 1 + 10 s = 13 s, so
/// the advice is SBD_WATCHDOG_TIMEOUT=7, fencing-watchdog-timeout=14s.
pub const CONFIG: &str = "\
devices:
  - path: /dev/watchdog0
    timeout: 10s
interval: 1s
fence:
  kill: [sbd, corosync]
checks:
  - kind: writable
    mounts: [/]
    every: 1s
    deadline: 2s
";

pub struct Node {
    pub fx: FixtureRoot,
}

impl Node {
    /// A node with an i6300ESB at watchdog0 and a softdog at watchdog1.
    pub fn new() -> Self {
        let fx = FixtureRoot::new();
        fx.write("sys/class/watchdog/watchdog0/identity", "i6300ESB timer\n");
        fx.write("sys/class/watchdog/watchdog0/timeout", "10\n");
        fx.write(
            "sys/class/watchdog/watchdog1/identity",
            "Software Watchdog\n",
        );
        fx.write("sys/class/watchdog/watchdog1/max_timeout", "65535\n");
        fx.write("dev/watchdog0", "");
        fx.write("dev/watchdog1", "");
        fx.write("watchdog.yaml", CONFIG);
        Node { fx }
    }

    pub fn write(&self, rel: &str, text: &str) {
        self.fx.write(rel, text);
    }

    /// A process `comm` with `pid`, its executable `exe`.
    pub fn process(&self, pid: i32, comm: &str, exe: &str) {
        self.write(
            &format!("proc/{pid}/stat"),
            &format!("{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100"),
        );
        symlink(exe, self.fx.path().join(format!("proc/{pid}/exe"))).unwrap();
    }

    pub fn sbd_running(&self) {
        self.process(812, "sbd", "/usr/sbin/sbd");
        self.write("run/sbd.pid", "812\n");
        self.write("usr/sbin/sbd", "");
    }

    pub fn doctor(&self) -> Output {
        let root = self.fx.root_arg();
        let cfg = self.fx.path().join("watchdog.yaml").display().to_string();
        run(&["--root", &root, "doctor", "-c", &cfg])
    }

    /// Runs the doctor, which must not panic and must exit with `code`; its stdout.
    pub fn doctor_exits(&self, code: i32) -> String {
        let o = self.doctor();
        let out = stdout(&o);
        assert_no_panic(&o);
        assert_eq!(o.status.code(), Some(code), "{out}{}", stderr(&o));
        out
    }
}

pub fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{err}");
}
