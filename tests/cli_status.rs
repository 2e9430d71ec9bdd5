//! `wdfeed status` against a daemon that is gone, and the status file's safety.

mod util;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use util::*;

const SIGKILL: i32 = 9;

fn status_of_running_daemon(fx: &FixtureRoot) -> Daemon {
    let cfg = fx.write("w.yaml", &fast_config(""));
    let mut d = fx.daemon(&cfg, true);
    d.wait_for("would pet", Duration::from_secs(20))
        .expect("pets");
    for _ in 0..50 {
        let o = run(&["status", "--status-file", &fx.status_arg()]);
        if o.status.code() == Some(0) && stdout(&o).contains("last pet") {
            return d;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the daemon wrote no status");
}

#[test]
fn a_sigkilled_daemon_is_not_running_in_every_format() {
    let fx = FixtureRoot::new();
    let mut d = status_of_running_daemon(&fx);
    let pid = d.child.id();
    let status = fx.status_arg();
    let o = run(&["status", "--format", "prometheus", "--status-file", &status]);
    assert!(stdout(&o).contains("wdfeed_running 1"), "{}", stdout(&o));

    d.signal(SIGKILL);
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        None,
        "killed, no exit code"
    );
    assert!(
        std::path::Path::new(&status).exists(),
        "a SIGKILL leaves the file"
    );

    let o = run(&["status", "--status-file", &status]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let want = format!("wdfeed pid {pid} is not running");
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    assert!(!stdout(&o).contains("checks healthy"), "{}", stdout(&o));

    let o = run(&["status", "--json", "--status-file", &status]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["running"], false, "{v}");
    assert_eq!(v["pid"], pid);

    let o = run(&["status", "--format", "prometheus", "--status-file", &status]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("wdfeed_running 0"), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains("wdfeed_check_healthy"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn the_status_file_is_for_root_only_and_read_only_when_not_a_symlink() {
    let fx = FixtureRoot::new();
    let mut d = status_of_running_daemon(&fx);
    let status = fx.status_arg();
    let mode = std::fs::metadata(&status).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "status file mode {mode:o}");
    d.signal(15);
    d.wait(Duration::from_secs(10));

    let link = fx.path().join("link.json");
    std::os::unix::fs::symlink(fx.path().join("w.yaml"), &link).unwrap();
    let o = run(&["status", "--status-file", &link.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is a symbolic link"), "{}", stderr(&o));
}

fn status_json(fx: &FixtureRoot) -> serde_json::Value {
    let o = run(&["status", "--json", "--status-file", &fx.status_arg()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The status file is rewritten when the state changes, not at every interval: between
/// changes it stands (and `wdfeed status` takes it for a running daemon's, saying how old
/// it is) until its refresh period (ten intervals) is over.
#[test]
fn the_status_file_is_rewritten_on_a_change_not_every_interval() {
    let fx = FixtureRoot::new();
    let _d = status_of_running_daemon(&fx);
    let first = status_json(&fx);
    assert_eq!(first["refresh_s"], 10.0, "{first}");
    std::thread::sleep(Duration::from_millis(2500));
    let later = status_json(&fx);
    assert_eq!(later["written_at_s"], first["written_at_s"], "{later}");
    let o = run(&["status", "--status-file", &fx.status_arg()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(" s ago; rewritten on any change)"),
        "{}",
        stdout(&o)
    );

    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    let mut now = later;
    for _ in 0..50 {
        now = status_json(&fx);
        if now["checks"][0]["healthy"] == false {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(now["checks"][0]["healthy"], false, "{now}");
    assert!(
        now["written_at_s"].as_f64() > first["written_at_s"].as_f64(),
        "{now}"
    );
}
