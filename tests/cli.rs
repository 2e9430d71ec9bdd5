//! The built binary, run the way an operator runs it: validate, check, info, status and stop
//! on bad files, the command line itself, and what happens to a closed or full stdout (the
//! daemon, `wdfeed run`, is tests/daemon.rs). No test here opens a real watchdog device.

mod util;

use std::time::Duration;

use util::*;

#[test]
fn validate_accepts_the_documented_example_and_prints_the_bound() {
    let o = run(&[
        "validate",
        concat!(env!("CARGO_MANIFEST_DIR"), "/watchdog.yaml"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("config looks good"), "{out}");
    assert!(out.contains("fence bound: "), "{out}");
}

#[test]
fn validate_without_a_file_uses_the_embedded_default() {
    let o = run(&["validate"]);
    if std::path::Path::new("/etc/wdfeed/watchdog.yaml").exists() {
        return; // This machine has its own config; the embedded one is covered below.
    }
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("<embedded default>: config looks good"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn the_printed_default_is_a_valid_config() {
    let o = run(&["validate", "--print-default"]);
    assert_eq!(o.status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.yaml");
    std::fs::write(&p, stdout(&o)).unwrap();
    let o = run(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn validate_names_file_line_column_and_key_of_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.yaml");
    std::fs::write(
        &p,
        "devices:\n  - path: /dev/watchdog0\n    timeout: 30s\ninterval: 11s\nchecks:\n  - kind: writable\n    every: 0s\n",
    )
    .unwrap();
    let o = run(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let file = p.display().to_string();
    assert!(err.contains(&format!("{file}:4:1: `interval`: ")), "{err}");
    assert!(
        err.contains(&format!("{file}:7:5: `checks[0].every`: ")),
        "{err}"
    );
    assert!(stdout(&o).is_empty(), "nothing is printed as good");
}

#[test]
fn an_unknown_key_is_rejected_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.yaml");
    std::fs::write(&p, "devices:\n  - path: /dev/watchdog0\n    timout: 30s\n").unwrap();
    let o = run(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(":3:5: `devices[0].timout`: unknown field `timout`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_missing_config_is_a_clear_error() {
    let o = run(&["run", "--dry-run", "-c", "/nonexistent/watchdog.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/watchdog.yaml: cannot read the config"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_bad_log_level_is_a_usage_error() {
    let o = run(&["--log-level", "loud", "validate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a level"), "{}", stderr(&o));
}

#[test]
fn info_without_any_device_says_how_to_get_one() {
    let fx = FixtureRoot::new();
    let o = run(&["--root", &fx.root_arg(), "info"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("no watchdog device found"), "{out}");
    assert!(out.contains("modprobe softdog"), "{out}");
}

#[test]
fn info_reads_sysfs_and_prints_the_driver_specific_bound() {
    let fx = FixtureRoot::new();
    for (attr, v) in [
        ("identity", "iTCO_wdt"),
        ("state", "active"),
        ("timeout", "10"),
        ("bootstatus", "0"),
        ("nowayout", "0"),
        ("options", "0x8180"),
    ] {
        fx.write(
            &format!("sys/class/watchdog/watchdog0/{attr}"),
            &format!("{v}\n"),
        );
    }
    let cfg = fx.write("w.yaml", &fast_config(""));
    let o = run(&[
        "--root",
        &fx.root_arg(),
        "info",
        "-c",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("identity     iTCO_wdt"), "{out}");
    assert!(out.contains("set-timeout, magic-close, keepalive"), "{out}");
    // (every 1s + deadline 2s) + iTCO's two expiries of floor(10/0.6) x 0.6 s = 3 + 19.2
    assert!(out.contains("fence bound: 22.2 s"), "{out}");

    let o = run(&[
        "--root",
        &fx.root_arg(),
        "info",
        "--json",
        "-c",
        cfg.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["devices"][0]["identity"], "iTCO_wdt");
    assert_eq!(v["bound"]["total"], 22.2);
}

#[test]
fn check_reports_healthy_and_unhealthy_fixture_roots() {
    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let o = run(&[
        "--root",
        &fx.root_arg(),
        "check",
        "-c",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("healthy: 1 of 1 checks passed"),
        "{}",
        stdout(&o)
    );

    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    let o = run(&[
        "--root",
        &fx.root_arg(),
        "check",
        "-c",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("/ read-only in /proc/1/mountinfo"), "{out}");
    assert!(
        out.contains("UNHEALTHY: 1 of 1 checks failed: writable /"),
        "{out}"
    );
}

#[test]
fn the_command_line_is_public_for_man_pages_and_has_eleven_commands() {
    let cmd = <wdfeed::cli::Cli as clap::CommandFactory>::command();
    let mut names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "check",
            "doctor",
            "fence",
            "info",
            "pause",
            "rejoin-now",
            "resume",
            "run",
            "status",
            "stop",
            "validate"
        ]
    );
}

/// A config path that is a FIFO or a character device ends in a clear error at once (it used
/// to hang, or to read /dev/zero into gigabytes).
#[test]
fn validate_refuses_a_fifo_or_device_config_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("watchdog.yaml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for path in [fifo.to_str().unwrap(), "/dev/zero"] {
        let mut child = wdfeed()
            .args(["validate", path])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > until {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("wdfeed validate {path} hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = child.wait_with_output().unwrap();
        assert!(!o.status.success(), "{path}: {o:?}");
        assert!(
            stderr(&o).contains("not a regular file"),
            "{path}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn validate_rejects_a_duplicate_or_too_long_interface_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.yaml");
    std::fs::write(
        &p,
        fast_config("").replace(
            "fence:\n",
            "fence:\n  isolate: [eth0, eth0, abcdefghijklmnop]\n",
        ),
    )
    .unwrap();
    let o = run(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let file = p.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:6:19: `fence.isolate[1]`: `eth0` is listed twice"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:6:25: `fence.isolate[2]`: ")),
        "{err}"
    );
    assert!(err.contains("IFNAMSIZ"), "{err}");
}

/// Runs wdfeed with its standard output on the write end of a pipe whose read end is closed
/// before it starts (`wdfeed check | head -0`).
fn run_into_closed_pipe(args: &[&str]) -> std::process::Output {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let writer = std::fs::File::from(writer);
    wdfeed()
        .args(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("wdfeed runs")
}

/// Runs wdfeed with its standard output on /dev/full: every write fails with ENOSPC.
fn run_into_dev_full(args: &[&str]) -> std::process::Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    wdfeed()
        .args(args)
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("wdfeed runs")
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_commands_own_exit_code() {
    let o = run_into_closed_pipe(&["validate", "--print-default"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "EPIPE is not an error to report");

    let fx = FixtureRoot::new();
    let cfg = fx.write("w.yaml", &fast_config(""));
    let args = [
        "--root",
        &fx.root_arg(),
        "check",
        "-c",
        cfg.to_str().unwrap(),
    ];
    let o = run_into_closed_pipe(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));

    fx.write("proc/1/mountinfo", MOUNTINFO_RO);
    let o = run_into_closed_pipe(&args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "unhealthy stays 1: {}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn a_full_stdout_is_one_clear_error_and_exit_1() {
    for args in [
        vec!["validate", "--print-default"],
        vec![
            "validate",
            concat!(env!("CARGO_MANIFEST_DIR"), "/watchdog.yaml"),
        ],
    ] {
        let o = run_into_dev_full(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("wdfeed: cannot write to standard output: "),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_config_nested_too_deep_is_refused_at_the_line_and_column_of_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("deep.yaml");
    let mut text = String::from("interval: 1s\ndevices: ");
    text.push_str(&"[".repeat(100_000));
    text.push('\n');
    std::fs::write(&p, &text).unwrap();
    let o = run(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    // `devices: ` is 9 columns; under the top-level map, the 64th `[` (column 73) opens
    // level 65, one over the limit.
    let want = format!("wdfeed: {}:2:73: ", p.display());
    assert!(err.starts_with(&want), "{err}");
    assert!(err.contains("nested deeper than 64 levels"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Runs wdfeed and waits at most `limit` for it; a run still going then is killed and fails
/// the test, so a hang ends as a failure, not as a stuck suite.
fn run_or_kill(args: &[&str], limit: Duration) -> std::process::Output {
    let mut child = wdfeed()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wdfeed runs");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("wdfeed {args:?} still ran after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn status_and_stop_refuse_a_status_file_that_is_a_fifo_or_device_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("status.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["status", "--status-file", fifo],
        vec!["status", "--status-file", "/dev/zero"],
        vec!["stop", "--fenced", "--status-file", fifo],
    ] {
        let o = run_or_kill(&args, Duration::from_secs(20));
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("is not a regular file"), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
}
