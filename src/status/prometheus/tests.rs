use super::*;
use std::process::{Command, Stdio};

/// The status file of a real dry run against the stuck-io fixture node, taken after it
/// fenced (tests/fixtures/status-stuck-io-fenced.json).
pub(crate) fn fixture() -> Status {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/status-stuck-io-fenced.json"
    ))
    .expect("the fixture is a status file")
}

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"))
}

fn value(text: &str, series: &str) -> f64 {
    let l = line(text, &format!("{series} "));
    l[series.len() + 1..].parse().unwrap()
}

#[test]
fn the_fixture_run_renders_its_values() {
    let s = fixture();
    let text = render(&s);
    assert_eq!(
        value(
            &text,
            &format!("wdfeed_build_info{{version=\"{}\"}}", s.version)
        ),
        1.0
    );
    assert_eq!(value(&text, "wdfeed_fence_bound_seconds"), s.bound_s);
    assert_eq!(value(&text, "wdfeed_dry_run"), 1.0);
    let fence = s.fence.as_ref().expect("the fixture run fenced");
    assert_eq!(
        value(
            &text,
            &format!("wdfeed_fenced{{reason=\"{}\"}}", fence.check)
        ),
        1.0
    );
    for c in &s.checks {
        let l = format!("{{check=\"{}\"}}", c.name);
        let healthy = value(&text, &format!("wdfeed_check_healthy{l}"));
        assert_eq!(healthy == 1.0, c.healthy == Some(true), "{}", c.name);
        assert_eq!(
            value(&text, &format!("wdfeed_check_lease_remaining_seconds{l}")),
            c.lease_left_s.unwrap()
        );
        assert_eq!(
            value(&text, &format!("wdfeed_check_consecutive_failures{l}")),
            f64::from(c.consecutive_failures)
        );
        let took = value(&text, &format!("wdfeed_check_last_run_duration_seconds{l}"));
        assert!(
            (took * 1000.0 - c.elapsed_ms.unwrap()).abs() < 1e-9,
            "{took}"
        );
    }
    // The stuck disk: failed, lease expired, failures counted.
    let io = "{check=\"block-io all disks\"}";
    assert_eq!(value(&text, &format!("wdfeed_check_healthy{io}")), 0.0);
    assert!(value(&text, &format!("wdfeed_check_lease_remaining_seconds{io}")) < 0.0);
    assert!(value(&text, &format!("wdfeed_check_consecutive_failures{io}")) >= 1.0);
    let dev = "{device=\"/dev/watchdog0\"}";
    assert_eq!(
        value(&text, &format!("wdfeed_device_timeout_seconds{dev}")),
        30.0
    );
    assert_eq!(
        value(&text, &format!("wdfeed_device_last_pet_age_seconds{dev}")),
        s.last_pet_age_s.unwrap()
    );
    assert_eq!(
        value(&text, &format!("wdfeed_device_pets_total{dev}")),
        0.0,
        "dry run"
    );
    assert!(text.contains("# TYPE wdfeed_device_pets_total counter\n"));
    assert!(text.contains("# TYPE wdfeed_feeder_lateness_seconds histogram\n"));
}

#[test]
fn the_lateness_histogram_is_cumulative_and_ends_at_the_count() {
    let s = fixture();
    let text = render(&s);
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("wdfeed_feeder_lateness_seconds_bucket"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), s.lateness.buckets.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    let count = s.lateness.wakeups as f64;
    assert!(count > 0.0);
    assert_eq!(*buckets.last().unwrap(), count);
    assert_eq!(value(&text, "wdfeed_feeder_lateness_seconds_count"), count);
    assert_eq!(
        value(
            &text,
            "wdfeed_feeder_lateness_seconds_bucket{le=\"0.000016\"}"
        ),
        s.lateness.buckets[0].count as f64
    );
    assert!(
        line(&text, "wdfeed_feeder_lateness_seconds_bucket{le=\"+Inf\"}")
            .ends_with(&format!(" {}", s.lateness.wakeups))
    );
}

#[test]
fn a_healthy_node_says_fenced_0_without_a_reason() {
    let mut s = fixture();
    s.fence = None;
    let text = render(&s);
    assert!(text.contains("\nwdfeed_fenced 0\n"), "{text}");
}

#[test]
fn the_previous_boots_dump_is_a_gauge_of_its_size_named_by_path_and_fence() {
    let mut s = fixture();
    assert!(!render(&s).contains("\nwdfeed_previous_boot_dump_bytes{"));
    s.previous_boot = Some(with_previous_dump());
    let text = render(&s);
    assert_eq!(
        value(
            &text,
            "wdfeed_previous_boot_dump_bytes{path=\"/var/crash/202512072031/dump.202512072031\",fenced=\"crashdump\",complete=\"1\"}"
        ),
        43_253_760.0
    );
}

fn with_previous_dump() -> crate::status::PreviousBootStatus {
    crate::status::PreviousBootStatus {
        cause: "the previous boot was fenced (crashdump) at 14.3 s after it started (check=process fakehb evidence=stopped); a dump was saved at /var/crash/202512072031/dump.202512072031 (41.2 MiB, written 2025-12-07 20:31:05 UTC)".into(),
        dump: "/var/crash/202512072031/dump.202512072031".into(),
        dump_bytes: 43_253_760,
        complete: true,
        fenced: Some("crashdump".into()),
    }
}

#[test]
fn label_values_are_escaped() {
    let mut s = fixture();
    s.checks[0].name = "odd \"name\" \\ with\nnewline".into();
    let text = render(&s);
    assert!(
        text.contains("wdfeed_check_healthy{check=\"odd \\\"name\\\" \\\\ with\\nnewline\"} 1\n"),
        "{text}"
    );
    assert_eq!(text.lines().filter(|l| l.starts_with("newline")).count(), 0);
}

#[test]
fn every_family_has_help_and_type_and_samples_follow_their_family() {
    let text = render(&fixture());
    let mut family = String::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            family = rest.split(' ').next().unwrap().to_string();
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{family} has no HELP"
            );
        } else if !l.starts_with('#') {
            assert!(l.starts_with(&family), "{l} outside its family {family}");
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
        }
    }
}

/// `promtool check metrics` (Debian's prometheus package) on the fixture run's output and on
/// an escaped label: exit 0 and no lint finding.
#[test]
fn promtool_accepts_the_output() {
    let Ok(out) = Command::new("promtool").arg("--version").output() else {
        println!("SKIPPED: promtool is absent (apt-get install prometheus); only the parser checks above ran");
        return;
    };
    assert!(out.status.success());
    let mut odd = fixture();
    odd.checks[0].name = "odd \"name\" \\ with\nnewline".into();
    odd.fence = None;
    odd.previous_boot = Some(with_previous_dump());
    for s in [fixture(), odd] {
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(render(&s).as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && said.trim().is_empty(),
            "promtool: {said}"
        );
        println!("promtool check metrics: PASS");
    }
}
