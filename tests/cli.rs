//! The built binary, run the way an operator runs it: validate, check, info and
//! run --dry-run against fixture roots. No test here opens a real watchdog device.

mod util;

use std::time::Duration;

use util::*;

const SIGTERM: i32 = 15;
const SIGHUP: i32 = 1;

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
    d.signal(SIGTERM);
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        d.transcript()
    );
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
    d.signal(SIGTERM);
    assert_eq!(d.wait(Duration::from_secs(10)), Some(0));
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
    d.signal(SIGTERM);
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        d.transcript()
    );
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
    d.signal(SIGTERM);
    assert_eq!(d.wait(Duration::from_secs(10)), Some(0));
    let o = run(&["status", "--status-file", &fx.status_arg()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a stopped daemon leaves no status"
    );
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
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
    d.signal(SIGTERM);
    assert_eq!(
        d.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        d.transcript()
    );
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
