//! A storm of processes of another user cannot make wdfeed fence, nor grow what it holds:
//! `wdfeed run --dry-run` watches a root process of this test's own by name, and holds it in
//! its kill list, while thousands of same-named processes of uid 65534 (nobody) start. Needs root (a process of another
//! user, a dry run on this machine's /proc); skipped, visibly, otherwise.

mod util;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use util::*;

/// How many processes the storm starts.
const STORM: usize = 3000;

/// Processes this test started, killed and reaped at the end whatever happened.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn spawn(exe: &Path, uid: Option<u32>) -> Child {
    // A fork elsewhere in this process may still hold the copy open for writing (ETXTBSY).
    for _ in 0..100 {
        let mut cmd = Command::new(exe);
        cmd.arg("600");
        if let Some(u) = uid {
            cmd.uid(u).gid(u);
        }
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => return other.unwrap(),
        }
    }
    panic!("{} stayed busy", exe.display());
}

fn status_field(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn a_storm_of_another_users_processes_leaves_a_dry_run_without_fence() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "SKIP a_storm_of_another_users_processes_leaves_a_dry_run_without_fence: needs root"
        );
        return;
    }
    let bin = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        bin.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let name = format!("wdf{}stm", std::process::id() % 100_000);
    let exe = bin.path().join(&name);
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let mut kids = Kids(vec![spawn(&exe, None)]);
    let watched = kids.0[0].id();

    let work = tempfile::tempdir().unwrap();
    let runtime = tempfile::Builder::new()
        .prefix("wdfeed-test-run-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let cfg = work.path().join("watchdog.yaml");
    std::fs::write(
        &cfg,
        format!(
            "devices:\n  - path: /dev/watchdog0\n    timeout: 10s\ninterval: 200ms\n\
             fence:\n  stall-threshold: 5s\n  kill: [{name}]\nchecks:\n  - kind: process\n    name: {name}\n\
             \x20   every: 200ms\n    deadline: 1s\n"
        ),
    )
    .unwrap();
    let status = work.path().join("status.json");
    let state = work.path().join("state");
    let args: Vec<String> = [
        "run",
        "--dry-run",
        "--status-file",
        status.to_str().unwrap(),
        "--runtime-dir",
        runtime.path().to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "-c",
        cfg.to_str().unwrap(),
    ]
    .map(String::from)
    .into();
    let mut d = Daemon::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    d.wait_for("would pet", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("never armed:\n{}", d.transcript()));
    let daemon = d.child.id();
    std::thread::sleep(Duration::from_secs(1));
    let (fds_before, locked_before) = (open_fds(daemon), status_field(daemon, "VmLck:"));

    for _ in 0..STORM {
        kids.0.push(spawn(&exe, Some(65534)));
    }
    // Thirty runs and a refresh of the kill list (every 5 s) with the whole storm there.
    std::thread::sleep(Duration::from_secs(6));
    let (fds_after, locked_after) = (open_fds(daemon), status_field(daemon, "VmLck:"));
    let o = run(&[
        "status",
        "--json",
        "--status-file",
        status.to_str().unwrap(),
    ]);
    // Stopped before its process goes.
    d.signal(15);
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        d.transcript()
    );
    drop(kids);

    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let check = &v["checks"][0];
    assert_eq!(check["healthy"], true, "{v}");
    // The run that found the process walked /proc before the storm; every run since has
    // followed it: a walk during the storm would have ignored the storm's processes aloud.
    assert_eq!(
        check["evidence"],
        format!("{name} pid {watched} running (S)"),
        "{v}"
    );
    assert!(
        fds_after <= fds_before + 2,
        "descriptors {fds_before} -> {fds_after} with {STORM} more processes"
    );
    assert!(
        locked_after <= locked_before + 256,
        "VmLck {locked_before} kB -> {locked_after} kB with {STORM} more processes"
    );
    let t = d.transcript();
    assert!(
        !t.contains("would fence") && !t.contains("check failed"),
        "{t}"
    );
}
