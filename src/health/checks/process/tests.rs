use super::*;
use crate::health::checks::{parse_settings, CheckSettings};

const S: fn(u64) -> Duration = Duration::from_secs;

fn settings(yaml: &str) -> Settings {
    match parse_settings("process", serde_yaml::from_str(yaml).unwrap()).unwrap() {
        CheckSettings::Process(s) => s,
        other => panic!("{other:?}"),
    }
}

fn keys(yaml: &str) -> Vec<String> {
    settings(yaml)
        .problems()
        .into_iter()
        .map(|p| p.key)
        .collect()
}

#[test]
fn static_rules() {
    assert!(keys("name: corosync").is_empty());
    assert!(keys("pidfile: /run/hb.pid\nfresh-file: /run/hb.stamp\nmax-age: 30s").is_empty());
    assert_eq!(keys("{}"), [""]);
    assert_eq!(keys("name: x\npidfile: /run/x.pid"), ["pidfile"]);
    assert_eq!(keys("name: bin/x"), ["name"]);
    assert_eq!(keys("pidfile: run/x.pid"), ["pidfile"]);
    assert_eq!(keys("name: x\nfresh-file: /run/x"), ["max-age"]);
    assert_eq!(keys("name: x\nmax-age: 5s"), ["fresh-file"]);
    assert_eq!(
        keys("name: x\nfresh-file: x\nmax-age: 0s"),
        ["fresh-file", "max-age"]
    );
    assert_eq!(
        keys("name: x\nmax-uninterruptible: 0s"),
        ["max-uninterruptible"]
    );
}

/// A fixture node with processes (pid, comm, state, ppid).
fn node(procs: &[(i32, &str, char, i32)]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    for (pid, comm, state, ppid) in procs {
        let p = root.proc(pid.to_string());
        std::fs::create_dir_all(&p).unwrap();
        // The line of a Debian 12 heartbeat, with pid, comm, state and ppid set.
        std::fs::write(
            p.join("stat"),
            format!("{pid} ({comm}) {state} {ppid} 812 812 0 -1 4194560 1541 0 0 0 3 5 0 0 -2 0 1 0 1432 9715712 1960 18446744073709551615 1 1 0 0 0 0 0 4096 1 0 0 0 17 0 1 1 0 0 0 0 0 0 0 0 0 0 0\n"),
        )
        .unwrap();
    }
    (dir, root)
}

fn by_name(root: &Root, name: &str) -> Process {
    Process::new(settings(&format!("name: {name}")), root).unwrap()
}

#[test]
fn judges_the_top_of_the_tree_not_its_reaped_workers() {
    let (_d, root) = node(&[
        (812, "heartbeat", 'S', 1),
        (813, "heartbeat", 'Z', 812),
        (900, "bash", 'Z', 1),
    ]);
    let v = by_name(&root, "heartbeat").run(S(0));
    assert_eq!(v, Verdict::healthy("heartbeat pid 812 running (S)"));
}

#[test]
fn zombie_stopped_and_absent() {
    let (_d, root) = node(&[(812, "heartbeat", 'Z', 1), (813, "heartbeat", 'S', 812)]);
    assert_eq!(
        by_name(&root, "heartbeat").run(S(0)),
        Verdict::unhealthy("heartbeat pid 812 zombie")
    );
    let (_d, root) = node(&[(812, "corosync", 't', 1)]);
    assert_eq!(
        by_name(&root, "corosync").run(S(0)),
        Verdict::unhealthy("corosync pid 812 stopped (t)")
    );
    assert_eq!(
        by_name(&root, "heartbeat").run(S(0)),
        Verdict::unhealthy("no process named heartbeat")
    );
}

#[test]
fn d_state_is_timed_across_runs_per_process() {
    let (_d, root) = node(&[(812, "heartbeat", 'D', 1)]);
    let mut c = by_name(&root, "heartbeat");
    assert_eq!(c.settle_time(), Some(S(30)));
    assert!(c.run(S(100)).healthy);
    assert_eq!(c.settle_time(), Some(S(30)));
    assert_eq!(
        c.run(S(129)),
        Verdict::healthy("heartbeat pid 812 in D state (uninterruptible) for 29 s")
    );
    assert_eq!(c.settle_time(), Some(S(1)));
    assert_eq!(
        c.run(S(147)),
        Verdict::unhealthy("heartbeat pid 812 in D state (uninterruptible) for 47 s")
    );
    // Woke up: the count starts again at the next D.
    let (_d2, awake) = node(&[(812, "heartbeat", 'S', 1)]);
    c.root = awake;
    assert!(c.run(S(150)).healthy);
    assert_eq!(c.settle_time(), None);
    c.root = root;
    assert!(c.run(S(151)).healthy);
}

#[test]
fn pidfile_missing_garbage_or_stale() {
    let (dir, root) = node(&[(812, "heartbeat", 'S', 1)]);
    let mut c = Process::new(settings("pidfile: /run/heartbeat.pid"), &root).unwrap();
    let v = c.run(S(0));
    assert!(
        v.evidence.starts_with("pidfile /run/heartbeat.pid: "),
        "{v:?}"
    );
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    std::fs::write(dir.path().join("run/heartbeat.pid"), "garbage\n").unwrap();
    assert_eq!(
        c.run(S(0)).evidence,
        "pidfile /run/heartbeat.pid: `garbage` is not a pid"
    );
    std::fs::write(dir.path().join("run/heartbeat.pid"), "999\n").unwrap();
    assert_eq!(
        c.run(S(0)).evidence,
        "pid 999 from /run/heartbeat.pid is not running"
    );
    std::fs::write(dir.path().join("run/heartbeat.pid"), "812\n").unwrap();
    assert!(c.run(S(0)).healthy);
}

#[test]
fn fresh_file_age() {
    let (dir, root) = node(&[(812, "heartbeat", 'S', 1)]);
    let yaml = "name: heartbeat\nfresh-file: /run/hb.stamp\nmax-age: 30s";
    let mut c = Process::new(settings(yaml), &root).unwrap();
    assert!(c.run(S(0)).evidence.contains("fresh-file /run/hb.stamp: "));
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    let stamp = dir.path().join("run/hb.stamp");
    std::fs::write(&stamp, "").unwrap();
    assert!(c.run(S(0)).healthy);
    let old = SystemTime::now() - Duration::from_secs(75);
    std::fs::File::options()
        .write(true)
        .open(&stamp)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let v = c.run(S(0));
    assert!(!v.healthy);
    assert!(
        v.evidence
            .contains("fresh-file /run/hb.stamp last modified 75 s ago (max-age 30s)"),
        "{v:?}"
    );
}
