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

/// A fixture node with processes (pid, comm, state, ppid), all of root.
fn node(procs: &[(i32, &str, char, i32)]) -> (tempfile::TempDir, Root) {
    let owned: Vec<_> = procs
        .iter()
        .map(|&(p, c, s, pp)| (p, c, s, pp, 0))
        .collect();
    node_owned(&owned)
}

/// A fixture node with processes (pid, comm, state, ppid, real uid).
fn node_owned(procs: &[(i32, &str, char, i32, u32)]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::at(dir.path());
    for (pid, comm, state, ppid, uid) in procs {
        let p = root.proc(pid.to_string());
        std::fs::create_dir_all(&p).unwrap();
        // The line of a Debian 12 heartbeat, with pid, comm, state and ppid set.
        std::fs::write(
            p.join("stat"),
            format!("{pid} ({comm}) {state} {ppid} 812 812 0 -1 4194560 1541 0 0 0 3 5 0 0 -2 0 1 0 1432 9715712 1960 18446744073709551615 1 1 0 0 0 0 0 4096 1 0 0 0 17 0 1 1 0 0 0 0 0 0 0 0 0 0 0\n"),
        )
        .unwrap();
        std::fs::write(
            p.join("status"),
            format!("Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
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
        Verdict::unhealthy("no process named heartbeat of uid 0")
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

#[test]
fn a_same_named_process_of_another_user_cannot_fail_the_check() {
    // A user starts a `heartbeat` and stops it (or leaves a zombie): it is not root's.
    let (_d, root) = node_owned(&[
        (812, "heartbeat", 'S', 1, 0),
        (900, "heartbeat", 'T', 1, 1000),
        (901, "heartbeat", 'Z', 1, 1000),
    ]);
    assert_eq!(
        by_name(&root, "heartbeat").run(S(0)),
        Verdict::healthy(
            "heartbeat pid 812 running (S); ignored 2 same-named process(es) not of uid 0: pid 900 uid 1000, pid 901 uid 1000"
        )
    );
}

#[test]
fn a_same_named_process_of_another_user_cannot_stand_in_for_a_dead_heartbeat() {
    let procs: Vec<_> = (900..906).map(|p| (p, "heartbeat", 'S', 1, 1000)).collect();
    let (_d, root) = node_owned(&procs);
    assert_eq!(
        by_name(&root, "heartbeat").run(S(0)),
        Verdict::unhealthy(
            "no process named heartbeat of uid 0 (ignored 6 same-named process(es) not of uid 0: pid 900 uid 1000, pid 901 uid 1000, pid 902 uid 1000, 3 more)"
        )
    );
    // Unreadable owner: not counted (fails closed).
    std::fs::remove_file(root.proc("900/status")).unwrap();
    let mut c = Process::new(settings("name: heartbeat\nuser: '1000'"), &root).unwrap();
    let v = c.run(S(0));
    assert!(v.healthy, "{v:?}");
    assert!(v.evidence.contains("pid 900 owner unreadable"), "{v:?}");
}

#[test]
fn user_names_resolve_under_the_root_and_unknown_ones_are_refused() {
    let (dir, root) = node_owned(&[(812, "corosync", 'S', 1, 189)]);
    let e = Process::new(settings("name: corosync\nuser: hacluster"), &root)
        .err()
        .unwrap();
    assert!(e.contains("user `hacluster`"), "{e}");
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "hacluster:x:189:189::/:/bin/false\n",
    )
    .unwrap();
    let mut c = Process::new(settings("name: corosync\nuser: hacluster"), &root).unwrap();
    assert_eq!(
        c.run(S(0)),
        Verdict::healthy("corosync pid 812 running (S)")
    );
    assert!(!by_name(&root, "corosync").run(S(0)).healthy);
    assert_eq!(keys("name: x\nuser: 'a:b'"), ["user"]);
    assert_eq!(keys("name: x\nexe: sbin/x"), ["exe"]);
}

#[test]
fn exe_must_match_when_given() {
    let (dir, root) = node(&[(812, "corosync", 'S', 1), (813, "corosync", 'S', 1)]);
    std::os::unix::fs::symlink("/usr/sbin/corosync", root.proc("812/exe")).unwrap();
    std::os::unix::fs::symlink("/home/u/corosync", root.proc("813/exe")).unwrap();
    let mut c = Process::new(settings("name: corosync\nexe: /usr/sbin/corosync"), &root).unwrap();
    assert_eq!(
        c.run(S(0)),
        Verdict::healthy("corosync pid 812 running (S); ignored 1 same-named process(es) not of uid 0 exe /usr/sbin/corosync: pid 813 exe /home/u/corosync")
    );
    drop(dir);
}

#[test]
fn a_pidfile_naming_another_users_process_fails() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, root) = node_owned(&[(812, "heartbeat", 'S', 1, 0), (900, "sh", 'S', 1, 1000)]);
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(run.join("hb.pid"), "900\n").unwrap();
    std::fs::set_permissions(run.join("hb.pid"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = Process::new(settings("pidfile: /run/hb.pid"), &root).unwrap();
    assert_eq!(
        c.run(S(0)),
        Verdict::unhealthy(
            "pid 900 from /run/hb.pid is not the expected process (uid 1000; expected uid 0)"
        )
    );
    std::fs::write(run.join("hb.pid"), "812\n").unwrap();
    let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    let mut c = Process::new(
        settings(&format!("pidfile: /run/hb.pid\nuser: '{me}'")),
        &root,
    )
    .unwrap();
    if me != 0 {
        assert!(!c.run(S(0)).healthy);
    }
    let mut c = Process::new(settings("pidfile: /run/hb.pid"), &root).unwrap();
    let v = c.run(S(0));
    if me == 0 {
        assert_eq!(v, Verdict::healthy("heartbeat pid 812 running (S)"));
    } else {
        // The fixture is owned by the test's user, not root: that is warned about.
        assert!(v.evidence.contains("is owned by uid"), "{v:?}");
    }
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let v = c.run(S(0));
    assert!(v.healthy, "{v:?}");
    assert!(
        v.evidence
            .contains("warning: directory /run is writable by group or others (mode 777)"),
        "{v:?}"
    );
}

/// A live process of an unprivileged user (nobody), named like the watched daemon and
/// stopped, beside a running one of root: the check stays healthy. Needs root to start a
/// process as another user; skipped (visibly) otherwise.
#[test]
fn live_stopped_process_of_nobody_does_not_fence() {
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) != 0 {
        eprintln!("SKIP live_stopped_process_of_nobody_does_not_fence: needs root");
        return;
    }
    let copy = crate::system::victim::SleepCopy::new("wdhb");
    let name = copy.name.clone();
    let spawn = |uid: Option<u32>| copy.spawn(uid);
    /// Kills and reaps the victims even when an assertion fails.
    struct Kids(Vec<std::process::Child>);
    impl Drop for Kids {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let kids = Kids(vec![spawn(None), spawn(Some(65534))]);
    let their_id = kids.0[1].id();
    let their_pid = nix::unistd::Pid::from_raw(i32::try_from(their_id).unwrap());
    nix::sys::signal::kill(their_pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let root = Root::host();
    let mut c = by_name(&root, &name);
    let mut v = c.run(S(0));
    for _ in 0..200 {
        if v.evidence.contains("ignored 1") && v.evidence.contains("running") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
        v = c.run(S(0));
    }
    let mut c65534 =
        Process::new(settings(&format!("name: {name}\nuser: '65534'")), &root).unwrap();
    let theirs_v = c65534.run(S(0));
    drop(kids);
    assert!(v.healthy, "{v:?}");
    assert!(
        v.evidence.contains(&format!("pid {their_id} uid 65534")),
        "{v:?}"
    );
    // Watched as nobody's, the same process is seen stopped.
    assert!(!theirs_v.healthy, "{theirs_v:?}");
    assert!(theirs_v.evidence.contains("stopped (T)"), "{theirs_v:?}");
}

/// Rewrites one fixture process in place (same start time as `node_owned` gives).
fn set_proc(root: &Root, pid: i32, comm: &str, state: char, ppid: i32, uid: u32) {
    let (_d, other) = node_owned(&[(pid, comm, state, ppid, uid)]);
    for f in ["stat", "status"] {
        std::fs::copy(
            other.proc(format!("{pid}/{f}")),
            root.proc(format!("{pid}/{f}")),
        )
        .unwrap();
    }
}

/// After the run that found it, the check follows its process: a same-named process that
/// appears later is not looked at while the followed one lives and matches, and is seen by
/// the walk that follows the followed one's end.
#[test]
fn the_found_process_is_followed_until_it_is_gone() {
    let (_d, root) = node(&[(812, "heartbeat", 'S', 1)]);
    let mut c = by_name(&root, "heartbeat");
    assert_eq!(
        c.run(S(0)),
        Verdict::healthy("heartbeat pid 812 running (S)")
    );
    // Another top of the same name and owner, stopped: no walk, so not judged.
    let (_d2, more) = node(&[(813, "heartbeat", 'T', 1)]);
    copy_proc(&more, &root, 813);
    assert_eq!(
        c.run(S(1)),
        Verdict::healthy("heartbeat pid 812 running (S)")
    );
    // The followed one stops: seen through its own stat.
    set_proc(&root, 812, "heartbeat", 'T', 1, 0);
    assert_eq!(
        c.run(S(2)),
        Verdict::unhealthy("heartbeat pid 812 stopped (T)")
    );
    // It is gone: the walk sees what is there now.
    std::fs::remove_dir_all(root.proc("812")).unwrap();
    assert_eq!(
        c.run(S(3)),
        Verdict::unhealthy("heartbeat pid 813 stopped (T)")
    );
}

fn copy_proc(from: &Root, to: &Root, pid: i32) {
    std::fs::create_dir_all(to.proc(pid.to_string())).unwrap();
    for f in ["stat", "status"] {
        std::fs::copy(
            from.proc(format!("{pid}/{f}")),
            to.proc(format!("{pid}/{f}")),
        )
        .unwrap();
    }
}

/// A followed process that exec's another program, changes owner or gets another parent is
/// no longer taken for granted: the run walks again and judges what it finds.
#[test]
fn a_followed_process_that_changes_is_looked_for_again() {
    let (_d, root) = node(&[(812, "heartbeat", 'S', 1), (900, "sh", 'S', 1)]);
    let mut c = by_name(&root, "heartbeat");
    assert!(c.run(S(0)).healthy);
    // exec: another comm, same pid and start time
    set_proc(&root, 812, "bash", 'S', 1, 0);
    assert_eq!(
        c.run(S(1)),
        Verdict::unhealthy("no process named heartbeat of uid 0")
    );
    set_proc(&root, 812, "heartbeat", 'S', 1, 0);
    assert!(c.run(S(2)).healthy);
    // setuid to another user
    set_proc(&root, 812, "heartbeat", 'S', 1, 1000);
    assert_eq!(
        c.run(S(3)),
        Verdict::unhealthy(
            "no process named heartbeat of uid 0 (ignored 1 same-named process(es) not of uid 0: pid 812 uid 1000)"
        )
    );
    // back to root, then its parent becomes another heartbeat: now a worker of 900's tree,
    // and 900 is judged.
    set_proc(&root, 812, "heartbeat", 'S', 1, 0);
    assert!(c.run(S(4)).healthy);
    set_proc(&root, 900, "heartbeat", 'T', 1, 0);
    set_proc(&root, 812, "heartbeat", 'S', 900, 0);
    assert_eq!(
        c.run(S(5)),
        Verdict::unhealthy("heartbeat pid 900 stopped (T)")
    );
}
