//! `wdfeed check --root FIXTURE` on every fixture node: exit 1 naming the failing check for
//! each broken one, 0 for the healthy ones; and the daemon in --dry-run fencing a stuck disk
//! within its bound.

mod util;

use std::time::{Duration, Instant};

use util::*;

#[test]
fn check_exits_as_every_fixture_expects() {
    let cases = fixture_cases();
    assert!(cases.len() >= 10, "fixtures missing: {}", cases.len());
    // The cases take a couple of seconds each (second samples): run them side by side.
    let results: Vec<(String, String, std::process::Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(name, expect, dir)| {
                s.spawn(move || {
                    let root = dir.path().display().to_string();
                    let cfg = dir.path().join("watchdog.yaml").display().to_string();
                    let o = run(&["--root", &root, "check", "-c", &cfg]);
                    (name.clone(), expect.clone(), o)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, expect, o) in results {
        let out = stdout(&o);
        if expect == "healthy" {
            assert_eq!(o.status.code(), Some(0), "{name}:\n{out}{}", stderr(&o));
            assert!(out.contains("healthy: "), "{name}:\n{out}");
            continue;
        }
        let kind = expect
            .strip_prefix("unhealthy ")
            .unwrap_or_else(|| panic!("{name}: bad expect `{expect}`"));
        assert_eq!(o.status.code(), Some(1), "{name}:\n{out}{}", stderr(&o));
        let failing: Vec<&str> = out.lines().filter(|l| l.contains(" FAIL ")).collect();
        assert!(!failing.is_empty(), "{name}: no failing row:\n{out}");
        assert!(
            failing.iter().all(|l| l.starts_with(kind)),
            "{name}: expected only {kind} to fail:\n{out}"
        );
        assert!(out.contains("UNHEALTHY: "), "{name}:\n{out}");
    }
}

#[test]
fn dry_run_fences_a_stuck_disk_within_the_bound() {
    let cases = fixture_cases();
    let (_, _, dir) = cases
        .iter()
        .find(|(n, _, _)| n == "stuck-io")
        .expect("stuck-io fixture");
    let root = dir.path().display().to_string();
    let cfg = dir.path().join("watchdog.yaml").display().to_string();
    let status = dir.path().join("status.json").display().to_string();
    let started = Instant::now();
    let mut d = Daemon::start(&[
        "--root",
        &root,
        "run",
        "--dry-run",
        "--status-file",
        &status,
        "-c",
        &cfg,
    ]);
    let armed = d
        .wait_for("would arm", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{}", d.transcript()));
    let bound: f64 = armed
        .split("fence_bound_s=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no bound in {armed}"));
    let limit = Duration::from_secs_f64(bound);
    let fence = d
        .wait_for("would fence", limit)
        .unwrap_or_else(|| panic!("no fence within {bound} s:\n{}", d.transcript()));
    assert!(fence.contains("check=block-io"), "{fence}");
    assert!(fence.contains("in flight"), "{fence}");
    assert!(
        started.elapsed() < limit + Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
