use super::*;
use crate::system::{process_table, Root};

fn run(argv: &[&str], timeout: Duration) -> Verdict {
    let settings = Settings {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        timeout: Some(HumanDuration(timeout)),
    };
    assert!(settings.problems().is_empty());
    CommandCheck::new(settings).unwrap().run(Duration::ZERO)
}

const T: Duration = Duration::from_secs(10);

#[test]
fn exit_status_decides_and_output_is_evidence() {
    assert_eq!(run(&["/bin/true"], T), Verdict::healthy("/bin/true exit 0"));
    assert_eq!(
        run(
            &[
                "/bin/sh",
                "-c",
                "echo SAN path down; echo >&2 see dmesg; exit 3"
            ],
            T
        ),
        Verdict::unhealthy("/bin/sh exit 3: SAN path down / see dmesg")
    );
    let v = run(&["/bin/sh", "-c", "kill -TERM $$"], T);
    assert_eq!(v, Verdict::unhealthy("/bin/sh killed by signal 15"));
}

#[test]
fn failing_to_start_is_a_failed_check() {
    let v = run(&["/nonexistent/wdfeed-site-check"], T);
    assert!(!v.healthy);
    assert!(
        v.evidence
            .starts_with("cannot run /nonexistent/wdfeed-site-check: "),
        "{v:?}"
    );
}

#[test]
fn the_environment_is_clean() {
    let v = run(
        &[
            "/bin/sh",
            "-c",
            "env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_='",
        ],
        T,
    );
    assert_eq!(v, Verdict::healthy(format!("/bin/sh exit 0: PATH={PATH}")));
}

#[test]
fn output_is_cut_and_sanitised() {
    let v = run(
        &[
            "/bin/sh",
            "-c",
            "printf '\\033[31mred\\n'; head -c 100000 /dev/zero | tr '\\0' x",
        ],
        T,
    );
    assert!(v.healthy);
    assert!(
        v.evidence.starts_with("/bin/sh exit 0: ?[31mred / xxx"),
        "{v:?}"
    );
    assert!(v.evidence.ends_with("x..."), "{v:?}");
    assert!(v.evidence.len() < OUTPUT_LIMIT + 40, "{}", v.evidence.len());
}

/// A copy of sleep under a name no other process has, so the test can look for it.
fn unique_sleep(dir: &std::path::Path, tag: &str) -> (String, std::path::PathBuf) {
    let name = format!("wdf{}{tag}", std::process::id() % 100_000);
    let path = dir.join(&name);
    std::fs::copy("/bin/sleep", &path).unwrap();
    (name, path)
}

fn alive(name: &str) -> Vec<i32> {
    process_table::find_by_name(&Root::host(), name)
        .into_iter()
        .filter(|p| p.state != 'Z')
        .map(|p| p.pid)
        .collect()
}

#[test]
fn a_command_past_its_timeout_is_killed_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let (name, path) = unique_sleep(dir.path(), "cmdto");
    let script = format!("{p} 60 & {p} 60; echo never", p = path.display());
    let started = Instant::now();
    let v = run(&["/bin/sh", "-c", &script], Duration::from_millis(300));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        v,
        Verdict::unhealthy("/bin/sh: killed (SIGKILL) after its timeout of 300ms")
    );
    let until = Instant::now() + Duration::from_secs(3);
    while !alive(&name).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(alive(&name), Vec::<i32>::new(), "{name} outlived its run");
}

#[test]
fn static_rules() {
    let s = Settings {
        argv: vec![],
        timeout: Some(HumanDuration(Duration::ZERO)),
    };
    let keys: Vec<String> = s.problems().into_iter().map(|p| p.key).collect();
    assert_eq!(keys, ["argv", "timeout"]);
    let s = Settings {
        argv: vec!["".into(), "a\0b".into()],
        timeout: None,
    };
    let keys: Vec<String> = s.problems().into_iter().map(|p| p.key).collect();
    assert_eq!(keys, ["argv[0]", "argv[1]"]);
    // The kind states its own rules: a relative program is refused here.
    let s = Settings {
        argv: vec!["check-san".into()],
        timeout: None,
    };
    let p = s.problems();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].key, "argv[0]");
    assert!(
        p[0].message.contains("/usr/local/sbin/check-san"),
        "{}",
        p[0].message
    );
}

#[test]
fn the_default_timeout_fits_any_deadline_and_is_settled_by_the_schedule() {
    assert_eq!(
        default_timeout(Duration::from_secs(10)),
        Duration::from_millis(7500)
    );
    assert_eq!(
        default_timeout(Duration::from_secs(60)),
        Duration::from_secs(10)
    );
    let mut s = Settings {
        argv: vec!["/bin/true".into()],
        timeout: None,
    };
    s.settle_defaults(&crate::health::Schedule {
        every: Duration::from_secs(5),
        deadline: Duration::from_secs(4),
        tolerance: 0,
    });
    assert_eq!(s.timeout, Some(HumanDuration(Duration::from_secs(3))));
}
