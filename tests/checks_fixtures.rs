//! Every fixture node under `tests/fixtures/` through the check registry: parse the checks of
//! its config (`base.yaml` with the case's `override.yaml`), build them on a copy of the
//! tree, and compare with its `expect` both
//! as `wdfeed check` samples (once, then again after the check's settle time if it asks for
//! one) and as the daemon does (two runs an hour apart).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod util;

use wdfeed::health::checks::CheckSettings;
use wdfeed::health::{Check, Verdict};
use wdfeed::system::Root;

/// Any time after boot: the checks only compare the times they are given.
const FIRST_RUN: Duration = Duration::from_secs(1000);
const SECOND_RUN: Duration = Duration::from_secs(1000 + 3600);

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expect").is_file())
        .collect();
    cases.sort();
    cases
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != ".wdfeed" {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The checks of a fixture case's config, as the config layer hands them to the daemon.
fn checks_of(case_dir: &Path) -> Vec<CheckSettings> {
    let text = util::fixture_config(case_dir);
    let config = wdfeed::config::parse(&text, &case_dir.display().to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    config.checks.into_iter().map(|c| c.settings).collect()
}

/// `healthy` or `unhealthy <kind>`.
fn read_expectation(path: &Path) -> Option<Option<String>> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    Some(match text.strip_prefix("unhealthy ") {
        Some(kind) => Some(kind.trim().to_string()),
        None => {
            assert_eq!(text, "healthy", "{}", path.display());
            None
        }
    })
}

fn check_against(
    case: &str,
    when: &str,
    want: &Option<String>,
    results: &[(String, String, Verdict)],
) {
    let table: Vec<String> = results
        .iter()
        .map(|(kind, label, v)| {
            format!(
                "  {kind} [{label}]: {} {}",
                if v.healthy { "ok" } else { "FAIL" },
                v.evidence
            )
        })
        .collect();
    let table = table.join("\n");
    match want {
        None => assert!(
            results.iter().all(|(_, _, v)| v.healthy),
            "{case} ({when}): expected healthy\n{table}"
        ),
        Some(kind) => {
            assert!(
                results.iter().any(|(k, _, v)| k == kind && !v.healthy),
                "{case} ({when}): expected a {kind} check to fail\n{table}"
            );
            assert!(
                results.iter().all(|(k, _, v)| k == kind || v.healthy),
                "{case} ({when}): only {kind} should fail\n{table}"
            );
        }
    }
    for (_, label, v) in results {
        assert!(!v.evidence.is_empty(), "{case}: {label} gave no evidence");
    }
}

/// A built check with its kind and label.
type Built = (String, String, Box<dyn Check>);

/// Builds the checks of a fixture, on a copy of its tree.
fn build(case_dir: &Path) -> (tempfile::TempDir, Vec<Built>) {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(case_dir, tmp.path());
    util::root_on_its_real_device(tmp.path());
    let root = Root::at(tmp.path());
    let built = checks_of(case_dir)
        .iter()
        .map(|s| {
            let check = s
                .build(&root)
                .unwrap_or_else(|e| panic!("{}: {}: {e}", case_dir.display(), s.label()));
            (s.kind().to_string(), s.label(), check)
        })
        .collect();
    (tmp, built)
}

#[test]
fn every_fixture_gives_its_expected_verdict() {
    let cases = fixtures();
    assert!(cases.len() >= 10, "fixtures missing: {cases:?}");
    for case_dir in cases {
        let case = case_dir.file_name().unwrap().to_string_lossy().into_owned();
        let want = read_expectation(&case_dir.join("expect"))
            .unwrap_or_else(|| panic!("{case}: no expect file"));

        // As `wdfeed check` does: a second sample only for a check that asks for one.
        let (_tmp, mut built) = build(&case_dir);
        let results: Vec<_> = built
            .iter_mut()
            .map(|(kind, label, check)| {
                let first = check.run(FIRST_RUN);
                let v = match check.settle_time() {
                    Some(wait) if first.healthy => check.run(FIRST_RUN + wait),
                    _ => first,
                };
                (kind.clone(), label.clone(), v)
            })
            .collect();
        check_against(&case, "one-shot", &want, &results);

        // As the daemon does, over a long time.
        let (_tmp, mut built) = build(&case_dir);
        let mut run = |now| -> Vec<(String, String, Verdict)> {
            built
                .iter_mut()
                .map(|(kind, label, check)| (kind.clone(), label.clone(), check.run(now)))
                .collect()
        };
        run(FIRST_RUN);
        check_against(&case, "an hour later", &want, &run(SECOND_RUN));
    }
}

#[test]
fn evidence_reads_as_documented() {
    let evidence = |case: &str, kind: &str| -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(case);
        let tmp = tempfile::tempdir().unwrap();
        copy_tree(&dir, tmp.path());
        util::root_on_its_real_device(tmp.path());
        let root = Root::at(tmp.path());
        let mut out = Vec::new();
        for s in checks_of(&dir).iter().filter(|s| s.kind() == kind) {
            let mut c = s.build(&root).unwrap();
            c.run(FIRST_RUN);
            let v = c.run(FIRST_RUN + Duration::from_secs(47));
            if !v.healthy {
                out.push(v.evidence);
            }
        }
        out.join(" | ")
    };
    assert_eq!(
        evidence("ro-root", "writable"),
        "/ read-only in /proc/1/mountinfo"
    );
    assert_eq!(
        evidence("ro-superblock", "writable"),
        "/srv read-only in /proc/1/mountinfo (filesystem ext4 on /dev/sda1 is ro)"
    );
    assert_eq!(
        evidence("ext4-errors", "writable"),
        "/ (vda1): ext4 error during this boot (last_error_time 1795554761, booted at 1795551161, errors_count 1)"
    );
    assert_eq!(
        evidence("stuck-io", "block-io"),
        "vda: 3 requests in flight, none completed for 47 s"
    );
    assert_eq!(
        evidence("scsi-offline", "block-io"),
        "sda: device state `offline`, not running"
    );
    assert_eq!(
        evidence("heartbeat-zombie", "process"),
        "heartbeat pid 812 zombie | heartbeat pid 812 zombie"
    );
    assert_eq!(
        evidence("heartbeat-stopped", "process"),
        "heartbeat pid 812 stopped (T) | heartbeat pid 812 stopped (T)"
    );
    assert_eq!(
        evidence("heartbeat-missing", "process"),
        "no process named heartbeat of uid 0 | pid 812 from /run/heartbeat.pid is not running"
    );
    assert!(evidence("pidfile-missing", "process")
        .starts_with("pidfile /run/heartbeat.pid: No such file"));
    assert_eq!(
        evidence("heartbeat-D-state", "process"),
        "heartbeat pid 812 in D state (uninterruptible) for 47 s | heartbeat pid 812 in D state (uninterruptible) for 47 s"
    );
    assert_eq!(
        evidence("load-high", "load"),
        "load 31.20 24.70 17.05: above max-load-1 24, above max-load-15 16"
    );
    assert_eq!(
        evidence("memory-low", "memory"),
        "MemAvailable 117.2MiB, below min-available 256MiB"
    );
    assert_eq!(
        evidence("command-fails", "command"),
        "/bin/sh exit 2: SAN path down"
    );
}
