//! Metrics: `wdfeed status --format prometheus` and the node_exporter textfile of a
//! dry-run daemon, a textfile directory that is missing (a warning, never a fence), and a
//! `--format` that does not exist (exit 2).

mod util;

use std::time::{Duration, Instant};

use util::*;

fn wait_for_file(path: &std::path::Path, needle: &str, limit: Duration) -> String {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.contains(needle) {
                return text;
            }
        }
        assert!(
            started.elapsed() < limit,
            "{} never contained {needle:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_daemon_rewrites_its_textfile_and_status_prints_the_same_metrics() {
    let fx = FixtureRoot::new();
    let prom = fx.path().join("textfile/wdfeed.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let cfg = fx.write(
        "watchdog.yaml",
        &format!(
            "{}metrics:\n  textfile: {}\n",
            fast_config(""),
            prom.display()
        ),
    );
    let mut d = fx.daemon(&cfg, true);
    d.wait_for("would pet", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    let text = wait_for_file(
        &prom,
        "wdfeed_check_healthy{check=\"writable /\"} 1",
        Duration::from_secs(10),
    );
    assert!(text.contains("\nwdfeed_fenced 0\n"), "{text}");
    assert!(text.contains("\nwdfeed_device_timeout_seconds{device=\"/dev/watchdog0\"} 10\n"));
    let o = run(&[
        "status",
        "--format",
        "prometheus",
        "--status-file",
        &fx.status_arg(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("# TYPE wdfeed_feeder_lateness_seconds histogram"),
        "{out}"
    );
    assert!(out.contains("wdfeed_check_consecutive_failures{check=\"writable /\"} 0"));
    // The textfile writer's own state is in the plain status too.
    let o = run(&["status", "--status-file", &fx.status_arg()]);
    assert!(stdout(&o).contains("metrics textfile "), "{}", stdout(&o));
    // `--json` stays an alias of `--format json`.
    let o = run(&["status", "--json", "--status-file", &fx.status_arg()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["textfile"]["warning"].is_null(), "{v}");
    assert_eq!(v["textfile"]["path"], prom.display().to_string(), "{v}");
    d.stop_cleanly(Duration::from_secs(10));
    assert!(
        !prom.exists(),
        "a stopped daemon leaves no stale textfile (status file left: {})",
        std::path::Path::new(&fx.status_arg()).exists()
    );
}

#[test]
fn a_missing_textfile_directory_is_a_warning_and_never_a_fence() {
    let fx = FixtureRoot::new();
    let prom = fx.path().join("no/such/dir/wdfeed.prom");
    let cfg = fx.write(
        "watchdog.yaml",
        &format!(
            "{}metrics:\n  textfile: {}\n",
            fast_config(""),
            prom.display()
        ),
    );
    let mut d = fx.daemon(&cfg, true);
    let warned = d
        .wait_for("metrics textfile directory", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    assert!(warned.contains("does not exist"), "{warned}");
    d.wait_for("would pet", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    // Several intervals later: still petting, never fenced, and status says why.
    std::thread::sleep(Duration::from_secs(4));
    let o = run(&["status", "--json", "--status-file", &fx.status_arg()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "dry-run", "{v}");
    assert!(v["fence"].is_null(), "{v}");
    let w = v["textfile"]["warning"].as_str().unwrap_or_default();
    assert!(w.contains("no/such/dir"), "{v}");
    let o = run(&["status", "--status-file", &fx.status_arg()]);
    assert!(stdout(&o).contains("WARNING"), "{}", stdout(&o));
    assert!(
        !d.transcript().contains("would fence"),
        "{}",
        d.transcript()
    );
    d.stop_cleanly(Duration::from_secs(10));
}

#[test]
fn an_unknown_status_format_is_a_usage_error() {
    let o = run(&["status", "--format", "xml", "--status-file", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("xml") && err.contains("prometheus"),
        "names the bad value and the good ones: {err}"
    );
}

#[test]
fn a_textfile_path_that_node_exporter_would_not_read_is_a_config_error() {
    let fx = FixtureRoot::new();
    let cfg = fx.write(
        "watchdog.yaml",
        &format!("{}metrics:\n  textfile: wdfeed.txt\n", fast_config("")),
    );
    let o = run(&["validate", &cfg.display().to_string()]);
    assert_ne!(o.status.code(), Some(0));
    let err = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        err.contains("metrics.textfile") && err.contains(".prom"),
        "{err}"
    );
}
